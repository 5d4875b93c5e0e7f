//! Customer routes through API Gateway v2 events: semantics, scopes and DynamoDB call budgets.

use serde_json::json;
use shared::keys::scope::Scope;

use crate::helpers::{assert_error, Req, TestEnv};

#[tokio::test]
async fn a_no_op_upsert_leaves_updated_at_and_a_real_one_moves_it() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let body = json!({"externalId": "crm-1", "fullName": "Jane Doe", "email": "jane@example.com"});
    let first = env
        .send(Req::json("POST", "/v1/customers", &body.to_string()).key(&key))
        .await;
    assert_eq!(first.status, 201);
    let first = first.json().unwrap();

    let same = env
        .send(Req::json("POST", "/v1/customers", &body.to_string()).key(&key))
        .await;
    assert_eq!(same.status, 200, "a known external_id answers 200");
    let same = same.json().unwrap();
    assert_eq!(same["id"], first["id"]);
    assert_eq!(
        same["updated_at"], first["updated_at"],
        "nothing changed, nothing moved"
    );

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let changed = env
        .send(
            Req::json(
                "POST",
                "/v1/customers",
                r#"{"externalId": "crm-1", "phone": "+44 20 7946 0958"}"#,
            )
            .key(&key),
        )
        .await;
    assert_eq!(changed.status, 200);
    let changed = changed.json().unwrap();
    assert_eq!(changed["id"], first["id"]);
    assert_eq!(changed["phone"], "+44 20 7946 0958");
    assert_eq!(
        changed["full_name"], "Jane Doe",
        "fields not given are kept"
    );
    assert!(changed["updated_at"].as_str() > first["updated_at"].as_str());
    assert_eq!(changed["created_at"], first["created_at"]);
}

#[tokio::test]
async fn posts_without_external_id_always_create() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let a = env.create(&key, json!({"fullName": "Twin"})).await;
    let b = env
        .create(&key, json!({"fullName": "Twin", "externalId": null}))
        .await;
    assert_ne!(a["id"], b["id"]);
    assert_eq!(b["external_id"], serde_json::Value::Null);
    let unknown = env
        .send(Req::json("POST", "/v1/customers", r#"{"externalId": "new-one"}"#).key(&key))
        .await;
    let body = assert_error(&unknown, 400, "invalid_request");
    assert_eq!(body["error"]["param"], "full_name", "creating needs a name");
}

#[tokio::test]
async fn patch_updates_given_fields_and_null_clears() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let c = env
        .create(&key, json!({"fullName": "Jane", "email": "j@example.com", "country": "gb", "metadata": {"a": "1"}}))
        .await;
    assert_eq!(c["country"], "GB");
    let id = c["id"].as_str().unwrap();
    let path = format!("/v1/customers/{id}");
    let patched = env
        .send(
            Req::json(
                "PATCH",
                &path,
                r#"{"email": null, "type": "BUSINESS", "metadata": {"b": "2"}}"#,
            )
            .key(&key),
        )
        .await;
    assert_eq!(patched.status, 200);
    let patched = patched.json().unwrap();
    assert_eq!(patched["email"], serde_json::Value::Null);
    assert_eq!(patched["type"], "BUSINESS");
    assert_eq!(
        patched["metadata"],
        json!({"b": "2"}),
        "metadata is replaced whole"
    );
    assert_eq!(patched["country"], "GB");
    assert_eq!(patched["full_name"], "Jane");
    let fetched = env.send(Req::get(&path).key(&key)).await.json().unwrap();
    assert_eq!(fetched, patched, "the change is stored");

    let noop = env
        .send(Req::json("PATCH", &path, "{}").key(&key))
        .await
        .json()
        .unwrap();
    assert_eq!(noop["updated_at"], patched["updated_at"]);
    for body in [
        r#"{"kyc_status": "VERIFIED"}"#,
        r#"{"aml": {"status": "CLEAR"}}"#,
        r#"{"id": "x"}"#,
    ] {
        assert_error(
            &env.send(Req::json("PATCH", &path, body).key(&key)).await,
            400,
            "invalid_request",
        );
    }
    let missing = Req::json(
        "PATCH",
        "/v1/customers/01890000-0000-7000-8000-000000000000",
        "{}",
    )
    .key(&key);
    assert_error(&env.send(missing).await, 404, "not_found");
}

#[tokio::test]
async fn moving_external_id_onto_a_taken_one_is_409_and_the_old_one_is_freed() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let a = env
        .create(&key, json!({"fullName": "A", "externalId": "ext-a"}))
        .await;
    let b = env
        .create(&key, json!({"fullName": "B", "externalId": "ext-b"}))
        .await;
    let a_path = format!("/v1/customers/{}", a["id"].as_str().unwrap());

    let clash = env
        .send(Req::json("PATCH", &a_path, r#"{"externalId": "ext-b"}"#).key(&key))
        .await;
    let body = assert_error(&clash, 409, "conflict");
    assert_eq!(body["error"]["param"], "external_id");
    let still = env.send(Req::get(&a_path).key(&key)).await.json().unwrap();
    assert_eq!(
        still["external_id"], "ext-a",
        "a refused move changes nothing"
    );

    let moved = env
        .send(Req::json("PATCH", &a_path, r#"{"externalId": "ext-a2"}"#).key(&key))
        .await;
    assert_eq!(moved.status, 200);
    // ext-a is free again: a POST with it creates a new customer.
    let fresh = env
        .send(
            Req::json(
                "POST",
                "/v1/customers",
                r#"{"externalId": "ext-a", "fullName": "C"}"#,
            )
            .key(&key),
        )
        .await;
    assert_eq!(fresh.status, 201);
    assert_ne!(fresh.json().unwrap()["id"], a["id"]);
    // ext-a2 now finds A, and clearing it frees it too.
    let found = env
        .send(
            Req::get("/v1/customers")
                .query("external_id=ext-a2")
                .key(&key),
        )
        .await
        .json()
        .unwrap();
    assert_eq!(found["data"][0]["id"], a["id"]);
    env.send(Req::json("PATCH", &a_path, r#"{"externalId": null}"#).key(&key))
        .await;
    let gone = env
        .send(
            Req::get("/v1/customers")
                .query("external_id=ext-a2")
                .key(&key),
        )
        .await
        .json()
        .unwrap();
    assert_eq!(gone["data"], json!([]));
    let b_again = env
        .send(
            Req::json(
                "POST",
                "/v1/customers",
                r#"{"externalId": "ext-b", "fullName": "B"}"#,
            )
            .key(&key),
        )
        .await;
    assert_eq!(
        (b_again.status, b_again.json().unwrap()["id"].clone()),
        (200, b["id"].clone())
    );
}

#[tokio::test]
async fn aml_data_is_shown_only_to_keys_with_aml_read() {
    let env = TestEnv::new().await;
    let writer = env
        .issue_key("acme", &[Scope::CustomersWrite, Scope::CustomersRead], &[])
        .await;
    let full = env.full_key("acme").await;
    let created = env
        .send(Req::json("POST", "/v1/customers", r#"{"fullName": "Jane"}"#).key(&writer))
        .await;
    let created = created.json().unwrap();
    assert!(
        created.get("aml").is_none(),
        "not in the create response either"
    );
    let id = created["id"].as_str().unwrap();
    let one = env
        .send(Req::get(&format!("/v1/customers/{id}")).key(&writer))
        .await
        .json()
        .unwrap();
    assert!(one.get("aml").is_none());
    let list = env
        .send(Req::get("/v1/customers").key(&writer))
        .await
        .json()
        .unwrap();
    assert!(list["data"][0].get("aml").is_none());
    assert!(!list.to_string().contains("NOT_SCREENED"));
    let body = assert_error(
        &env.send(Req::get(&format!("/v1/customers/{id}/aml")).key(&writer))
            .await,
        403,
        "forbidden_scope",
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("aml:read"));

    let one = env
        .send(Req::get(&format!("/v1/customers/{id}")).key(&full))
        .await
        .json()
        .unwrap();
    assert_eq!(
        one["aml"],
        json!({"status": "NOT_SCREENED", "categories": []})
    );
    let aml = env
        .send(Req::get(&format!("/v1/customers/{id}/aml")).key(&full))
        .await
        .json()
        .unwrap();
    assert_eq!(
        aml,
        json!({"object": "aml_result", "customer_id": id, "status": "NOT_SCREENED", "categories": [], "screened_at": null, "updated_at": created["updated_at"]})
    );
    let aml_only = env.issue_key("acme", &[Scope::AmlRead], &[]).await;
    assert_eq!(
        env.send(Req::get(&format!("/v1/customers/{id}/aml")).key(&aml_only))
            .await
            .status,
        200
    );
    assert_error(
        &env.send(Req::get(&format!("/v1/customers/{id}")).key(&aml_only))
            .await,
        403,
        "forbidden_scope",
    );
}

#[tokio::test]
async fn reads_cost_two_dynamodb_calls() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let c = env
        .create(&key, json!({"fullName": "Jane", "externalId": "x-1"}))
        .await;
    let id = c["id"].as_str().unwrap();
    // The create above already recorded last_used_at: from here on, the common path.
    for path in [
        format!("/v1/customers/{id}"),
        format!("/v1/customers/{id}/aml"),
    ] {
        assert_eq!(env.send(Req::get(&path).key(&key)).await.status, 200);
        assert_eq!(
            env.calls.take(),
            ["UpdateItem", "GetItem"],
            "{path}: the key (found and counted), then the customer"
        );
    }
    assert_eq!(
        env.send(Req::get("/v1/customers").key(&key)).await.status,
        200
    );
    assert_eq!(env.calls.take(), ["UpdateItem", "Query"]);
    assert_eq!(
        env.send(
            Req::get("/v1/customers")
                .query("updated_since=2026-01-01T00:00:00Z")
                .key(&key)
        )
        .await
        .status,
        200
    );
    assert_eq!(env.calls.take(), ["UpdateItem", "Query"]);
    // The external_id lookup reads the marker, then the customer.
    assert_eq!(
        env.send(Req::get("/v1/customers").query("external_id=x-1").key(&key))
            .await
            .status,
        200
    );
    assert_eq!(env.calls.take(), ["UpdateItem", "GetItem", "GetItem"]);
    // A create with an unknown external_id: marker read, then one transaction.
    let created = env
        .send(
            Req::json(
                "POST",
                "/v1/customers",
                r#"{"fullName": "B", "externalId": "x-2"}"#,
            )
            .key(&key),
        )
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(
        env.calls.take(),
        ["UpdateItem", "GetItem", "TransactWriteItems"]
    );
}

#[tokio::test]
async fn a_storage_failure_mid_write_is_503_and_leaves_nothing_half_written() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    env.faults.fail("TransactWriteItems");
    let req = Req::json(
        "POST",
        "/v1/customers",
        r#"{"fullName": "Jane", "externalId": "crm-9"}"#,
    )
    .key(&key)
    .header("idempotency-key", "retry-me");
    let failed = env.send(req.clone()).await;
    assert_error(&failed, 503, "service_unavailable");
    assert!(failed.header("retry-after").is_some());
    assert_eq!(
        env.item_count(&env.tables.customers).await,
        0,
        "no customer and no marker"
    );
    // The 5xx released the Idempotency-Key (the record stays, its lock lapsed and its
    // reserved id kept): the retry below runs again at once.

    env.faults.heal();
    let retried = env.send(req).await;
    assert_eq!(retried.status, 201, "the client's retry runs again");
    assert!(retried.header("idempotent-replayed").is_none());
    assert_eq!(
        env.item_count(&env.tables.customers).await,
        2,
        "the customer and its marker, together"
    );
}

#[tokio::test]
async fn a_read_failure_is_503_not_500() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    env.send(Req::get("/v1/customers").key(&key)).await;
    env.faults.fail("Query");
    let response = env.send(Req::get("/v1/customers").key(&key)).await;
    assert_error(&response, 503, "service_unavailable");
    assert_eq!(response.header("retry-after"), Some("1"));
}
