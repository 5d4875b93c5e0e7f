//! Idempotency-Key semantics through API Gateway v2 events.

use chrono::Duration;
use serde_json::json;
use shared::idempotency::record::fingerprint;
use shared::idempotency::record::IN_PROGRESS_LOCK_SECS;
use shared::idempotency::table::Begin;
use shared::org::OrgId;
use shared::time;

use crate::helpers::{assert_error, idempotency_key, Req, TestEnv};

/// Takes (or fails to take) `key` for a request, as the API's first step does.
async fn begin(
    env: &TestEnv,
    org: &OrgId,
    key: &shared::idempotency::record::IdempotencyKey,
    fingerprint: &str,
    at: time::Timestamp,
    reserve: &str,
) -> Begin {
    env.app
        .idempotency
        .begin(org, key, fingerprint, at, reserve)
        .await
        .unwrap()
}

/// A completed 201 with `body`, as the store keeps it.
fn stored_201(body: &str) -> shared::idempotency::record::StoredResponse {
    shared::idempotency::record::StoredResponse {
        status: 201,
        headers: vec![],
        body: body.into(),
    }
}

fn post(body: &str, idempotency_key: &str) -> Req {
    Req::json("POST", "/v1/customers", body).header("idempotency-key", idempotency_key)
}

#[tokio::test]
async fn a_repeat_is_replayed_byte_for_byte() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let first = env
        .send(
            post(
                r#"{"fullName": "Jane", "metadata": {"a": "1", "b": "2"}}"#,
                "k-1",
            )
            .key(&key),
        )
        .await;
    assert_eq!(first.status, 201);
    assert!(first.header("idempotent-replayed").is_none());
    // Same request, other whitespace and key order.
    let again = env
        .send(
            post(
                "{\"metadata\":{\"b\":\"2\",\"a\":\"1\"},\n\"fullName\":\"Jane\"}",
                "k-1",
            )
            .key(&key),
        )
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body, "byte for byte");
    assert_eq!(again.header("location"), first.header("location"));
    assert_ne!(
        again.header("request-id"),
        first.header("request-id"),
        "each request has its own id"
    );
    let list = env
        .send(Req::get("/v1/customers").key(&key))
        .await
        .json()
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn another_body_under_the_same_key_is_422() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    assert_eq!(
        env.send(post(r#"{"fullName": "Jane"}"#, "k-2").key(&key))
            .await
            .status,
        201
    );
    assert_error(
        &env.send(post(r#"{"fullName": "John"}"#, "k-2").key(&key))
            .await,
        422,
        "idempotency_key_reused",
    );
    // The same key on another route is another request too.
    let created = env
        .send(Req::get("/v1/customers").key(&key))
        .await
        .json()
        .unwrap();
    let path = format!(
        "/v1/customers/{}",
        created["data"][0]["id"].as_str().unwrap()
    );
    let patch = Req::json("PATCH", &path, r#"{"fullName": "Jane"}"#)
        .header("idempotency-key", "k-2")
        .key(&key);
    assert_error(&env.send(patch).await, 422, "idempotency_key_reused");
}

#[tokio::test]
async fn a_key_in_flight_is_409_until_its_lock_lapses() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let org = OrgId::parse("acme").unwrap();
    let body = json!({"fullName": "Jane"});
    let fp = fingerprint("POST", "/v1/customers", &body);
    let ikey = idempotency_key("k-3");
    // Another invocation holds the key right now.
    assert!(matches!(
        begin(&env, &org, &ikey, &fp, time::now(), "reserved").await,
        Begin::Started(_)
    ));
    let busy = env.send(post(&body.to_string(), "k-3").key(&key)).await;
    assert_error(&busy, 409, "idempotency_key_in_use");

    // A holder that died: its lock (the function timeout) has lapsed, so the key is taken over.
    let stale = time::now() - Duration::seconds(60);
    let ikey4 = idempotency_key("k-4");
    assert!(matches!(
        begin(&env, &org, &ikey4, &fp, stale, "reserved").await,
        Begin::Started(_)
    ));
    let taken_over = env.send(post(&body.to_string(), "k-4").key(&key)).await;
    assert_eq!(taken_over.status, 201);
}

#[tokio::test]
async fn records_expire_after_24_hours_even_before_ttl_deletes_them() {
    let env = TestEnv::new().await;
    let org = OrgId::parse("acme").unwrap();
    let fp = fingerprint("POST", "/v1/customers", &json!({"fullName": "Jane"}));
    let other_fp = fingerprint("POST", "/v1/customers", &json!({"fullName": "John"}));
    let ikey = idempotency_key("k-5");
    let long_ago = time::now() - Duration::hours(25);
    let Begin::Started(token) = begin(&env, &org, &ikey, &fp, long_ago, "reserved").await else {
        panic!("the key is free")
    };
    let response = stored_201("{}");
    env.app
        .idempotency
        .complete(&org, &ikey, &token, &response)
        .await
        .unwrap();
    // Within the day the record stands; after it, the key is free, even for another body.
    let within = long_ago + Duration::hours(23);
    assert_eq!(
        begin(&env, &org, &ikey, &other_fp, within, "reserved").await,
        Begin::Reused
    );
    assert_eq!(
        begin(&env, &org, &ikey, &fp, within, "reserved").await,
        Begin::Replay(response)
    );
    assert!(matches!(
        begin(&env, &org, &ikey, &other_fp, time::now(), "reserved").await,
        Begin::Started(_)
    ));
}

#[tokio::test]
async fn keys_are_scoped_to_the_org() {
    let env = TestEnv::new().await;
    let acme = env.full_key("acme").await;
    let globex = env.full_key("globex").await;
    let a = env
        .send(post(r#"{"fullName": "Jane"}"#, "shared-key").key(&acme))
        .await;
    let g = env
        .send(post(r#"{"fullName": "Jane"}"#, "shared-key").key(&globex))
        .await;
    assert_eq!((a.status, g.status), (201, 201));
    assert!(
        g.header("idempotent-replayed").is_none(),
        "another org's key is another key"
    );
    assert_ne!(a.json().unwrap()["id"], g.json().unwrap()["id"]);
}

#[tokio::test]
async fn rejected_requests_save_nothing() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let reader = env
        .issue_key("acme", &[shared::keys::scope::Scope::CustomersRead], &[])
        .await;
    assert_error(
        &env.send(post(r#"{"fullName": ""}"#, "k-6").key(&key)).await,
        400,
        "invalid_request",
    );
    assert_error(
        &env.send(post(r#"{"fullName": "Jane"}"#, "k-6").key(&reader))
            .await,
        403,
        "forbidden_scope",
    );
    assert_error(
        &env.send(post(r#"{"fullName": "Jane"}"#, "k-6")).await,
        401,
        "unauthorized",
    );
    assert_eq!(env.item_count(&env.tables.idempotency).await, 0);
    let ok = env
        .send(post(r#"{"fullName": "Jane"}"#, "k-6").key(&key))
        .await;
    assert_eq!(ok.status, 201, "the key is still fresh");
    assert!(ok.header("idempotent-replayed").is_none());
}

#[tokio::test]
async fn executed_client_errors_are_stored_and_replayed() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    env.create(&key, json!({"fullName": "B", "externalId": "taken"}))
        .await;
    let a = env.create(&key, json!({"fullName": "A"})).await;
    let path = format!("/v1/customers/{}", a["id"].as_str().unwrap());
    let req = Req::json("PATCH", &path, r#"{"externalId": "taken"}"#)
        .header("idempotency-key", "k-7")
        .key(&key);
    let first = env.send(req.clone()).await;
    assert_error(&first, 409, "conflict");
    let again = env.send(req).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
}

#[tokio::test]
async fn malformed_idempotency_keys_are_400() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    for bad in ["k".repeat(256), "tab\tkey".to_owned()] {
        let response = env
            .send(post(r#"{"fullName": "Jane"}"#, &bad).key(&key))
            .await;
        let body = assert_error(&response, 400, "invalid_request");
        assert_eq!(body["error"]["param"], "Idempotency-Key");
    }
}

#[tokio::test]
async fn the_lock_outlives_the_function_and_a_late_owner_never_overwrites() {
    let env = TestEnv::new().await;
    let org = OrgId::parse("acme").unwrap();
    let fp = fingerprint("POST", "/v1/customers", &json!({"fullName": "Jane"}));
    let ikey = idempotency_key("k-lock");
    let t0 = time::now() - Duration::seconds(120);
    let Begin::Started(first) = begin(&env, &org, &ikey, &fp, t0, "reserved").await else {
        panic!("the key is free")
    };
    // At the function's timeout the first request may still be writing: the key stays held.
    let at_timeout = t0 + Duration::seconds(shared::request::FUNCTION_TIMEOUT_SECS as i64);
    assert_eq!(
        begin(&env, &org, &ikey, &fp, at_timeout, "reserved").await,
        Begin::InProgress
    );
    // Once the lock has lapsed, a retry takes it over with a token of its own.
    let later = t0 + Duration::seconds(IN_PROGRESS_LOCK_SECS + 1);
    let Begin::Started(second) = begin(&env, &org, &ikey, &fp, later, "reserved").await else {
        panic!("a lapsed lock is taken over")
    };
    assert_ne!(first, second);
    // The first owner finishes late: neither its completion nor its release touches the
    // record the second owner holds.
    let stale = stored_201(r#"{"from":"first"}"#);
    env.app
        .idempotency
        .complete(&org, &ikey, &first, &stale)
        .await
        .unwrap();
    env.app
        .idempotency
        .release(&org, &ikey, &first)
        .await
        .unwrap();
    assert_eq!(
        begin(&env, &org, &ikey, &fp, later, "reserved").await,
        Begin::InProgress,
        "still the second owner's, in progress"
    );
    let fresh = stored_201(r#"{"from":"second"}"#);
    env.app
        .idempotency
        .complete(&org, &ikey, &second, &fresh)
        .await
        .unwrap();
    assert_eq!(
        begin(&env, &org, &ikey, &fp, later, "reserved").await,
        Begin::Replay(fresh)
    );
}

#[tokio::test]
async fn a_400_found_while_running_stores_nothing() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    // Whether full_name is required depends on whether the external id exists: only the
    // run can tell, and it is still a validation error, so the key stays free.
    let first = env
        .send(post(r#"{"externalId": "crm-unknown"}"#, "k-400").key(&key))
        .await;
    let body = assert_error(&first, 400, "invalid_request");
    assert_eq!(body["error"]["param"], "full_name");
    // Nothing stored: the key is released, so the fixed body runs under it (not a 422).
    let fixed = env
        .send(
            post(
                r#"{"externalId": "crm-unknown", "fullName": "Jane"}"#,
                "k-400",
            )
            .key(&key),
        )
        .await;
    assert_eq!(
        fixed.status,
        201,
        "{}",
        String::from_utf8_lossy(&fixed.body)
    );
    assert!(fixed.header("idempotent-replayed").is_none());
}

#[tokio::test]
async fn a_create_that_landed_unanswered_is_found_not_made_twice() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let org = OrgId::parse("acme").unwrap();
    let body = json!({"fullName": "Jane"});
    let fp = fingerprint("POST", "/v1/customers", &body);
    let ikey = idempotency_key("k-landed");
    // A first run reserved an id, and its write landed, but it answered 503 (it ran out of
    // time waiting for DynamoDB's reply) and released the key.
    let reserved = shared::customers::model::id_created_at(time::now());
    let Begin::Started(lease) =
        begin(&env, &org, &ikey, &fp, time::now(), &reserved.to_string()).await
    else {
        panic!("the key is free")
    };
    let input = shared::customers::input::CustomerInput::parse(
        body.as_object().unwrap(),
        time::now().date_naive(),
    )
    .unwrap();
    let landed = shared::customers::model::Customer::create_with_id(
        &input,
        shared::customers::model::AddedVia::Integration,
        reserved,
    )
    .unwrap();
    env.app.customers.insert(&org, &landed).await.unwrap();
    env.app
        .idempotency
        .release(&org, &ikey, &lease)
        .await
        .unwrap();

    // The client retries with the same key: it gets that customer, not a second one.
    let retry = env
        .send(post(&body.to_string(), "k-landed").key(&key))
        .await;
    assert_eq!(
        retry.status,
        201,
        "{}",
        String::from_utf8_lossy(&retry.body)
    );
    assert_eq!(retry.json().unwrap()["id"], reserved.to_string());
    assert_eq!(env.item_count(&env.tables.customers).await, 1);
    // And from then on it is a plain replay.
    let again = env
        .send(post(&body.to_string(), "k-landed").key(&key))
        .await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, retry.body);
}

#[tokio::test]
async fn a_released_key_taken_by_another_request_reserves_afresh() {
    let env = TestEnv::new().await;
    let org = OrgId::parse("acme").unwrap();
    let ikey = idempotency_key("k-other");
    let fp_a = fingerprint("POST", "/v1/customers", &json!({"fullName": "A"}));
    let fp_b = fingerprint("POST", "/v1/customers", &json!({"fullName": "B"}));
    let Begin::Started(a) = begin(&env, &org, &ikey, &fp_a, time::now(), "id-a").await else {
        panic!("free")
    };
    env.app.idempotency.release(&org, &ikey, &a).await.unwrap();
    // Another body under the released key: its own reservation, not A's.
    let Begin::Started(b) = begin(&env, &org, &ikey, &fp_b, time::now(), "id-b").await else {
        panic!("a released key is free")
    };
    assert_eq!(b.reserved, "id-b");
    env.app.idempotency.release(&org, &ikey, &b).await.unwrap();
    // The same body again: B's reservation carries over.
    let Begin::Started(b2) = begin(&env, &org, &ikey, &fp_b, time::now(), "id-b2").await else {
        panic!("a released key is free")
    };
    assert_eq!(b2.reserved, "id-b");
}
