//! The customers API over HTTP through the local gateway, against DynamoDB Local.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};

use serde_json::{json, Value};

use crate::helpers::{get, patch, post, Stack};

const SEED_BODY: &str = r#"{
    "externalId": "crm-7741",
    "fullName": "Jane Doe",
    "email": "jane@example.com"
  }"#;

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_seed_quickstart_runs_from_start_to_finish() {
    let stack = Stack::start();
    let key = &stack.key;
    // Step 2.
    assert_eq!(
        get(&stack.url("/v1/customers"), key).json()["data"],
        json!([])
    );
    // Step 3: ingest.
    let created = post(
        &stack.url("/v1/customers"),
        key,
        Some("0f8fad5b-d9cb-469f-a165-70867728950e"),
        SEED_BODY,
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let customer = created.json();
    assert_eq!(customer["object"], "customer");
    assert_eq!(customer["external_id"], "crm-7741");
    assert_eq!(customer["type"], "INDIVIDUAL");
    assert_eq!(customer["full_name"], "Jane Doe");
    assert_eq!(customer["email"], "jane@example.com");
    assert_eq!(customer["kyc_status"], "NOT_STARTED");
    assert_eq!(
        customer["aml"],
        json!({"status": "NOT_SCREENED", "categories": []})
    );
    assert_eq!(customer["added_via"], "INTEGRATION");
    assert_eq!(customer["created_at"], customer["updated_at"]);
    let id = customer["id"].as_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    assert_eq!(
        created.header("location"),
        Some(format!("/v1/customers/{id}").as_str())
    );

    // The back office verifies and screens the customer.
    for (kind, status) in [
        ("kyc", "IN_PROGRESS"),
        ("kyc", "VERIFIED"),
        ("aml", "PENDING"),
        ("aml", "CLEAR"),
    ] {
        let moved = stack.icadmin_json(&["customers", kind, "--org", "demo", &id, status]);
        assert_eq!(
            if kind == "kyc" {
                &moved["kyc_status"]
            } else {
                &moved["aml"]["status"]
            },
            status
        );
    }
    // An illegal move is refused and changes nothing.
    let out = stack.icadmin(&["customers", "kyc", "--org", "demo", &id, "NOT_STARTED"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot move from VERIFIED to NOT_STARTED")
    );
    let out = stack.icadmin(&["customers", "kyc", "--org", "other", &id, "IN_PROGRESS"]);
    assert!(
        !out.status.success(),
        "another org's customer cannot be moved"
    );

    // Step 4: poll.
    let polled = get(
        &stack.url("/v1/customers?updated_since=2026-06-23T00:00:00Z"),
        key,
    )
    .json();
    let data = polled["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["kyc_status"], "VERIFIED");
    assert_eq!(data[0]["aml"]["status"], "CLEAR");
    assert!(data[0]["updated_at"].as_str().unwrap() > customer["updated_at"].as_str().unwrap());
    let aml = get(&stack.url(&format!("/v1/customers/{id}/aml")), key).json();
    assert_eq!(aml["object"], "aml_result");
    assert_eq!(aml["customer_id"], id.as_str());
    assert_eq!(aml["status"], "CLEAR");
    assert!(aml["screened_at"].is_string());
}

#[test]
fn twenty_concurrent_posts_with_one_idempotency_key_create_one_customer() {
    let stack = Arc::new(Stack::start());
    let barrier = Arc::new(Barrier::new(20));
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let (stack, barrier) = (stack.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                post(
                    &stack.url("/v1/customers"),
                    &stack.key,
                    Some("same-key-20"),
                    r#"{"fullName": "Race Condition"}"#,
                )
            })
        })
        .collect();
    let replies: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    for reply in replies.iter().filter(|r| r.status == 409) {
        reply.assert_error(409, "idempotency_key_in_use");
    }
    let created: Vec<_> = replies.iter().filter(|r| r.status == 201).collect();
    assert!(!created.is_empty());
    let originals: Vec<_> = created
        .iter()
        .filter(|r| r.header("idempotent-replayed").is_none())
        .collect();
    assert_eq!(originals.len(), 1, "exactly one request executed");
    for replay in created
        .iter()
        .filter(|r| r.header("idempotent-replayed") == Some("true"))
    {
        assert_eq!(replay.body, originals[0].body, "replayed byte for byte");
    }
    let list = get(&stack.url("/v1/customers"), &stack.key).json();
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "exactly one customer"
    );
    // After completion, the same request is replayed.
    let again = post(
        &stack.url("/v1/customers"),
        &stack.key,
        Some("same-key-20"),
        r#"{ "fullName" : "Race Condition" }"#,
    );
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, originals[0].body);
}

#[test]
fn twenty_concurrent_upserts_of_one_external_id_create_one_customer() {
    let stack = Arc::new(Stack::start());
    let barrier = Arc::new(Barrier::new(20));
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let (stack, barrier) = (stack.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let body = json!({"externalId": "crm-race", "fullName": "Upsert Race", "metadata": {"writer": i.to_string()}});
                post(&stack.url("/v1/customers"), &stack.key, Some(&format!("key-{i}")), &body.to_string())
            })
        })
        .collect();
    let replies: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [vec![200; 19], vec![201]].concat(),
        "one 201, the rest 200"
    );
    let id_of = |r: &crate::helpers::Reply| r.json()["id"].as_str().unwrap().to_owned();
    let distinct: HashSet<String> = replies.iter().map(id_of).collect();
    assert_eq!(distinct.len(), 1, "every answer is the same customer");
    let list = get(&stack.url("/v1/customers"), &stack.key).json();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let by_external = get(&stack.url("/v1/customers?external_id=crm-race"), &stack.key).json();
    assert_eq!(ids(&by_external), distinct.into_iter().collect::<Vec<_>>());
}

#[test]
fn paging_120_customers_gives_50_50_20_with_every_customer_once() {
    let stack = Stack::start();
    let mut created = Vec::new();
    for i in 0..120 {
        let reply = post(
            &stack.url("/v1/customers"),
            &stack.key,
            None,
            &json!({"fullName": format!("Customer {i}")}).to_string(),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
        created.push(reply.json()["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut url = stack.url("/v1/customers?limit=50");
    loop {
        let page = get(&url, &stack.key).json();
        sizes.push(page["data"].as_array().unwrap().len());
        seen.extend(ids(&page));
        assert_eq!(page["limit"], 50);
        if page["has_more"] == json!(false) {
            assert_eq!(page["next_cursor"], Value::Null);
            break;
        }
        let cursor = page["next_cursor"].as_str().unwrap();
        url = stack.url(&format!("/v1/customers?limit=50&cursor={cursor}"));
    }
    assert_eq!(sizes, [50, 50, 20]);
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    assert_eq!(
        seen, newest_first,
        "every customer once, newest created first"
    );

    // The cursor belongs to its listing and its org.
    let first = get(&stack.url("/v1/customers?limit=50"), &stack.key).json();
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let other = stack.key_for("globex");
    let body = get(
        &stack.url(&format!("/v1/customers?cursor={cursor}")),
        &other,
    )
    .assert_error(400, "invalid_request");
    assert_eq!(body["error"]["param"], "cursor");
    let body = get(
        &stack.url(&format!(
            "/v1/customers?cursor={cursor}&updated_since=2026-01-01T00:00:00Z"
        )),
        &stack.key,
    )
    .assert_error(400, "invalid_request");
    assert_eq!(body["error"]["param"], "cursor");
    let mut tampered = cursor.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    get(
        &stack.url(&format!("/v1/customers?cursor={tampered}")),
        &stack.key,
    )
    .assert_error(400, "invalid_request");
}

#[test]
fn the_polling_walk_sees_every_change_oldest_first_and_inclusively() {
    let stack = Stack::start();
    let key = &stack.key;
    let before = get(&stack.url("/v1/customers"), key); // the API's own clock, via a response
    assert_eq!(before.status, 200);
    let watermark0 = "2026-01-01T00:00:00Z";
    let mut made = Vec::new();
    for name in ["A", "B", "C"] {
        let reply = post(
            &stack.url("/v1/customers"),
            key,
            None,
            &json!({"fullName": name, "externalId": name}).to_string(),
        );
        made.push(reply.json());
    }
    let first = get(
        &stack.url(&format!("/v1/customers?updated_since={watermark0}")),
        key,
    )
    .json();
    let names: Vec<&str> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["full_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["A", "B", "C"], "oldest change first");
    let watermark = first["data"][2]["updated_at"].as_str().unwrap().to_owned();

    // Change A (back office) and B (integration), in that order.
    let a = made[0]["id"].as_str().unwrap();
    stack.icadmin_json(&["customers", "kyc", "--org", "demo", a, "IN_PROGRESS"]);
    let b = made[1]["id"].as_str().unwrap();
    let patched = patch(
        &stack.url(&format!("/v1/customers/{b}")),
        key,
        r#"{"email": "b@example.com"}"#,
    );
    assert_eq!(patched.status, 200, "{}", patched.body);

    let second = get(
        &stack.url(&format!("/v1/customers?updated_since={watermark}")),
        key,
    )
    .json();
    let walk: Vec<(&str, &str)> = second["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["full_name"].as_str().unwrap(),
                c["updated_at"].as_str().unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = walk.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        ["C", "A", "B"],
        "C again (the watermark is inclusive), then the two changes in order"
    );
    assert!(walk.windows(2).all(|w| w[0].1 <= w[1].1));
    assert_eq!(second["data"][1]["kyc_status"], "IN_PROGRESS");
    assert_eq!(second["data"][2]["email"], "b@example.com");
    // A watermark after everything: an empty page, not an error.
    let none = get(
        &stack.url("/v1/customers?updated_since=2999-01-01T00:00:00Z"),
        key,
    )
    .json();
    assert_eq!(none["data"], json!([]));
}

#[test]
fn another_orgs_customers_are_404_on_every_route_and_their_external_ids_reusable() {
    let stack = Stack::start();
    let acme = &stack.key;
    let globex = stack.key_for("globex");
    let created = post(
        &stack.url("/v1/customers"),
        acme,
        None,
        r#"{"externalId": "shared-id", "fullName": "Acme's"}"#,
    )
    .json();
    let id = created["id"].as_str().unwrap();

    get(&stack.url(&format!("/v1/customers/{id}")), &globex).assert_error(404, "not_found");
    get(&stack.url(&format!("/v1/customers/{id}/aml")), &globex).assert_error(404, "not_found");
    patch(
        &stack.url(&format!("/v1/customers/{id}")),
        &globex,
        r#"{"fullName": "Hijacked"}"#,
    )
    .assert_error(404, "not_found");
    assert_eq!(
        get(&stack.url("/v1/customers"), &globex).json()["data"],
        json!([])
    );
    assert_eq!(
        get(&stack.url("/v1/customers?external_id=shared-id"), &globex).json()["data"],
        json!([])
    );
    assert_eq!(
        get(
            &stack.url("/v1/customers?updated_since=2020-01-01T00:00:00Z"),
            &globex
        )
        .json()["data"],
        json!([])
    );
    // A 404 for another org's customer is the same as for one that never existed.
    let missing = get(
        &stack.url("/v1/customers/01890000-0000-7000-8000-000000000000"),
        &globex,
    )
    .assert_error(404, "not_found");
    let foreign =
        get(&stack.url(&format!("/v1/customers/{id}")), &globex).assert_error(404, "not_found");
    assert_eq!(missing["error"]["message"], foreign["error"]["message"]);

    let theirs = post(
        &stack.url("/v1/customers"),
        &globex,
        None,
        r#"{"externalId": "shared-id", "fullName": "Globex's"}"#,
    );
    assert_eq!(theirs.status, 201, "the external id is free in another org");
    assert_ne!(theirs.json()["id"], created["id"]);
    let ours = get(&stack.url(&format!("/v1/customers/{id}")), acme).json();
    assert_eq!(ours["full_name"], "Acme's");
    assert_eq!(ours["updated_at"], created["updated_at"]);
}
