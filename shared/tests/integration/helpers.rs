//! What the integration tests need: one DynamoDB Local per test binary, fresh tables per
//! test (built from template.yaml), and requests sent as API Gateway v2 events.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use localdb::{test_client, CallCounter, DynamoDbLocal, FaultInjector, Template};
use shared::app::TableNames;
use shared::edge::gateway_event::{invoke, v2_event, Context, GatewayRequest, GatewayResponse};
use shared::edge::routes::{match_path, Route};
use shared::keys::scope::Scope;
use shared::keys::table::{IssuedKey, NewApiKey, MAX_RATE_LIMIT_RPS};
use shared::{time, App, Endpoint};

pub use localdb::CapturedLogs;

/// The binary's captured log lines (the functions' own JSON subscriber writes them).
pub fn logs() -> &'static CapturedLogs {
    CapturedLogs::global(|sink| {
        let subscriber = shared::edge::telemetry::json_subscriber(
            move || sink.clone(),
            tracing_subscriber::EnvFilter::new("info"),
        );
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    })
}

pub fn dynamodb() -> &'static DynamoDbLocal {
    DynamoDbLocal::shared()
}

pub struct TestEnv {
    pub app: Arc<App>,
    pub client: aws_sdk_dynamodb::Client,
    pub tables: TableNames,
    /// The request log table (written by the log writer, not by the functions).
    pub request_log: String,
    pub calls: CallCounter,
    pub faults: FaultInjector,
}

impl TestEnv {
    /// Fresh tables with a unique prefix, so tests share one DynamoDB Local and not data.
    pub async fn new() -> Self {
        logs();
        let endpoint = dynamodb().endpoint();
        let calls = CallCounter::default();
        let faults = FaultInjector::default();
        // The functions' own timeouts, as App::from_env sets them in Lambda.
        let client = shared::app::with_api_timeouts(&test_client(&endpoint, &calls, &faults));
        let template = Template::load_default().expect("template.yaml");
        let prefix = format!("t{}_", uuid::Uuid::new_v4().simple());
        let names = template
            .create_tables(&client, &prefix)
            .await
            .expect("tables from template.yaml");
        let env = template.table_env_vars();
        let tables = TableNames::resolve(|var| env.get(var).and_then(|id| names.get(id)).cloned())
            .expect("every table of template.yaml");
        let request_log = tables.request_log.clone();
        // The vault: the template's KMS key in the KMS-API emulator (moto, one per binary),
        // which seals webhook endpoints' signing secrets as it does deployed.
        let kms = localdb::kms_client(&localdb::CognitoLocal::shared().endpoint());
        let kms_key = template
            .create_kms_key(&kms)
            .await
            .expect("the template's KMS key");
        let app = App::new(client.clone(), &tables).with_vault(
            shared::providers::vault::Vault::new(kms, kms_key.arn),
            shared::providers::client::ProviderEndpoints::resolve(|_| None).expect("defaults"),
        );
        calls.take();
        Self {
            app: Arc::new(app),
            client,
            tables,
            request_log,
            calls,
            faults,
        }
    }

    pub async fn issue_key(&self, org: &str, scopes: &[Scope], allow_ips: &[&str]) -> IssuedKey {
        let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
        let ips: Vec<String> = allow_ips.iter().map(|s| s.to_string()).collect();
        // The highest limit: tests of other things are never throttled (rate tests set theirs).
        let new = NewApiKey::parse(org, "test key", &scopes, None, &ips, "tests", time::now())
            .and_then(|new| new.with_rate_limit(MAX_RATE_LIMIT_RPS))
            .expect("valid key request");
        let issued = self
            .app
            .keys
            .issue(new, time::now())
            .await
            .expect("issue key");
        self.calls.take();
        issued
    }

    pub async fn full_key(&self, org: &str) -> IssuedKey {
        self.issue_key(org, &Scope::ALL, &[]).await
    }

    /// Sends `req` through lambda_http's event path to the endpoint API Gateway would pick.
    pub async fn send(&self, req: Req) -> GatewayResponse {
        self.send_with_context(req, Context::default()).await
    }

    /// As `send`, with the Lambda deadline `millis` from now.
    pub async fn send_with_deadline(&self, req: Req, millis: u64) -> GatewayResponse {
        let mut context = Context::default();
        let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
        context.deadline = now_ms + millis;
        self.send_with_context(req, context).await
    }

    /// As `send`, to another instance of the functions (its own `App`).
    pub async fn send_to(&self, app: Arc<App>, req: Req) -> GatewayResponse {
        self.send_with(app, req, Context::default()).await
    }

    pub async fn send_with_context(&self, req: Req, context: Context) -> GatewayResponse {
        self.send_with(self.app.clone(), req, context).await
    }

    async fn send_with(&self, app: Arc<App>, req: Req, context: Context) -> GatewayResponse {
        let (endpoint, route_key, params) = resolve(&req.method, &req.path);
        // The function API Gateway would invoke signs as itself, as its own role would.
        let app = Arc::new(app.signing_as(function_of(endpoint)));
        let event = v2_event(&GatewayRequest {
            method: req.method.clone(),
            raw_path: req.path.clone(),
            raw_query: req.query.clone(),
            headers: req.headers.clone(),
            body: req.body.clone(),
            source_ip: req.source_ip,
            route_key,
            path_parameters: params,
            request_id: format!("test-{}", uuid::Uuid::new_v4()),
        });
        let response = invoke(app, endpoint, event, context).await;
        GatewayResponse::from_event(&response).expect("a v2 response event")
    }
}

/// The function that writes the request log (its logical id in template.yaml).
pub const LOG_WRITER: &str = "LogWriterFunction";

/// The function template.yaml has serve `endpoint` (its logical id).
pub fn function_of(endpoint: Endpoint) -> &'static str {
    static FUNCTIONS: std::sync::OnceLock<Vec<(Endpoint, String)>> = std::sync::OnceLock::new();
    let functions = FUNCTIONS.get_or_init(|| {
        let template = Template::load_default().expect("template.yaml");
        template
            .routes()
            .into_iter()
            .map(|declared| {
                let endpoint = match (&declared.method, &declared.path) {
                    (Some(method), Some(path)) => Endpoint::Route(
                        Route::from_declaration(method, path).expect("a library route"),
                    ),
                    _ => Endpoint::Fallback,
                };
                (endpoint, declared.function)
            })
            .collect()
    });
    functions
        .iter()
        .find(|(e, _)| *e == endpoint)
        .map(|(_, f)| f.as_str())
        .unwrap_or_else(|| panic!("template.yaml has no function for {endpoint:?}"))
}

/// What API Gateway does with the routes template.yaml declares (a test holds the library's
/// route table equal to the template's).
pub fn resolve(method: &str, path: &str) -> (Endpoint, String, BTreeMap<String, String>) {
    for &route in Route::ALL {
        if route.method().as_str() == method {
            if let Some(params) = match_path(route.path(), path) {
                return (
                    Endpoint::Route(route),
                    route.key(),
                    params.into_iter().collect(),
                );
            }
        }
    }
    (Endpoint::Fallback, "$default".to_owned(), BTreeMap::new())
}

#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub source_ip: IpAddr,
}

impl Req {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            query: String::new(),
            headers: vec![
                ("host".into(), "api.test".into()),
                ("user-agent".into(), "tests".into()),
            ],
            body: Vec::new(),
            source_ip: "198.51.100.10".parse().unwrap(),
        }
    }

    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    /// A JSON write: `Content-Type: application/json` and the body as given.
    pub fn json(method: &str, path: &str, body: &str) -> Self {
        let mut req = Self::new(method, path).header("content-type", "application/json");
        req.body = body.as_bytes().to_vec();
        req
    }

    pub fn body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self
    }

    pub fn query(mut self, query: &str) -> Self {
        self.query = query.to_owned();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets `name`, replacing any value it had.
    pub fn replace_header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.header(name, value)
    }

    pub fn key(self, key: &IssuedKey) -> Self {
        let value = format!("Bearer {}", key.token.expose_secret());
        self.header("authorization", &value)
    }

    pub fn source_ip(mut self, ip: &str) -> Self {
        self.source_ip = ip.parse().unwrap();
        self
    }
}

/// Asserts the contract envelope and returns it; the `request_id` must equal the header.
pub fn assert_error(response: &GatewayResponse, status: u16, code: &str) -> serde_json::Value {
    let body = response.json().unwrap_or_else(|| {
        panic!(
            "JSON body, got {:?}",
            String::from_utf8_lossy(&response.body)
        )
    });
    assert_eq!(response.status, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let request_id = response.header("request-id").expect("Request-Id header");
    assert_eq!(body["error"]["request_id"], request_id);
    assert_eq!(response.header("content-type"), Some("application/json"));
    body
}

pub fn scopes(list: &[Scope]) -> BTreeSet<Scope> {
    list.iter().copied().collect()
}

impl TestEnv {
    /// Creates a customer through the API and returns its JSON.
    pub async fn create(&self, key: &IssuedKey, body: serde_json::Value) -> serde_json::Value {
        let response = self
            .send(Req::json("POST", "/v1/customers", &body.to_string()).key(key))
            .await;
        assert!(
            response.status == 201 || response.status == 200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        self.calls.take();
        response.json().unwrap()
    }
}

impl TestEnv {
    /// How many items a table holds (a Scan: tests only).
    pub async fn item_count(&self, table: &str) -> i32 {
        self.client
            .scan()
            .table_name(table)
            .send()
            .await
            .expect("scan")
            .count
    }
}

/// An Idempotency-Key as a request would carry it.
pub fn idempotency_key(text: &str) -> shared::idempotency::record::IdempotencyKey {
    let mut headers = lambda_http::http::HeaderMap::new();
    headers.insert("idempotency-key", text.parse().expect("header value"));
    shared::idempotency::record::IdempotencyKey::from_headers(&headers)
        .expect("valid key")
        .expect("present")
}

/// The request log line of the request `response` answered.
pub fn log_line(response: &GatewayResponse) -> serde_json::Value {
    let request_id = response.header("request-id").expect("Request-Id header");
    let text = logs().text();
    let found: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == "request" && l["request_id"] == request_id)
        .collect();
    assert_eq!(found.len(), 1, "one log line for {request_id}");
    found.into_iter().next().unwrap()
}

/// Sends every request at once (each on its own task) and returns the answers in order.
pub async fn concurrently(env: &Arc<TestEnv>, requests: Vec<Req>) -> Vec<GatewayResponse> {
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|req| {
            let env = env.clone();
            tokio::spawn(async move { env.send(req).await })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.expect("request task"));
    }
    out
}
