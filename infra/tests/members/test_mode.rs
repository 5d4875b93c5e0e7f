//! Test mode through the local gateway: `ic_test_` keys made with the member API reach the
//! org's test data only, and live keys its live data only — in every lookup, listing,
//! cursor, `external_id` and idempotency record.

use serde_json::{json, Value};
use shared::members::role::Role;

use crate::helpers::{Plane, Reply, Signed};

/// A key of `mode` with every scope, made by `admin`; its plaintext.
fn key(plane: &Plane, admin: &Signed, mode: &str) -> String {
    let reply = plane.post(
        "/v1/org/api-keys",
        &admin.token,
        json!({"label": format!("{mode} key"), "scopes": ["customers:read", "customers:write", "aml:read"], "mode": mode}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["mode"], mode);
    let key = body["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&format!("ic_{mode}_")), "{key}");
    key
}

fn create(plane: &Plane, key: &str, external_id: &str, idempotency: Option<&str>) -> Reply {
    let auth = format!("Bearer {key}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    if let Some(value) = idempotency {
        headers.push(("idempotency-key", value));
    }
    let body = json!({"external_id": external_id, "full_name": "Jane Doe"}).to_string();
    plane.call_with("POST", "/v1/customers", &headers, Some(&body))
}

fn ids(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn test_keys_reach_only_test_data_and_live_keys_only_live_data() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let live = key(&plane, &admin, "live");
    let test = key(&plane, &admin, "test");
    assert_eq!(plane.get("/v1/me", &test).json()["mode"], "test");
    assert_eq!(plane.get("/v1/me", &live).json()["mode"], "live");

    // One external id in each mode: two customers, neither a conflict nor an upsert.
    let in_test = create(&plane, &test, "crm-1", None);
    assert_eq!(in_test.status, 201, "{}", in_test.body);
    let test_id = in_test.json()["id"].as_str().unwrap().to_owned();
    let in_live = create(&plane, &live, "crm-1", None);
    assert_eq!(in_live.status, 201, "{}", in_live.body);
    let live_id = in_live.json()["id"].as_str().unwrap().to_owned();
    assert_ne!(test_id, live_id);

    // Each key lists, polls and reads its own mode's customer, and 404s on the other's.
    assert_eq!(
        ids(&plane.get("/v1/customers", &test)),
        std::slice::from_ref(&test_id)
    );
    assert_eq!(
        ids(&plane.get("/v1/customers", &live)),
        std::slice::from_ref(&live_id)
    );
    let poll = "/v1/customers?updated_since=2020-01-01T00:00:00Z";
    assert_eq!(ids(&plane.get(poll, &test)), std::slice::from_ref(&test_id));
    assert_eq!(ids(&plane.get(poll, &live)), std::slice::from_ref(&live_id));
    for (key, own, other) in [(&test, &test_id, &live_id), (&live, &live_id, &test_id)] {
        assert_eq!(plane.get(&format!("/v1/customers/{own}"), key).status, 200);
        for path in [
            format!("/v1/customers/{other}"),
            format!("/v1/customers/{other}/aml"),
        ] {
            plane.get(&path, key).assert_error(404, "not_found");
        }
        plane
            .call(
                "PATCH",
                &format!("/v1/customers/{other}"),
                key,
                Some(json!({"full_name": "Mallory"})),
            )
            .assert_error(404, "not_found");
    }
    // The other mode's customer is untouched.
    let live_customer = plane.get(&format!("/v1/customers/{live_id}"), &live).json();
    assert_eq!(live_customer["full_name"], "Jane Doe");
}

#[test]
fn a_cursor_of_one_mode_is_refused_in_the_other() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let live = key(&plane, &admin, "live");
    let test = key(&plane, &admin, "test");
    for i in 0..3 {
        assert_eq!(create(&plane, &test, &format!("t-{i}"), None).status, 201);
        assert_eq!(create(&plane, &live, &format!("l-{i}"), None).status, 201);
    }
    for (issuer, other) in [(&test, &live), (&live, &test)] {
        let first = plane.get("/v1/customers?limit=1", issuer).json();
        let cursor = first["next_cursor"].as_str().unwrap().to_owned();
        let path = format!("/v1/customers?limit=1&cursor={cursor}");
        assert_eq!(plane.get(&path, issuer).status, 200);
        let refused: Value = plane.get(&path, other).assert_error(400, "invalid_request");
        assert_eq!(refused["error"]["param"], "cursor");
    }
}

#[test]
fn an_idempotency_key_is_separate_in_each_mode() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let live = key(&plane, &admin, "live");
    let test = key(&plane, &admin, "test");
    let once = uuid::Uuid::new_v4().to_string();
    let first_test = create(&plane, &test, "crm-9", Some(&once));
    assert_eq!(first_test.status, 201, "{}", first_test.body);
    // The same key and body in live mode is a first request there, not a replay of test's.
    let first_live = create(&plane, &live, "crm-9", Some(&once));
    assert_eq!(first_live.status, 201, "{}", first_live.body);
    assert_eq!(first_live.header("idempotent-replayed"), None);
    assert_ne!(first_live.json()["id"], first_test.json()["id"]);
    // Each mode replays its own.
    for (key, first) in [(&test, &first_test), (&live, &first_live)] {
        let again = create(&plane, key, "crm-9", Some(&once));
        assert_eq!(again.status, 201);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.json()["id"], first.json()["id"]);
    }
    assert_eq!(ids(&plane.get("/v1/customers", &test)).len(), 1);
    assert_eq!(ids(&plane.get("/v1/customers", &live)).len(), 1);
}

#[test]
fn a_test_key_rolls_into_a_test_key_and_bad_modes_are_refused() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let test = key(&plane, &admin, "test");
    let id = plane.get("/v1/me", &test).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rolled = plane.post(
        &format!("/v1/org/api-keys/{id}/roll"),
        &admin.token,
        json!({"expire_old_in_seconds": 0}),
    );
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    assert_eq!(rolled.json()["mode"], "test");
    assert!(rolled.json()["key"]
        .as_str()
        .unwrap()
        .starts_with("ic_test_"));
    for bad in [json!("TEST"), json!("sandbox"), json!(1)] {
        let refused = plane
            .post(
                "/v1/org/api-keys",
                &admin.token,
                json!({"label": "x", "scopes": ["customers:read"], "mode": bad}),
            )
            .assert_error(400, "invalid_request");
        assert_eq!(refused["error"]["param"], "mode");
    }
    // The filtered listing still names each key's mode.
    let keys = plane.get("/v1/org/api-keys", &admin.token).json();
    assert!(keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["mode"] == "test"));
}

fn helper(plane: &Plane, key: &str, id: &str, what: &str, body: Value) -> Reply {
    plane.post(
        &format!("/v1/test_helpers/customers/{id}/{what}"),
        key,
        body,
    )
}

#[test]
fn test_helpers_drive_a_test_customer_to_verified_and_clear_and_pollers_see_it() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let test = key(&plane, &admin, "test");
    let created = create(&plane, &test, "crm-42", None).json();
    let id = created["id"].as_str().unwrap().to_owned();
    let before = created["updated_at"].as_str().unwrap().to_owned();
    let steps = [
        ("kyc", json!({"status": "IN_PROGRESS"})),
        ("kyc", json!({"status": "VERIFIED"})),
        ("aml", json!({"status": "PENDING"})),
        ("aml", json!({"status": "CLEAR"})),
    ];
    let mut last = before.clone();
    for (what, body) in steps {
        let moved = helper(&plane, &test, &id, what, body.clone());
        assert_eq!(moved.status, 200, "{what} {body}: {}", moved.body);
        let at = moved.json()["updated_at"].as_str().unwrap().to_owned();
        assert!(at > last, "updated_at moves forward: {at} after {last}");
        last = at;
    }
    // A poller with the time it last saw finds the change, with the final statuses.
    let polled = plane
        .get(&format!("/v1/customers?updated_since={before}"), &test)
        .json();
    let seen = &polled["data"][0];
    assert_eq!(seen["id"], json!(id));
    assert_eq!(seen["kyc_status"], "VERIFIED");
    assert_eq!(seen["aml"]["status"], "CLEAR");
    // A match carries categories.
    helper(&plane, &test, &id, "aml", json!({"status": "PENDING"}));
    let matched = helper(
        &plane,
        &test,
        &id,
        "aml",
        json!({"status": "POTENTIAL_MATCH", "categories": ["PEP"]}),
    );
    assert_eq!(matched.json()["aml"]["categories"], json!(["PEP"]));
    // A helper's move under an Idempotency-Key: the retry is the first answer, replayed,
    // and the move is made once.
    let with_key = |key: &str, what: &str, body: &str| {
        plane.call_with(
            "POST",
            &format!("/v1/test_helpers/customers/{id}/{what}"),
            &[
                ("authorization", &format!("Bearer {test}")),
                ("content-type", "application/json"),
                ("idempotency-key", key),
            ],
            Some(body),
        )
    };
    let reverify = with_key("kyc-1", "kyc", r#"{"status": "IN_PROGRESS"}"#);
    assert_eq!(reverify.status, 200, "{}", reverify.body);
    let again = with_key("kyc-1", "kyc", r#"{"status": "IN_PROGRESS"}"#);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), reverify.json());
    with_key("kyc-1", "kyc", r#"{"status": "VERIFIED"}"#)
        .assert_error(422, "idempotency_key_reused");
    let moved = with_key("clear-1", "aml", r#"{"status": "CLEAR"}"#);
    assert_eq!(moved.status, 200, "{}", moved.body);
    let replayed = with_key("clear-1", "aml", r#"{"status": "CLEAR"}"#);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(replayed.json(), moved.json());
}

#[test]
fn test_helpers_refuse_live_keys_bad_moves_and_bad_bodies_and_change_nothing() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let live = key(&plane, &admin, "live");
    let test = key(&plane, &admin, "test");
    let test_id = create(&plane, &test, "t-1", None).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let live_id = create(&plane, &live, "l-1", None).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let kyc = json!({"status": "IN_PROGRESS"});
    // A live key has no test helpers, for its own customers or any.
    for id in [&live_id, &test_id] {
        helper(&plane, &live, id, "kyc", kyc.clone()).assert_error(404, "not_found");
    }
    // A test key can't reach a live customer.
    helper(&plane, &test, &live_id, "kyc", kyc.clone()).assert_error(404, "not_found");
    // A test key without customers:write.
    let reader = plane.post(
        "/v1/org/api-keys",
        &admin.token,
        json!({"label": "reader", "scopes": ["customers:read"], "mode": "test"}),
    );
    let reader = reader.json()["key"].as_str().unwrap().to_owned();
    helper(&plane, &reader, &test_id, "kyc", kyc.clone()).assert_error(403, "forbidden_scope");
    // An illegal move: NOT_STARTED can't become VERIFIED.
    let refused = helper(
        &plane,
        &test,
        &test_id,
        "kyc",
        json!({"status": "VERIFIED"}),
    )
    .assert_error(409, "conflict");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("NOT_STARTED"),
        "{refused}"
    );
    for (what, body, param) in [
        ("kyc", json!({"status": "DONE"}), "status"),
        ("kyc", json!({}), "status"),
        ("kyc", json!({"status": "IN_PROGRESS", "note": "x"}), "note"),
        (
            "aml",
            json!({"status": "PENDING", "categories": ["PEP"]}),
            "categories",
        ),
        (
            "aml",
            json!({"status": "PENDING", "categories": "PEP"}),
            "categories",
        ),
        (
            "aml",
            json!({"status": "PENDING", "categories": ["FRAUD"]}),
            "categories",
        ),
    ] {
        let refused = helper(&plane, &test, &test_id, what, body.clone())
            .assert_error(400, "invalid_request");
        assert_eq!(refused["error"]["param"], param, "{body}");
    }
    // Nothing moved, in either mode.
    let test_customer = plane.get(&format!("/v1/customers/{test_id}"), &test).json();
    assert_eq!(test_customer["kyc_status"], "NOT_STARTED");
    assert_eq!(test_customer["aml"]["status"], "NOT_SCREENED");
    let live_customer = plane.get(&format!("/v1/customers/{live_id}"), &live).json();
    assert_eq!(live_customer["kyc_status"], "NOT_STARTED");
}
