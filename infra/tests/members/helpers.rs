//! A member plane per test: fresh tables in the binary's one DynamoDB Local, a fresh user
//! pool (from template.yaml) in its one Cognito-API emulator, and the local gateway, with
//! the template's JWT authorizer, serving them on a loopback port. Members sign in through
//! the pool's app client as the page does; nothing here makes or bends a token.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use infra::gateway::{serve, RouteTable};
use infra::identity::{
    add_member_with_password, member_pool, random_password, with_member_identity,
};
use infra::provider_fakes::ProviderFakes;
use infra::secret_scanner::{KeyListServer, ScannerKey};
use infra::webhook_workers::WebhookWorkers;
use localdb::{
    test_client, CallCounter, CognitoLocal, DynamoDbLocal, FaultInjector, PoolIds, Template,
};
use serde_json::Value;
use shared::app::TableNames;
use shared::keys::scope::Scope;
use shared::members::pool::sign_in;
use shared::members::role::Role;
use shared::members::table::Member;
use shared::org::OrgId;
use shared::secret_scanning::github_keys::ScanningKeys;
use shared::webhooks::dispatch::Webhooks;
use shared::App;
use tokio::runtime::Runtime;

#[path = "../e2e/helpers.rs"]
pub mod http;
pub use http::Reply;

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

pub fn cognito() -> &'static CognitoLocal {
    CognitoLocal::shared()
}

/// A signed-in member.
#[derive(Debug, Clone)]
pub struct Signed {
    pub member: Member,
    pub email: String,
    pub password: String,
    pub token: String,
}

pub struct Plane {
    pub runtime: Runtime,
    pub app: Arc<App>,
    pub client: aws_sdk_dynamodb::Client,
    pub tables: TableNames,
    /// Every table the template declares, by the name this plane gave it: secret scans
    /// cover each, including tables added after the scan was written.
    pub every_table: Vec<String>,
    pub pool: PoolIds,
    pub port: u16,
    /// Faults injected in front of DynamoDB Local for the functions' calls.
    pub faults: FaultInjector,
    /// Faults injected in front of the KMS emulator (the provider-keys vault's calls).
    pub kms_faults: FaultInjector,
    /// The providers' APIs, faked on loopback; the provider client points at them.
    pub fakes: ProviderFakes,
    /// GitHub secret scanning's key list (one key of ours, `scanner_key`), which the plane
    /// fetches on every report (no cache), so a test can rotate it.
    pub scanner: KeyListServer,
    pub scanner_key: ScannerKey,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Plane {
    /// A plane as the local stack runs: webhook receivers on loopback are allowed.
    pub fn new() -> Self {
        Self::with_targets(shared::webhooks::target::TargetGuard {
            allow_private: true,
            ..Default::default()
        })
    }

    /// A plane whose webhook deliveries go through `targets` (the SSRF guard and its
    /// resolver), as a deployment's do when `allow_private` is false.
    pub fn with_targets(targets: shared::webhooks::target::TargetGuard) -> Self {
        logs();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let template = Template::load_default().unwrap();
        let dynamodb = dynamodb();
        let cognito = cognito();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let faults = FaultInjector::default();
        let (client, tables, every_table, pool) = runtime.block_on(async {
            let client = shared::app::with_api_timeouts(&test_client(
                &dynamodb.endpoint(),
                &CallCounter::default(),
                &faults,
            ));
            let names = template
                .create_tables(&client, &format!("m{suffix}_"))
                .await
                .unwrap();
            let env = template.table_env_vars();
            let tables =
                TableNames::resolve(|var| env.get(var).and_then(|id| names.get(id)).cloned())
                    .unwrap();
            let pool = template
                .create_user_pool(&cognito.client(), &suffix)
                .await
                .unwrap();
            let every_table: Vec<String> = names.values().cloned().collect();
            (client, tables, every_table, pool)
        });
        // The provider-keys vault: the template's KMS key in the same emulator, its calls
        // through a fault injector with the functions' timeouts.
        let kms_faults = FaultInjector::default();
        let kms = aws_sdk_kms::Client::from_conf(
            localdb::kms_client(&cognito.endpoint())
                .config()
                .to_builder()
                .timeout_config(shared::sdk::timeouts())
                .interceptor(kms_faults.clone())
                .build(),
        );
        let kms_key = runtime.block_on(template.create_kms_key(&kms)).unwrap();
        let fakes = runtime.block_on(ProviderFakes::start()).unwrap();
        let mut app = App::new(client.clone(), &tables)
            .with_pool(member_pool(cognito, &pool))
            .with_vault(
                shared::providers::vault::Vault::new(kms, kms_key.arn),
                fakes.endpoints(),
            );
        app.webhook_targets = targets;
        let scanner_key = ScannerKey::generate().unwrap();
        let scanner = runtime
            .block_on(KeyListServer::start(vec![scanner_key.clone()]))
            .unwrap();
        app.scanning_keys = ScanningKeys::at(&scanner.url())
            .unwrap()
            .refetching(std::time::Duration::ZERO, std::time::Duration::ZERO);
        let app = Arc::new(app);
        let routes = with_member_identity(
            RouteTable::from_template(&template).unwrap(),
            &template,
            cognito,
            &pool,
        )
        .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(serve(listener, Arc::new(routes), app.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            runtime,
            app,
            client,
            tables,
            every_table,
            pool,
            port,
            faults,
            kms_faults,
            fakes,
            scanner,
            scanner_key,
            stop: Some(stop),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A member of `org` with `role`, signed in.
    pub fn member(&self, org: &str, role: Role) -> Signed {
        self.member_as(
            &format!("{}@{org}.test", uuid::Uuid::new_v4().simple()),
            org,
            role,
        )
    }

    /// A member with this email (each plane has its own pool), signed in.
    pub fn member_as(&self, email: &str, org: &str, role: Role) -> Signed {
        let email = email.to_owned();
        let password = random_password().unwrap();
        let member = self
            .runtime
            .block_on(add_member_with_password(
                &self.app,
                &OrgId::parse(org).unwrap(),
                &email,
                role,
                &password,
                "tests",
            ))
            .unwrap();
        let token = self.sign_in(&email, &password).expect("signs in");
        Signed {
            member,
            email,
            password,
            token,
        }
    }

    /// The pool's tokens for this email and password, through the app client.
    pub fn sign_in_tokens(
        &self,
        email: &str,
        password: &str,
    ) -> Result<shared::members::pool::Tokens, shared::members::pool::PoolError> {
        self.runtime.block_on(sign_in(
            &cognito().client(),
            &self.pool.client_id,
            email,
            password,
        ))
    }

    pub fn sign_in(&self, email: &str, password: &str) -> Result<String, String> {
        self.sign_in_tokens(email, password)
            .map(|t| t.access_token)
            .map_err(|e| e.to_string())
    }

    pub fn call(&self, method: &str, path: &str, bearer: &str, body: Option<Value>) -> Reply {
        let auth = format!("Bearer {bearer}");
        let text = body.map(|b| b.to_string());
        let mut headers = vec![("authorization", auth.as_str())];
        if text.is_some() {
            headers.push(("content-type", "application/json"));
        }
        http::send(method, &self.url(path), &headers, text.as_deref())
    }

    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        http::send(method, &self.url(path), headers, body)
    }

    /// A POST of `body` to `path` with exactly these headers (a signed report, say).
    pub fn post_with(&self, path: &str, headers: &[(String, String)], body: &[u8]) -> Reply {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let body = std::str::from_utf8(body).expect("a UTF-8 body");
        self.call_with("POST", path, &headers, Some(body))
    }

    pub fn get(&self, path: &str, bearer: &str) -> Reply {
        self.call("GET", path, bearer, None)
    }

    pub fn post(&self, path: &str, bearer: &str, body: Value) -> Reply {
        self.call("POST", path, bearer, Some(body))
    }

    pub fn patch(&self, path: &str, bearer: &str, body: Value) -> Reply {
        self.call("PATCH", path, bearer, Some(body))
    }

    /// A key made through the member API by `who`; (id, plaintext).
    pub fn create_key(&self, who: &Signed, scopes: &[Scope]) -> (String, String) {
        let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        let reply = self.post(
            "/v1/org/api-keys",
            &who.token,
            serde_json::json!({"label": "test", "scopes": scopes}),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
        let body = reply.json();
        (
            body["id"].as_str().unwrap().to_owned(),
            body["key"].as_str().unwrap().to_owned(),
        )
    }

    /// Every item of a (small) table, in one Scan.
    pub fn items(&self, table: &str) -> Vec<HashMap<String, AttributeValue>> {
        self.runtime.block_on(async {
            self.client
                .scan()
                .table_name(table)
                .send()
                .await
                .unwrap()
                .items
                .unwrap_or_default()
        })
    }

    /// Every string stored in a table, for "the plaintext is stored nowhere" checks.
    pub fn table_text(&self, table: &str) -> String {
        format!("{:?}", self.items(table))
    }

    /// Every string and binary value stored in `table`, nested ones included.
    pub fn stored_values(&self, table: &str) -> Vec<Vec<u8>> {
        fn walk(value: &AttributeValue, out: &mut Vec<Vec<u8>>) {
            match value {
                AttributeValue::S(s) => out.push(s.as_bytes().to_vec()),
                AttributeValue::B(b) => out.push(b.as_ref().to_vec()),
                AttributeValue::M(map) => map.values().for_each(|v| walk(v, out)),
                AttributeValue::L(list) => list.iter().for_each(|v| walk(v, out)),
                AttributeValue::Ss(list) => out.extend(list.iter().map(|s| s.as_bytes().to_vec())),
                AttributeValue::Bs(list) => out.extend(list.iter().map(|b| b.as_ref().to_vec())),
                _ => {}
            }
        }
        let mut out = Vec::new();
        for item in self.items(table) {
            item.values().for_each(|v| walk(v, &mut out));
        }
        out
    }

    /// `secret` is stored in no table of the template, in clear or as base64.
    pub fn assert_stored_nowhere(&self, secret: &str, what: &str) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
        assert!(self.every_table.len() >= 8, "{:?}", self.every_table);
        for table in &self.every_table {
            for value in self.stored_values(table) {
                for needle in [secret.as_bytes(), b64.as_bytes()] {
                    assert!(
                        !value.windows(needle.len()).any(|w| w == needle),
                        "{what} is stored in {table}"
                    );
                }
            }
        }
    }
}

impl Plane {
    /// The webhook workers as the local stack runs them (stream followers, retrier), with
    /// `tune` applied to their timings first. Dropping the workers stops them.
    pub fn webhooks(&self, tune: impl FnOnce(&mut Webhooks)) -> (Arc<Webhooks>, WebhookWorkers) {
        let mut webhooks = Webhooks::new(&self.app);
        tune(&mut webhooks);
        let webhooks = Arc::new(webhooks);
        let workers = self
            .runtime
            .block_on(WebhookWorkers::start(
                self.app.clone(),
                webhooks.clone(),
                &self.client,
                &dynamodb().endpoint(),
                &self.tables,
            ))
            .unwrap();
        (webhooks, workers)
    }

    /// Waits (at most 30 s) until the webhook workers are idle in passes begun `after` from
    /// now: the streams read to their end and nothing due. A "nothing more arrived" check
    /// made then is final, not a guess after a sleep.
    pub fn settle(&self, workers: &WebhookWorkers, after: std::time::Duration) {
        let since = tokio::time::Instant::now() + after;
        let settled = self.runtime.block_on(async {
            tokio::time::timeout(
                std::time::Duration::from_secs(30),
                workers.idle_since(since),
            )
            .await
        });
        assert!(
            matches!(settled, Ok(true)),
            "the webhook workers did not go idle: {settled:?}"
        );
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The 401 API Gateway's JWT authorizer answers with (its own body, not the envelope).
pub fn assert_gateway_401(reply: &Reply) {
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(reply.json(), serde_json::json!({"message": "Unauthorized"}));
}
