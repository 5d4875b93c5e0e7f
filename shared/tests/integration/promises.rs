//! The promises that broke at the edges (issue: "every promise holds at the edges"), each
//! driven through API Gateway v2 events as an integrator or an attacker would.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Duration;
use serde_json::{json, Value};
use shared::customers::model::WRITE_ONLY_FIELDS;
use shared::keys::ip_allowlist::IpAllowlist;
use shared::keys::scope::Scope;
use shared::org::OrgId;
use shared::time;
use uuid::Uuid;

use crate::helpers::{assert_error, concurrently, log_line, logs, Req, TestEnv};

fn post(body: &Value) -> Req {
    Req::json("POST", "/v1/customers", &body.to_string())
}

fn keys_of(value: &Value) -> Vec<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn a_replay_never_shows_more_than_the_callers_scopes() {
    let env = TestEnv::new().await;
    let full = env.full_key("acme").await;
    let no_aml = env
        .issue_key("acme", &[Scope::CustomersWrite, Scope::CustomersRead], &[])
        .await;
    let write_only = env.issue_key("acme", &[Scope::CustomersWrite], &[]).await;
    let body =
        json!({"externalId": "crm-replay", "fullName": "Jane Doe", "email": "jane@example.com"});

    let first = env
        .send(post(&body).header("idempotency-key", "K").key(&full))
        .await;
    assert_eq!(first.status, 201);
    let created = first.json().unwrap();
    assert!(created.get("aml").is_some());
    let id = created["id"].as_str().unwrap().to_owned();

    // The same key and body from a key without aml:read: A's response, less the aml block.
    let replay = env
        .send(post(&body).header("idempotency-key", "K").key(&no_aml))
        .await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let shown = replay.json().unwrap();
    assert!(shown.get("aml").is_none(), "{shown}");
    let mut expected = created.clone();
    expected.as_object_mut().unwrap().remove("aml");
    assert_eq!(shown, expected);
    assert_eq!(log_line(&replay)["customer_ids"], id.as_str());
    assert_eq!(log_line(&replay)["key_id"], no_aml.record.id.as_str());

    // From a write-only key: only what identifies the record.
    let replay = env
        .send(post(&body).header("idempotency-key", "K").key(&write_only))
        .await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(keys_of(&replay.json().unwrap()), WRITE_ONLY_FIELDS);
    assert_eq!(log_line(&replay)["customer_ids"], id.as_str());

    // A request first made by a write-only key, repeated by a full key: the store kept the
    // whole record, so the full key sees all it may.
    let body2 = json!({"externalId": "crm-replay-2", "fullName": "John Roe"});
    let receipt = env
        .send(
            post(&body2)
                .header("idempotency-key", "K2")
                .key(&write_only),
        )
        .await;
    assert_eq!(keys_of(&receipt.json().unwrap()), WRITE_ONLY_FIELDS);
    let whole = env
        .send(post(&body2).header("idempotency-key", "K2").key(&full))
        .await;
    assert_eq!(whole.header("idempotent-replayed"), Some("true"));
    assert_eq!(whole.json().unwrap()["full_name"], "John Roe");
    assert!(whole.json().unwrap().get("aml").is_some());

    // The full key still gets its own response back byte for byte.
    let again = env
        .send(post(&body).header("idempotency-key", "K").key(&full))
        .await;
    assert_eq!(again.body, first.body);
}

#[tokio::test]
async fn a_write_only_key_never_reads_a_customer() {
    let env = TestEnv::new().await;
    let full = env.full_key("acme").await;
    let ingest = env.issue_key("acme", &[Scope::CustomersWrite], &[]).await;
    let ingest_aml = env
        .issue_key("acme", &[Scope::CustomersWrite, Scope::AmlRead], &[])
        .await;
    let created = env
        .create(
            &full,
            json!({"externalId": "crm-9", "fullName": "Jane Doe", "email": "jane@example.com",
                   "phone": "+44 20 7946 0958", "country": "GB"}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    for key in [&ingest, &ingest_aml] {
        // Naming a known external id and nothing else used to answer with the whole record.
        let probe = env
            .send(post(&json!({"externalId": "crm-9"})).key(key))
            .await;
        assert_eq!(probe.status, 200);
        let shown = probe.json().unwrap();
        assert_eq!(keys_of(&shown), WRITE_ONLY_FIELDS, "{shown}");
        assert_eq!(shown["id"], id);
        assert_eq!(
            shown["updated_at"], created["updated_at"],
            "nothing changed"
        );
        let empty_patch = env
            .send(Req::json("PATCH", &format!("/v1/customers/{id}"), "{}").key(key))
            .await;
        assert_eq!(empty_patch.status, 200);
        assert_eq!(keys_of(&empty_patch.json().unwrap()), WRITE_ONLY_FIELDS);
        let created_by_ingest = env
            .send(post(&json!({"fullName": "New Person", "email": "n@example.com"})).key(key))
            .await;
        assert_eq!(created_by_ingest.status, 201);
        assert_eq!(
            keys_of(&created_by_ingest.json().unwrap()),
            WRITE_ONLY_FIELDS
        );
    }
    // With customers:read, a write answers with the record.
    let read_write = env
        .send(post(&json!({"externalId": "crm-9"})).key(&full))
        .await;
    assert_eq!(read_write.json().unwrap()["email"], "jane@example.com");
}

/// Metadata as large as the contract allows, in 4-byte characters: about 40 KB an item.
fn heavy_metadata(seed: usize) -> Value {
    let value: String = std::iter::repeat_n('😀', 500).collect();
    let pairs: serde_json::Map<String, Value> = (0..20)
        .map(|i| {
            (
                format!("k{seed}-{i}-{}", "x".repeat(30)),
                Value::from(value.clone()),
            )
        })
        .collect();
    Value::Object(pairs)
}

async fn walk(
    env: &TestEnv,
    key: &shared::keys::table::IssuedKey,
    query: &str,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = query.to_owned();
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let response = env.send(Req::get("/v1/customers").query(&q).key(key)).await;
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        let page = response.json().unwrap();
        let ids: Vec<String> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        pages.push(ids);
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(page["has_more"], true);
                cursor = Some(next.to_owned());
            }
            None => {
                assert_eq!(page["has_more"], false);
                return pages;
            }
        }
    }
}

#[tokio::test]
async fn pages_are_full_past_dynamodbs_one_megabyte() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let since = time::format(&time::now());
    for i in 0..60 {
        let response = env
            .send(
                post(&json!({"fullName": format!("Heavy {i}"), "metadata": heavy_metadata(i)}))
                    .key(&key),
            )
            .await;
        assert_eq!(
            response.status,
            201,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
    }
    for query in [
        "limit=50".to_owned(),
        format!("limit=50&updated_since={since}"),
    ] {
        let pages = walk(&env, &key, &query).await;
        let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
        assert_eq!(sizes, [50, 10], "{query}");
        let all: BTreeSet<&String> = pages.iter().flatten().collect();
        assert_eq!(all.len(), 60, "{query}: every customer once");
    }
}

#[tokio::test]
async fn id_and_created_at_tell_the_same_order_under_concurrency() {
    let env = Arc::new(TestEnv::new().await);
    let key = env.full_key("acme").await;
    let requests = (0..24)
        .map(|i| post(&json!({"fullName": format!("Racer {i}")})).key(&key))
        .collect();
    let responses = concurrently(&env, requests).await;
    for response in &responses {
        let c = response.json().unwrap();
        let id = Uuid::parse_str(c["id"].as_str().unwrap()).unwrap();
        let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
        let id_ms = i64::try_from(secs).unwrap() * 1000 + i64::from(nanos / 1_000_000);
        let created = time::parse(c["created_at"].as_str().unwrap()).unwrap();
        assert_eq!(id_ms, created.timestamp_millis(), "{c}");
    }
    let page = env
        .send(Req::get("/v1/customers").query("limit=100").key(&key))
        .await
        .json()
        .unwrap();
    let created: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["created_at"].as_str().unwrap())
        .collect();
    let mut newest_first = created.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        created, newest_first,
        "newest-first by id is newest-first by created_at"
    );
}

#[tokio::test]
async fn updated_at_only_moves_forward_for_a_customer() {
    let env = Arc::new(TestEnv::new().await);
    let key = env.full_key("acme").await;
    let created = env.create(&key, json!({"fullName": "Jane"})).await;
    let id = Uuid::parse_str(created["id"].as_str().unwrap()).unwrap();
    let org = OrgId::parse("acme").unwrap();
    // A write stamped by a clock an hour ahead (the back office's, say).
    let ahead = time::now() + Duration::hours(1);
    env.app
        .customers
        .update(&org, &id, |c, _| {
            c.updated_at = ahead;
            Ok(true)
        })
        .await
        .unwrap();
    let patched = env
        .send(
            Req::json(
                "PATCH",
                &format!("/v1/customers/{id}"),
                r#"{"fullName": "Jane D"}"#,
            )
            .key(&key),
        )
        .await
        .json()
        .unwrap();
    let stamped = time::parse(patched["updated_at"].as_str().unwrap()).unwrap();
    assert!(stamped > ahead, "{stamped} must be after {ahead}");

    // Contending writers: every stamp they write is distinct and later than the one before.
    let requests = (0..8)
        .map(|i| {
            let body = json!({"fullName": format!("Jane {i}")}).to_string();
            Req::json("PATCH", &format!("/v1/customers/{id}"), &body).key(&key)
        })
        .collect();
    let stamps: BTreeSet<String> = concurrently(&env, requests)
        .await
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200);
            r.json().unwrap()["updated_at"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(stamps.len(), 8, "no two writes share a stamp: {stamps:?}");
    assert!(stamps.iter().all(|s| time::parse(s).unwrap() > stamped));
}

#[tokio::test]
async fn updated_since_pages_to_the_end_at_any_precision() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    // Digits below the millisecond that are not zero: the cursor must still name the
    // listing the first page was asked for.
    let start = time::now() - Duration::seconds(5) + Duration::nanoseconds(123_456);
    for i in 0..5 {
        env.create(&key, json!({"fullName": format!("P {i}")}))
            .await;
    }
    let micro = start.format("%Y-%m-%dT%H:%M:%S.%6fZ").to_string();
    let nano_offset = start
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .format("%Y-%m-%dT%H:%M:%S.%9f%:z")
        .to_string()
        .replace('+', "%2B");
    for since in [micro, nano_offset] {
        let pages = walk(&env, &key, &format!("limit=2&updated_since={since}")).await;
        let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 1], "{since}");
    }
}

#[tokio::test]
async fn query_filters_are_validated_like_the_fields() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let long = "x".repeat(5000);
    for bad in [
        long.as_str(),
        "%20crm-1",
        "crm-1%20",
        "crm%E2%80%AE1",
        "crm%E2%80%8B1",
        "",
    ] {
        let body = assert_error(
            &env.send(
                Req::get("/v1/customers")
                    .query(&format!("external_id={bad}"))
                    .key(&key),
            )
            .await,
            400,
            "invalid_request",
        );
        assert_eq!(body["error"]["param"], "external_id", "{bad}");
    }
    // Each request authenticated (one UpdateItem finds and counts its key; the first also
    // wrote last_used_at); no filter reached the customers table.
    let calls = env.calls.take();
    assert_eq!(calls, vec!["UpdateItem".to_owned(); 7], "{calls:?}");
}

/// Whether the function's own deadline bound ended the request with this `Request-Id`
/// (its warning names the request), rather than the SDK giving up on its own timeouts.
fn ended_by_the_deadline_bound(response: &shared::edge::gateway_event::GatewayResponse) -> bool {
    let request_id = response.header("request-id").expect("Request-Id header");
    logs()
        .text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|l| {
            l["request_id"] == request_id
                && l["message"] == "request ran out of time before the function's deadline"
        })
}

#[tokio::test]
async fn a_request_answers_before_the_lambda_deadline() {
    // The mechanism, not the clock: a stalled call is cut by the bound the Lambda deadline
    // sets (which names the request in its warning), well before the SDK's own timeouts
    // would end it (each attempt 2 s, the operation 5 s). A bound taken from anywhere but
    // the invocation's deadline would leave the SDK to answer, without that warning.
    assert!(
        shared::sdk::timeouts().operation_attempt_timeout()
            > Some(std::time::Duration::from_millis(1_500))
    );
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    env.faults.inject("Query", localdb::Fault::Stall);
    let response = env
        .send_with_deadline(Req::get("/v1/customers").key(&key), 1_500)
        .await;
    env.faults.heal();
    assert_error(&response, 503, "service_unavailable");
    assert!(response.header("retry-after").is_some());
    assert!(
        ended_by_the_deadline_bound(&response),
        "the deadline's bound answered"
    );
    assert_eq!(
        log_line(&response)["key_id"],
        key.record.id.as_str(),
        "the log line still names the key"
    );

    // A write under an Idempotency-Key is cut by the tighter bound it keeps for releasing
    // its key, so the client's retry runs again.
    env.faults
        .inject("TransactWriteItems", localdb::Fault::Stall);
    let body = json!({"fullName": "Slow"});
    let response = env
        .send_with_deadline(
            post(&body).header("idempotency-key", "slow").key(&key),
            2_500,
        )
        .await;
    env.faults.heal();
    assert_error(&response, 503, "service_unavailable");
    assert!(
        ended_by_the_deadline_bound(&response),
        "the write's bound answered"
    );
    let retry = env
        .send(post(&body).header("idempotency-key", "slow").key(&key))
        .await;
    assert_eq!(
        retry.status,
        201,
        "the key was released: {}",
        String::from_utf8_lossy(&retry.body)
    );
    assert!(retry.header("idempotent-replayed").is_none());
}

#[tokio::test]
async fn refusals_are_logged_under_the_key_that_was_refused() {
    let env = TestEnv::new().await;
    let revoked = env.full_key("acme").await;
    env.app
        .keys
        .revoke(&revoked.record.org_id, &revoked.record.id, time::now())
        .await
        .unwrap();
    let fenced = env
        .issue_key("acme", &Scope::ALL, &["203.0.113.0/24"])
        .await;
    let reader = env.issue_key("acme", &[Scope::CustomersRead], &[]).await;
    let cases = [
        (Req::get("/v1/customers").key(&revoked), 401, &revoked),
        (Req::get("/v1/customers").key(&fenced), 403, &fenced),
        (post(&json!({"fullName": "X"})).key(&reader), 403, &reader),
    ];
    for (req, status, key) in cases {
        let response = env.send(req).await;
        assert_eq!(response.status, status);
        let line = log_line(&response);
        assert_eq!(line["key_id"], key.record.id.as_str(), "{line}");
        assert_eq!(line["org"], "acme");
    }
    // An unknown key identifies nothing.
    let stranger = env.full_key("acme").await;
    let unknown = Req::get("/v1/customers").header(
        "authorization",
        &format!(
            "Bearer {}",
            shared::keys::token::ApiKeyToken::generate(shared::org::Mode::Live)
                .unwrap()
                .expose_secret()
        ),
    );
    let _ = stranger;
    let response = env.send(unknown).await;
    assert_eq!(log_line(&response)["key_id"], "");
}

#[tokio::test]
async fn invisible_and_repeated_text_is_refused_with_the_field() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let cases = [
        (r#"{"fullName": "Jane\u202eeoD"}"#, "full_name"),
        (r#"{"fullName": "Jane\u2066Doe\u2069"}"#, "full_name"),
        (r#"{"fullName": "Ja\u200bne"}"#, "full_name"),
        (r#"{"fullName": "\ufeffJane"}"#, "full_name"),
        (
            r#"{"fullName": "Jane", "externalId": " crm-1"}"#,
            "external_id",
        ),
        (
            r#"{"fullName": "Jane", "externalId": "crm-1 "}"#,
            "external_id",
        ),
        (
            r#"{"fullName": "Jane", "externalId": "crm\u200b1"}"#,
            "external_id",
        ),
        (
            r#"{"fullName": "Jane", "email": "a@example.com", "email": "b@example.com"}"#,
            "email",
        ),
        (
            r#"{"fullName": "Jane", "metadata": {"tier": "1", "tier": "2"}}"#,
            "metadata.tier",
        ),
    ];
    for (body, param) in cases {
        let response = env
            .send(Req::json("POST", "/v1/customers", body).key(&key))
            .await;
        let err = assert_error(&response, 400, "invalid_request");
        assert_eq!(err["error"]["param"], param, "{body}");
    }
    // ZWJ and ZWNJ are part of real names.
    let zwnj = env
        .send(post(&json!({"fullName": "Mehr\u{200c}dad", "externalId": "crm-zw"})).key(&key))
        .await;
    assert_eq!(zwnj.status, 201);
    let family = env
        .send(post(&json!({"fullName": "👩\u{200d}👩\u{200d}👧 Family"})).key(&key))
        .await;
    assert_eq!(family.status, 201);
    assert_eq!(
        env.item_count(&env.tables.customers).await,
        3,
        "only the two valid customers (and one marker)"
    );
}

#[tokio::test]
async fn ip_allowlists_hold_at_their_edges() {
    let env = TestEnv::new().await;
    let fenced = env
        .issue_key("acme", &Scope::ALL, &["203.0.113.0/24"])
        .await;
    // A dual-stack front end reports IPv4 clients as IPv4-mapped IPv6 addresses.
    let mapped = env
        .send(
            Req::get("/v1/customers")
                .key(&fenced)
                .source_ip("::ffff:203.0.113.9"),
        )
        .await;
    assert_eq!(mapped.status, 200);
    let outside = env
        .send(
            Req::get("/v1/customers")
                .key(&fenced)
                .source_ip("::ffff:198.51.100.9"),
        )
        .await;
    assert_error(&outside, 403, "ip_not_allowed");

    // Entries that would allow everyone, or that have host bits set, are refused up front.
    for bad in ["0.0.0.0/0", "::/0", "203.0.113.7/24"] {
        let scopes = vec!["customers:read".to_owned()];
        let result = shared::keys::table::NewApiKey::parse(
            "acme",
            "k",
            &scopes,
            None,
            &[bad.to_owned()],
            "tests",
            time::now(),
        );
        assert!(result.is_err(), "{bad}");
    }

    // A stored entry that no longer parses fails closed, as a 403 — not a 500, not open.
    let mut record = env.full_key("acme").await.record;
    let token = shared::keys::token::ApiKeyToken::generate(shared::org::Mode::Live).unwrap();
    record.id = "key_badallowlist".into();
    record.key_hash = token.hash();
    record.ip_allowlist = IpAllowlist::from_stored(["198.51.100.0/24", "10.0.0.0/33"]);
    env.app.keys.put_new(&record).await.unwrap();
    let response = env
        .send(
            Req::get("/v1/customers")
                .header(
                    "authorization",
                    &format!("Bearer {}", token.expose_secret()),
                )
                .source_ip("198.51.100.10"),
        )
        .await;
    assert_error(&response, 403, "ip_not_allowed");
}

#[tokio::test]
async fn a_cursor_made_without_the_server_secret_is_refused() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    for i in 0..3 {
        env.create(&key, json!({"fullName": format!("C {i}")}))
            .await;
    }
    let page = env
        .send(Req::get("/v1/customers").query("limit=1").key(&key))
        .await
        .json()
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    // The same position sealed under another secret (another deployment, or a guess).
    let other = shared::customers::cursor::CursorKey::random().unwrap();
    let last = Uuid::parse_str(page["data"][0]["id"].as_str().unwrap()).unwrap();
    let forged = shared::customers::cursor::encode(
        &other,
        &OrgId::parse("acme").unwrap(),
        &shared::customers::cursor::Listing::ByCreation,
        &shared::customers::cursor::Position::Created { id: last },
    );
    assert_ne!(forged, cursor);
    let body = assert_error(
        &env.send(
            Req::get("/v1/customers")
                .query(&format!("limit=1&cursor={forged}"))
                .key(&key),
        )
        .await,
        400,
        "invalid_request",
    );
    assert_eq!(body["error"]["param"], "cursor");
    let genuine = env
        .send(
            Req::get("/v1/customers")
                .query(&format!("limit=1&cursor={cursor}"))
                .key(&key),
        )
        .await;
    assert_eq!(genuine.status, 200);
}

#[tokio::test]
async fn json_is_utf8_and_dates_are_dates() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let latin1 = Req::new("POST", "/v1/customers")
        .header("content-type", "application/json; charset=iso-8859-1")
        .body(br#"{"fullName": "Jane"}"#)
        .key(&key);
    let body = assert_error(&env.send(latin1).await, 415, "unsupported_media_type");
    assert!(body["error"]["message"].as_str().unwrap().contains("UTF-8"));
    for fine in [
        "application/json; charset=utf-8",
        "application/json;charset=\"UTF-8\"",
    ] {
        let req = Req::new("POST", "/v1/customers")
            .header("content-type", fine)
            .body(br#"{"fullName": "Jane"}"#)
            .key(&key);
        assert_eq!(env.send(req).await.status, 201, "{fine}");
    }
    let body = assert_error(
        &env.send(post(&json!({"fullName": "Jane", "dateOfBirth": "2023-02-30"})).key(&key))
            .await,
        400,
        "invalid_request",
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(!message.contains("past date"), "{message}");
    assert_eq!(body["error"]["param"], "date_of_birth");
}

/// A handler that has identified its key, then panics.
async fn explode(
    _req: lambda_http::Request,
    _meta: shared::request::RequestMeta,
    log: shared::request::RequestLog,
) -> Result<lambda_http::Response<lambda_http::Body>, shared::ApiError> {
    log.identified(&shared::org::OrgId::parse("acme").unwrap(), "key_panics");
    log.customer("0193f1d2-7a2b-7c3d-8e4f-5a6b7c8d9e0f");
    panic!("a bug in a handler")
}

/// A handler that has identified its key, then never finishes.
async fn hang(
    _req: lambda_http::Request,
    _meta: shared::request::RequestMeta,
    log: shared::request::RequestLog,
) -> Result<lambda_http::Response<lambda_http::Body>, shared::ApiError> {
    log.identified(&shared::org::OrgId::parse("acme").unwrap(), "key_hangs");
    std::future::pending().await
}

/// The request line of `request_id`, as the request-log writer would read it.
fn kept_record(request_id: &str) -> shared::request_log::record::RequestRecord {
    let text = crate::helpers::logs().text();
    let records: Vec<_> = text
        .lines()
        .filter(|line| line.contains(request_id))
        .filter_map(|line| shared::request_log::record::RequestRecord::from_log_line(line, None))
        .collect();
    assert_eq!(records.len(), 1, "one record for {request_id}");
    records.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_panicking_handler_ends_as_the_500_envelope() {
    crate::helpers::logs();
    let req = lambda_http::http::Request::builder()
        .uri("https://api.test/v1/customers")
        .body(lambda_http::Body::Empty)
        .unwrap();
    let response = shared::edge::http::answer("GET /v1/customers".into(), req, explode).await;
    assert_eq!(response.status(), 500);
    let request_id = response.headers()["request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let lambda_http::Body::Text(text) = response.body() else {
        panic!("a JSON body")
    };
    let body: Value = serde_json::from_str(text).unwrap();
    assert_eq!(body["error"]["code"], "internal_error");
    assert_eq!(body["error"]["request_id"], request_id.as_str());
    assert!(
        !text.contains("a bug in a handler"),
        "no internals in the answer"
    );
    // What the handler had told the log before it panicked reaches the key's request log.
    let record = kept_record(&request_id);
    assert_eq!(record.key_id, "key_panics");
    assert_eq!(record.status, 500);
    assert_eq!(
        record.customer_ids,
        ["0193f1d2-7a2b-7c3d-8e4f-5a6b7c8d9e0f"]
    );
}

#[tokio::test]
async fn a_request_stopped_at_the_backstop_is_still_in_its_keys_log() {
    crate::helpers::logs();
    let mut context = lambda_http::lambda_runtime::Context::default();
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
    context.deadline = now_ms + 600;
    let req = lambda_http::http::Request::builder()
        .uri("https://api.test/v1/customers")
        .body(lambda_http::Body::Empty)
        .unwrap();
    let req = lambda_http::RequestExt::with_lambda_context(req, context);
    let response = shared::edge::http::answer("GET /v1/customers".into(), req, hang).await;
    assert_eq!(response.status(), 503);
    let request_id = response.headers()["request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let record = kept_record(&request_id);
    assert_eq!(record.key_id, "key_hangs");
    assert_eq!(record.status, 503);
}

#[test]
fn the_build_that_ships_unwinds_so_the_panic_net_holds() {
    // With panic = "abort" a panic kills the Lambda process (API Gateway's bare 502) before
    // the net above can catch it. No profile and no crate may ask for it.
    let root = localdb::workspace_root();
    let mut manifests = vec![root.join("Cargo.toml")];
    for dir in std::fs::read_dir(root.join("functions")).unwrap() {
        manifests.push(dir.unwrap().path().join("Cargo.toml"));
    }
    for manifest in manifests {
        let text = std::fs::read_to_string(&manifest).unwrap();
        let aborts = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or_default().replace(' ', ""))
            .any(|l| l == "panic=\"abort\"" || l == "panic='abort'");
        assert!(!aborts, "{} sets panic = \"abort\"", manifest.display());
    }
}

#[test]
fn each_function_runs_its_own_route_on_a_current_thread_runtime() {
    // A function's binary links only what its `main` names: each main must name its own
    // route's constant in `shared::functions` (a wrong one would serve another route), not
    // a runtime selector, and run on the current-thread runtime (no worker threads to start).
    let root = localdb::workspace_root();
    let template = localdb::Template::load_default().unwrap();
    let mut checked = 0;
    for declared in template.routes() {
        let Some(binary) = declared.binary else {
            continue;
        };
        let constant = match (declared.method.as_deref(), declared.path.as_deref()) {
            (Some(method), Some(path)) if !path.starts_with('$') => {
                let Some(route) = shared::edge::routes::Route::from_declaration(method, path)
                else {
                    panic!("{method} {path} is not a library route")
                };
                if route.is_page() {
                    continue;
                }
                let mut name = String::new();
                for (i, c) in format!("{route:?}").chars().enumerate() {
                    if c.is_ascii_uppercase() && i > 0 {
                        name.push('_');
                    }
                    name.push(c.to_ascii_uppercase());
                }
                name
            }
            _ => "FALLBACK".to_owned(),
        };
        let main =
            std::fs::read_to_string(root.join("functions").join(&binary).join("src/main.rs"))
                .unwrap();
        let call = format!("shared::run_function(shared::functions::{constant})");
        assert!(
            main.contains(&call),
            "functions/{binary} should call {call}"
        );
        assert!(
            main.contains(r#"#[tokio::main(flavor = "current_thread")]"#),
            "functions/{binary} should run on the current-thread runtime"
        );
        checked += 1;
    }
    assert!(checked >= 35, "only {checked} functions checked");
}

/// The workspace's targets as cargo sees them (`cargo metadata`), with whether each gets a
/// test harness.
fn workspace_targets() -> Vec<(String, String, bool, std::path::PathBuf)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(localdb::workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut targets = Vec::new();
    for package in metadata["packages"].as_array().unwrap() {
        for target in package["targets"].as_array().unwrap() {
            targets.push((
                package["name"].as_str().unwrap().to_owned(),
                target["kind"][0].as_str().unwrap().to_owned(),
                target["test"].as_bool().unwrap(),
                target["src_path"].as_str().unwrap().into(),
            ));
        }
    }
    targets
}

#[test]
fn route_binaries_build_no_test_harness_and_hold_no_tests() {
    // `cargo test --all-targets` would otherwise link a test harness of every route binary
    // (each links the AWS SDK) to run zero tests. With `test = false` a test written in a
    // main.rs would never run, so none may be: decisions live in the library.
    let root = localdb::workspace_root();
    let mut checked = 0;
    for (package, kind, tested, src) in workspace_targets() {
        let is_route =
            src.starts_with(root.join("functions")) || src.starts_with(root.join("infra/bench"));
        if kind != "bin" || !is_route {
            continue;
        }
        assert!(
            !tested,
            "{package}'s binary builds a test harness: set test = false on its [[bin]]"
        );
        let main = std::fs::read_to_string(&src).unwrap();
        for marker in ["#[test]", "#[tokio::test]", "#[cfg(test)]"] {
            assert!(
                !main.contains(marker),
                "{} holds a test ({marker}), which would never run",
                src.display()
            );
        }
        checked += 1;
    }
    let functions = std::fs::read_dir(root.join("functions")).unwrap().count();
    assert_eq!(
        checked,
        functions + 2,
        "every function's binary and the bench's two"
    );
}

#[test]
fn ci_fails_a_run_that_passes_its_time_budget_and_reports_every_stage() {
    let script = localdb::workspace_root().join("infra/tools/stages.sh");
    let run = |budget: &str, args: &[&str]| {
        let out = std::process::Command::new(&script)
            .args(args)
            .env("CI_BUDGET_SECS", budget)
            .output()
            .expect("stages.sh runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, _) = run("3600", &["true", "--", "sleep", "1"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("  true ") && out.contains("  sleep 1 ") && out.contains("  total "),
        "{out}"
    );

    let (ok, out, err) = run("0", &["sleep", "1"]);
    assert!(!ok, "a run over its budget fails: {out}");
    assert!(err.contains("passed the budget"), "{err}");

    // A failing stage stops the run, and the report still lists what ran.
    let (ok, out, err) = run(
        "3600",
        &["true", "--", "false", "--", "touch", "/nonexistent/never"],
    );
    assert!(!ok);
    assert!(out.contains("  false ") && !out.contains("touch"), "{out}");
    assert!(err.contains("'false' failed"), "{err}");
}
