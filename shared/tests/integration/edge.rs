//! The edge: unknown routes, bad query strings, storage failures, and what reaches the logs.

use std::sync::Arc;

use shared::app::App;
use shared::edge::gateway_event::{invoke, v2_event, Context, GatewayRequest, GatewayResponse};
use shared::Endpoint;

use crate::helpers::{assert_error, logs, Req, TestEnv};

#[tokio::test]
async fn unknown_routes_are_json_404_and_wrong_methods_json_405() {
    let env = TestEnv::new().await;
    let key = env.full_key("demo").await;
    let body = assert_error(
        &env.send(Req::get("/v1/nothing").key(&key)).await,
        404,
        "not_found",
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/v1/nothing"));
    assert_error(&env.send(Req::get("/").key(&key)).await, 404, "not_found");
    assert_error(
        &env.send(Req::get("/v1/customers/").key(&key)).await,
        404,
        "not_found",
    );
    let response = env
        .send(Req::new("DELETE", "/v1/customers").key(&key))
        .await;
    assert_error(&response, 405, "method_not_allowed");
    assert!(response.header("allow").is_some_and(|a| a.contains("GET")));
    assert_eq!(
        env.calls.take(),
        Vec::<String>::new(),
        "the fallback touches no table"
    );
}

#[tokio::test]
async fn bad_query_strings_are_400_naming_the_parameter() {
    let env = TestEnv::new().await;
    let key = env.full_key("demo").await;
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limt=5", "limt"),
        ("limit=5&limit=6", "limit"),
    ] {
        let body = assert_error(
            &env.send(Req::get("/v1/customers").key(&key).query(query))
                .await,
            400,
            "invalid_request",
        );
        assert_eq!(body["error"]["param"], param, "{query}");
    }
}

/// `GET /v1/customers` with `key`, as API Gateway would send it.
fn list_event(key: &shared::keys::table::IssuedKey, request_id: &str) -> serde_json::Value {
    v2_event(&GatewayRequest {
        method: "GET".into(),
        raw_path: "/v1/customers".into(),
        raw_query: String::new(),
        headers: vec![(
            "authorization".into(),
            format!("Bearer {}", key.token.expose_secret()),
        )],
        body: Vec::new(),
        source_ip: "198.51.100.1".parse().unwrap(),
        route_key: "GET /v1/customers".into(),
        path_parameters: Default::default(),
        request_id: request_id.into(),
    })
}

#[tokio::test]
async fn storage_down_is_a_503_with_retry_after() {
    let env = TestEnv::new().await;
    let key = env.full_key("demo").await;
    // Same tables, but the endpoint refuses connections.
    let port = localdb::dynamodb_local::free_port().unwrap();
    let dead = localdb::client(&format!("http://127.0.0.1:{port}"));
    let app = Arc::new(App::new(dead, &env.tables));
    let event = list_event(&key, "req-down");
    let response = GatewayResponse::from_event(
        &invoke(
            app,
            Endpoint::Route(shared::edge::routes::Route::ListCustomers),
            event,
            Context::default(),
        )
        .await,
    )
    .unwrap();
    let body = assert_error(&response, 503, "service_unavailable");
    assert!(response.header("retry-after").is_some());
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "no internals in the message"
    );
}

#[test]
fn the_library_knows_the_functions_timeout() {
    // The idempotency lock and the request deadline are reckoned from it.
    let template = localdb::Template::load_default().unwrap();
    assert_eq!(
        template.function_timeout_secs(),
        Some(shared::request::FUNCTION_TIMEOUT_SECS)
    );
}

#[tokio::test]
async fn every_declared_route_in_template_is_in_the_library_and_back() {
    let template = localdb::Template::load_default().unwrap();
    let mut declared: Vec<String> = template
        .routes()
        .into_iter()
        .filter_map(|r| Some(format!("{} {}", r.method?.to_uppercase(), r.path?)))
        .collect();
    declared.sort();
    let mut library: Vec<String> = shared::edge::routes::Route::ALL
        .iter()
        .map(|r| r.key())
        .collect();
    library.sort();
    assert_eq!(declared, library);
    assert_eq!(
        template
            .routes()
            .iter()
            .filter(|r| r.path.is_none() && r.method.is_none())
            .count(),
        1,
        "one $default route"
    );
}

#[tokio::test]
async fn no_log_line_holds_a_key_its_hash_or_the_authorization_header() {
    let env = TestEnv::new().await;
    let key = env.full_key("demo").await;
    let revoked = env.full_key("demo").await;
    env.app
        .keys
        .revoke(
            &revoked.record.org_id,
            &revoked.record.id,
            shared::time::now(),
        )
        .await
        .unwrap();

    const NAME: &str = "Zebedee Quuxworth";
    const EMAIL: &str = "zebedee.quux@example.org";
    let body = serde_json::json!({"fullName": NAME, "email": EMAIL, "externalId": "crm-log"});
    let created = env
        .send(Req::json("POST", "/v1/customers", &body.to_string()).key(&key))
        .await;
    let customer_id = created.json().unwrap()["id"].as_str().unwrap().to_owned();
    let mut request_ids = vec![created.header("request-id").unwrap().to_owned()];
    let patch_body = format!("{{\"email\": \"x{EMAIL}\"}}");
    let bad_body = format!("{{\"fullName\": \"{NAME}\", \"email\": \"not an email {EMAIL}\"}}");
    for req in [
        Req::get("/v1/customers").key(&key),
        Req::get("/v1/customers").key(&revoked),
        Req::get("/v1/customers").header(
            "authorization",
            &format!("Bearer {}x", key.token.expose_secret()),
        ),
        Req::get("/v1/nothing").key(&key),
        Req::json(
            "PATCH",
            &format!("/v1/customers/{customer_id}"),
            &patch_body,
        )
        .key(&key),
        Req::json("POST", "/v1/customers", &bad_body).key(&key),
    ] {
        let response = env.send(req).await;
        request_ids.push(response.header("request-id").unwrap().to_owned());
    }

    let logs = logs().text();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    let mine: Vec<&serde_json::Value> = request_ids
        .iter()
        .map(|id| {
            let found: Vec<_> = lines
                .iter()
                .filter(|l| l["message"] == "request" && l["request_id"] == id.as_str())
                .collect();
            assert_eq!(found.len(), 1, "one line for request {id}");
            found[0]
        })
        .collect();
    assert_eq!(mine[0]["route"], "POST /v1/customers");
    assert_eq!(mine[0]["status"], 201);
    assert_eq!(
        mine[0]["customer_ids"],
        customer_id.as_str(),
        "the customer touched, by id"
    );
    let list = mine[1];
    assert_eq!(list["key_id"], key.record.id.as_str());
    assert_eq!(list["org"], "demo");
    assert_eq!(list["status"], 200);
    assert_eq!(list["route"], "GET /v1/customers");
    assert_eq!(list["source_ip"], "198.51.100.10");
    assert_eq!(list["customer_ids"], customer_id.as_str());
    assert!(list["latency_ms"].is_number());
    assert_eq!(mine[2]["status"], 401);
    assert_eq!(mine[3]["status"], 401);
    assert_eq!(mine[4]["status"], 404);
    assert_eq!(mine[4]["route"], "$default");
    assert_eq!(mine[5]["status"], 200);
    assert_eq!(mine[6]["status"], 400);
    for pii in [
        NAME,
        "Zebedee",
        "Quuxworth",
        EMAIL,
        "zebedee.quux",
        "example.org",
    ] {
        assert!(!logs.contains(pii), "{pii:?} reached the logs");
    }
    for issued in [&key, &revoked] {
        let secret = issued.token.expose_secret();
        assert!(!logs.contains(secret));
        assert!(!logs.contains(&secret[12..]));
        assert!(!logs.contains(&hex::encode(issued.token.hash().as_bytes())));
    }
    assert!(!logs.to_lowercase().contains("bearer"));
    assert!(!logs.to_lowercase().contains("authorization"));
}

#[tokio::test]
async fn events_lambda_http_cannot_read_get_a_400_not_an_invocation_error() {
    let env = TestEnv::new().await;
    let key = env.full_key("demo").await;
    let auth = format!("Bearer {}", key.token.expose_secret());
    let base = |query: &str, path: &str| {
        v2_event(&GatewayRequest {
            method: "GET".into(),
            raw_path: path.into(),
            raw_query: query.into(),
            headers: vec![
                ("authorization".into(), auth.clone()),
                ("host".into(), "api.test".into()),
            ],
            body: Vec::new(),
            source_ip: "198.51.100.1".parse().unwrap(),
            route_key: "GET /v1/customers".into(),
            path_parameters: Default::default(),
            request_id: "req-odd".into(),
        })
    };
    let endpoint = Endpoint::Route(shared::edge::routes::Route::ListCustomers);
    // Characters no URI may hold, as a client can put them on the request line: repaired.
    let odd = invoke(
        env.app.clone(),
        endpoint,
        base("limit={5}", "/v1/customers"),
        Context::default(),
    )
    .await;
    let odd = GatewayResponse::from_event(&odd).unwrap();
    let body = assert_error(&odd, 400, "invalid_request");
    assert_eq!(
        body["error"]["param"], "limit",
        "the handler saw the query, escaped"
    );
    let spaced = invoke(
        env.app.clone(),
        endpoint,
        base("limit=5 ", "/v1/customers"),
        Context::default(),
    )
    .await;
    assert_eq!(GatewayResponse::from_event(&spaced).unwrap().status, 400);
    // A Host header no URL can hold (lambda_http would unwrap its parse and panic) is a 400
    // before the conversion.
    for host in [
        "bad host\\",
        "a:b:c",
        "[::1",
        "example.com:99999",
        "exa mple.com",
        ":",
        "a{b",
        "a\"b",
        "a`b",
        "a%7Bb",
        "x#",
        "x?limit=1",
        "x/y",
        "user@example.com",
    ] {
        let mut bad_host = base("", "/v1/customers");
        bad_host["headers"]["host"] = host.into();
        let response = GatewayResponse::from_event(
            &invoke(env.app.clone(), endpoint, bad_host, Context::default()).await,
        )
        .unwrap();
        let body = assert_error(&response, 400, "invalid_request");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("Host"),
            "{host}: {body}"
        );
    }
    for host in [
        "api.example.com",
        "api.example.com:443",
        "[2001:db8::1]:8443",
        "127.0.0.1",
    ] {
        let mut good_host = base("", "/v1/customers");
        good_host["headers"]["host"] = host.into();
        let response = GatewayResponse::from_event(
            &invoke(env.app.clone(), endpoint, good_host, Context::default()).await,
        )
        .unwrap();
        assert_eq!(response.status, 200, "{host}");
    }
    // Not an API Gateway event at all: a 400 envelope, still a response.
    let junk = invoke(
        env.app.clone(),
        endpoint,
        serde_json::json!({"hello": "world"}),
        Context::default(),
    )
    .await;
    let junk = GatewayResponse::from_event(&junk).unwrap();
    assert_error(&junk, 400, "invalid_request");
}

#[tokio::test]
async fn a_stalled_dynamodb_is_a_503_not_a_hang() {
    let env = TestEnv::new().await;
    let key = env.full_key("demo").await;
    // Accepts connections and never answers, like a DynamoDB endpoint that stalls.
    let blackhole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = blackhole.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = blackhole.accept().await {
            held.push(socket);
        }
    });
    let stalled = shared::app::with_api_timeouts(&localdb::client(&format!("http://{addr}")));
    let app = Arc::new(App::new(stalled, &env.tables));
    let event = list_event(&key, "req-stalled");
    let endpoint = Endpoint::Route(shared::edge::routes::Route::ListCustomers);
    // A liveness bound, far above the 5 s operation budget: without timeouts this hangs.
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        invoke(app, endpoint, event, Context::default()),
    )
    .await
    .expect("an answer, not a hang");
    holder.abort();
    let response = GatewayResponse::from_event(&answered).unwrap();
    assert_error(&response, 503, "service_unavailable");
    assert_eq!(response.header("retry-after"), Some("1"));
}

#[tokio::test]
async fn no_answer_carries_cors_headers_and_the_template_configures_none() {
    // Keys are server-side secrets: a page on another origin must not be able to read an
    // answer (README). Neither the gateway (template.yaml) nor any handler opts in.
    let template =
        std::fs::read_to_string(localdb::workspace_root().join("template.yaml")).unwrap();
    for setting in ["CorsConfiguration", "Cors:", "Access-Control-"] {
        assert!(
            !template.contains(setting),
            "template.yaml configures CORS: {setting}"
        );
    }
    let env = TestEnv::new().await;
    let key = env.full_key("demo").await;
    let origin = ("origin", "https://elsewhere.example");
    let preflight = |path: &str| {
        Req::new("OPTIONS", path)
            .header(origin.0, origin.1)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
    };
    let mut answers = Vec::new();
    for req in [
        Req::get("/v1/customers").key(&key),
        Req::json("POST", "/v1/customers", r#"{"fullName": "Jane Doe"}"#).key(&key),
        Req::get("/v1/me").key(&key),
        Req::get("/v1/customers"),
        preflight("/v1/customers"),
        preflight("/v1/me").key(&key),
        Req::get("/v1/nowhere").key(&key),
    ] {
        let response = env.send(req.header(origin.0, origin.1)).await;
        answers.push(response.status);
        let cors: Vec<_> = response
            .headers
            .iter()
            .filter(|(name, _)| name.to_ascii_lowercase().starts_with("access-control-"))
            .collect();
        assert!(
            cors.is_empty(),
            "{} answered with {cors:?}",
            response.status
        );
    }
    // The requests were answered as they would be without an Origin: served, refused,
    // and preflights not routed (405), so the test saw real answers.
    assert_eq!(answers, [200, 201, 200, 401, 405, 405, 404]);
}
