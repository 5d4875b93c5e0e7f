//! Every client mistake gets its status, its code and, where one field is at fault, a param;
//! no client input produces a 5xx.

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::helpers::{assert_error, Req, TestEnv};

/// (body, param) pairs that must be a 400 on POST.
fn bad_bodies() -> Vec<(String, Option<&'static str>)> {
    let many: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
    vec![
        ("{".into(), None),
        ("{\"fullName\": \"Jane\",}".into(), None),
        ("[]".into(), None),
        ("\"Jane\"".into(), None),
        ("42".into(), None),
        ("null".into(), None),
        ("   ".into(), None),
        (json!({"fullName": 7}).to_string(), Some("full_name")),
        (json!({"fullName": ["Jane"]}).to_string(), Some("full_name")),
        (
            json!({"fullName": "Jane", "email": 5}).to_string(),
            Some("email"),
        ),
        (
            json!({"fullName": "Jane", "nickname": "J"}).to_string(),
            Some("nickname"),
        ),
        (
            json!({"fullName": "Jane", "kyc_status": "VERIFIED"}).to_string(),
            Some("kyc_status"),
        ),
        (
            json!({"fullName": "Jane", "addedVia": "MANUAL"}).to_string(),
            Some("addedVia"),
        ),
        (
            json!({"fullName": "Jane", "created_at": "2026-01-01T00:00:00Z"}).to_string(),
            Some("created_at"),
        ),
        (
            json!({"fullName": "Jane", "full_name": "Jane"}).to_string(),
            Some("full_name"),
        ),
        (
            json!({"fullName": "Jane", "externalId": "a", "external_id": "a"}).to_string(),
            Some("external_id"),
        ),
        (json!({"fullName": ""}).to_string(), Some("full_name")),
        (
            json!({"fullName": "x".repeat(201)}).to_string(),
            Some("full_name"),
        ),
        (
            json!({"fullName": "Jane\u{0007}"}).to_string(),
            Some("full_name"),
        ),
        (
            json!({"fullName": "Jane", "externalId": "x".repeat(129)}).to_string(),
            Some("external_id"),
        ),
        (
            json!({"fullName": "Jane", "externalId": "a\nb"}).to_string(),
            Some("external_id"),
        ),
        (
            json!({"fullName": "Jane", "email": "not-an-email"}).to_string(),
            Some("email"),
        ),
        (
            json!({"fullName": "Jane", "email": format!("{}@x.com", "a".repeat(250))}).to_string(),
            Some("email"),
        ),
        (
            json!({"fullName": "Jane", "country": "XX"}).to_string(),
            Some("country"),
        ),
        (
            json!({"fullName": "Jane", "dateOfBirth": "31/12/1990"}).to_string(),
            Some("date_of_birth"),
        ),
        (
            json!({"fullName": "Jane", "type": "person"}).to_string(),
            Some("type"),
        ),
        (
            json!({"fullName": "Jane", "metadata": many}).to_string(),
            Some("metadata"),
        ),
        (
            json!({"fullName": "Jane", "metadata": {"k": 1}}).to_string(),
            Some("metadata.k"),
        ),
        (
            json!({"fullName": "Jane", "metadata": {"k": "v".repeat(501)}}).to_string(),
            Some("metadata.k"),
        ),
    ]
}

#[tokio::test]
async fn bad_bodies_are_400_with_the_field_named() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let existing = env.create(&key, json!({"fullName": "Existing"})).await;
    let patch_path = format!("/v1/customers/{}", existing["id"].as_str().unwrap());
    for (body, param) in bad_bodies() {
        for req in [
            Req::json("POST", "/v1/customers", &body),
            Req::json("PATCH", &patch_path, &body),
        ] {
            let method = req.method.clone();
            let response = env.send(req.key(&key)).await;
            let envelope = assert_error(&response, 400, "invalid_request");
            assert_eq!(
                envelope["error"]["param"].as_str(),
                param,
                "{method} {body}"
            );
        }
    }
    let list = env
        .send(Req::get("/v1/customers").key(&key))
        .await
        .json()
        .unwrap();
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "no bad body wrote anything"
    );
}

#[tokio::test]
async fn size_and_media_type_are_checked() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let padding = "x".repeat(64 * 1024);
    let big = json!({"fullName": "Jane", "metadata": {"p": padding}}).to_string();
    let response = env
        .send(Req::json("POST", "/v1/customers", &big).key(&key))
        .await;
    assert_error(&response, 413, "payload_too_large");
    let exactly = format!("{{\"fullName\": \"Jane\"{}}}", " ".repeat(64 * 1024 - 20));
    assert_eq!(exactly.len(), 64 * 1024);
    assert_eq!(
        env.send(Req::json("POST", "/v1/customers", &exactly).key(&key))
            .await
            .status,
        201,
        "64 KiB is allowed"
    );

    let text = Req::new("POST", "/v1/customers")
        .header("content-type", "text/plain")
        .body(br#"{"fullName": "Jane"}"#);
    assert_error(
        &env.send(text.key(&key)).await,
        415,
        "unsupported_media_type",
    );
    // Forms are read (forms.rs); other encodings are not.
    let multipart = Req::new("POST", "/v1/customers")
        .header("content-type", "multipart/form-data; boundary=x")
        .body(b"--x\r\nContent-Disposition: form-data; name=\"fullName\"\r\n\r\nJane\r\n--x--");
    assert_error(
        &env.send(multipart.key(&key)).await,
        415,
        "unsupported_media_type",
    );
    // JSON sent without its Content-Type, or as a form (what `curl -d` sends by default),
    // is told to send Content-Type: application/json, not read as a form field.
    let untyped = Req::new("POST", "/v1/customers").body(br#"{"fullName": "Jane"}"#);
    let as_form = Req::new("POST", "/v1/customers")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(br#" {"fullName": "Jane"}"#);
    for req in [untyped, as_form] {
        let error = assert_error(
            &env.send(req.key(&key)).await,
            415,
            "unsupported_media_type",
        );
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("send Content-Type: application/json"),
            "{message}"
        );
    }
    let listed = env
        .send(Req::get("/v1/customers").key(&key))
        .await
        .json()
        .unwrap();
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        1,
        "only the 64 KiB one"
    );
    let charset = Req::new("POST", "/v1/customers")
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(br#"{"fullName": "Jane"}"#);
    assert_eq!(env.send(charset.key(&key)).await.status, 201);
    let empty = Req::new("POST", "/v1/customers");
    assert_error(&env.send(empty.key(&key)).await, 400, "invalid_request");
    let binary = Req::new("POST", "/v1/customers")
        .header("content-type", "application/json")
        .body(&[0xff, 0xfe, 0x00]);
    assert_error(&env.send(binary.key(&key)).await, 400, "invalid_request");
}

#[tokio::test]
async fn bad_query_strings_and_ids() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=1e2", "limit"),
        ("cursor=abc", "cursor"),
        ("cursor=", "cursor"),
        ("updated_since=yesterday", "updated_since"),
        ("updated_since=2026-06-23", "updated_since"),
        ("external_id=x&cursor=abc", "cursor"),
        ("sort=asc", "sort"),
    ] {
        let response = env
            .send(Req::get("/v1/customers").query(query).key(&key))
            .await;
        let body = assert_error(&response, 400, "invalid_request");
        assert_eq!(body["error"]["param"], param, "{query}");
    }
    for path in [
        "/v1/customers/not-a-uuid",
        "/v1/customers/01890000-0000-7000-8000-000000000000",
        "/v1/customers/%00/aml",
    ] {
        assert_error(&env.send(Req::get(path).key(&key)).await, 404, "not_found");
    }
    let response = env
        .send(
            Req::json("POST", "/v1/customers", r#"{"fullName": "J"}"#)
                .query("dry_run=1")
                .key(&key),
        )
        .await;
    assert_error(&response, 400, "invalid_request");
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        prop_oneof![
            Just("fullName"),
            Just("externalId"),
            Just("email"),
            Just("metadata"),
            Just("type")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("fullName".to_owned()),
                    Just("full_name".to_owned()),
                    Just("externalId".to_owned()),
                    Just("email".to_owned()),
                    Just("metadata".to_owned()),
                    Just("country".to_owned()),
                    Just("dateOfBirth".to_owned()),
                    Just("type".to_owned()),
                    Just("kyc_status".to_owned()),
                    ".{0,12}",
                ],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_body_or_query_string_produces_a_5xx(body in arbitrary_json(), raw in ".{0,60}", query in "[a-z_=&%0-9:T.Z+-]{0,40}") {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let env = shared_env().await;
            let key = &env.1;
            let env = &env.0;
            for req in [
                Req::json("POST", "/v1/customers", &body.to_string()),
                Req::json("POST", "/v1/customers", &raw),
                Req::json("PATCH", "/v1/customers/01890000-0000-7000-8000-000000000000", &body.to_string()),
                Req::get("/v1/customers").query(&query),
                Req::get("/v1/customers").query(&raw.replace(' ', "+")),
            ] {
                let response = env.send(req.key(key)).await;
                assert!(response.status < 500, "{} for body {body} / raw {raw:?} / query {query:?}", response.status);
                assert!(response.header("request-id").is_some());
                if response.status >= 400 {
                    // The envelope, with a code the contract gives that status for.
                    let code = response
                        .json()
                        .and_then(|body| body["error"]["code"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| panic!("{} without an error code", response.status));
                    // A fuzzed body or query is the client's mistake (400), or names a
                    // customer that does not exist (404): nothing else may answer it.
                    assert!(
                        matches!(
                            (response.status, code.as_str()),
                            (400, "invalid_request") | (404, "not_found")
                        ),
                        "{} {code} for body {body} / raw {raw:?} / query {query:?}",
                        response.status
                    );
                    assert_error(&response, response.status, &code);
                }
            }
        });
    }
}

/// One environment for every proptest case (tables are cheap, but not that cheap).
async fn shared_env() -> &'static (TestEnv, shared::keys::table::IssuedKey) {
    static ENV: tokio::sync::OnceCell<(TestEnv, shared::keys::table::IssuedKey)> =
        tokio::sync::OnceCell::const_new();
    ENV.get_or_init(|| async {
        let env = TestEnv::new().await;
        let key = env.full_key("fuzz").await;
        (env, key)
    })
    .await
}
