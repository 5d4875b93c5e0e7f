//! Throttles and timeouts injected in front of DynamoDB on every call of every route: each
//! is a 503 with `Retry-After` (never a 500, never a hang past the Lambda deadline), nothing
//! is half written, and the client's retry — same Idempotency-Key — then goes through.

use localdb::{Fault, Injection};
use serde_json::json;

use shared::edge::gateway_event::GatewayResponse;

use crate::helpers::{assert_error, Req, TestEnv};

/// The Lambda deadline for faulted requests: a stalled call must be cut off by it.
const DEADLINE_MILLIS: u64 = 2_500;

#[derive(Clone, Copy, Debug)]
enum Table {
    Keys,
    Customers,
    Idempotency,
}

impl Table {
    fn name(self, env: &TestEnv) -> &str {
        match self {
            Table::Keys => &env.tables.api_keys,
            Table::Customers => &env.tables.customers,
            Table::Idempotency => &env.tables.idempotency,
        }
    }
}

const READ_FAULTS: &[Fault] = &[Fault::Throttle, Fault::Stall];
const WRITE_FAULTS: &[Fault] = &[
    Fault::Throttle,
    Fault::ProvisionedThroughputExceeded,
    Fault::TransactionThrottled,
    Fault::Stall,
];

struct Counts {
    customers: i32,
}

async fn counts(env: &TestEnv) -> Counts {
    Counts {
        customers: env.item_count(&env.tables.customers).await,
    }
}

/// Arms `fault` on `operation` against `table`, sends `req`, and checks the 503 and that no
/// customer was written; then sends the same request again, healed (the Idempotency-Key
/// released, so it runs again), and returns that answer.
async fn fault_then_retry(
    env: &TestEnv,
    operation: &str,
    table: Table,
    fault: Fault,
    req: Req,
) -> GatewayResponse {
    let before = counts(env).await;
    env.faults
        .arm(Injection::new(operation, fault).on_table(table.name(env)));
    let response = env.send_with_deadline(req.clone(), DEADLINE_MILLIS).await;
    env.faults.heal();
    let case = format!("{operation} on {table:?}, {fault:?}");
    let body = assert_error(&response, 503, "service_unavailable");
    assert!(response.header("retry-after").is_some(), "{case}: {body}");
    let after = counts(env).await;
    assert_eq!(after.customers, before.customers, "{case}: nothing written");
    let retried = env.send(req).await;
    assert!(
        retried.status < 300,
        "{case}: the retry goes through: {} {}",
        retried.status,
        String::from_utf8_lossy(&retried.body)
    );
    assert!(retried.header("idempotent-replayed").is_none(), "{case}");
    retried
}

fn faults_for(operation: &str) -> &'static [Fault] {
    match operation {
        "TransactWriteItems" => WRITE_FAULTS,
        "PutItem" => &[
            Fault::Throttle,
            Fault::ProvisionedThroughputExceeded,
            Fault::Stall,
        ],
        _ => READ_FAULTS,
    }
}

#[tokio::test]
async fn the_listing_survives_every_fault() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    env.create(&key, json!({"fullName": "Jane", "externalId": "crm-1"}))
        .await;
    let queries = [
        "limit=5",
        "updated_since=2020-01-01T00:00:00Z",
        "external_id=crm-1",
    ];
    for query in queries {
        let mut calls: Vec<(&str, Table)> = vec![("UpdateItem", Table::Keys)];
        calls.push(if query.starts_with("external_id") {
            ("GetItem", Table::Customers)
        } else {
            ("Query", Table::Customers)
        });
        for (operation, table) in calls {
            for &fault in faults_for(operation) {
                let req = Req::get("/v1/customers").query(query).key(&key);
                let ok = fault_then_retry(&env, operation, table, fault, req).await;
                assert_eq!(ok.json().unwrap()["data"].as_array().unwrap().len(), 1);
            }
        }
    }
}

#[tokio::test]
async fn creating_survives_every_fault() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let calls = [
        ("UpdateItem", Table::Keys),
        ("PutItem", Table::Idempotency),
        ("GetItem", Table::Customers),
        ("TransactWriteItems", Table::Customers),
    ];
    let mut n = 0;
    for (operation, table) in calls {
        for &fault in faults_for(operation) {
            n += 1;
            let body = json!({"fullName": "Jane", "externalId": format!("crm-new-{n}")});
            let req = Req::json("POST", "/v1/customers", &body.to_string())
                .header("idempotency-key", &format!("create-{n}"))
                .key(&key);
            let ok = fault_then_retry(&env, operation, table, fault, req).await;
            assert_eq!(ok.status, 201);
        }
    }
    // Every retry created its customer exactly once: one item and one marker each.
    assert_eq!(env.item_count(&env.tables.customers).await, 2 * n);
}

#[tokio::test]
async fn upserting_and_patching_survive_every_fault() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let created = env
        .create(&key, json!({"fullName": "Jane", "externalId": "crm-up"}))
        .await;
    let path = format!("/v1/customers/{}", created["id"].as_str().unwrap());
    let calls = [
        ("UpdateItem", Table::Keys),
        ("PutItem", Table::Idempotency),
        ("GetItem", Table::Customers),
        ("TransactWriteItems", Table::Customers),
    ];
    let mut n = 0;
    for (operation, table) in calls {
        for &fault in faults_for(operation) {
            n += 1;
            let upsert = json!({"externalId": "crm-up", "fullName": format!("Jane {n}")});
            let req = Req::json("POST", "/v1/customers", &upsert.to_string())
                .header("idempotency-key", &format!("upsert-{n}"))
                .key(&key);
            let ok = fault_then_retry(&env, operation, table, fault, req).await;
            assert_eq!(ok.json().unwrap()["full_name"], format!("Jane {n}"));

            let patch = json!({"email": format!("jane{n}@example.com")});
            let req = Req::json("PATCH", &path, &patch.to_string())
                .header("idempotency-key", &format!("patch-{n}"))
                .key(&key);
            let ok = fault_then_retry(&env, operation, table, fault, req).await;
            assert_eq!(ok.json().unwrap()["email"], format!("jane{n}@example.com"));
        }
    }
    assert_eq!(
        env.item_count(&env.tables.customers).await,
        2,
        "still one customer and its marker"
    );
}

#[tokio::test]
async fn reading_one_customer_survives_every_fault() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let created = env.create(&key, json!({"fullName": "Jane"})).await;
    let id = created["id"].as_str().unwrap();
    for path in [
        format!("/v1/customers/{id}"),
        format!("/v1/customers/{id}/aml"),
    ] {
        for (operation, table) in [("UpdateItem", Table::Keys), ("GetItem", Table::Customers)] {
            for &fault in faults_for(operation) {
                let req = Req::get(&path).key(&key);
                let ok = fault_then_retry(&env, operation, table, fault, req).await;
                assert_eq!(ok.status, 200);
            }
        }
    }
}

#[tokio::test]
async fn bookkeeping_failures_do_not_fail_a_request_that_was_served() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    // last_used_at is bookkeeping: its write may fail or stall, the request still succeeds.
    for fault in [Fault::Throttle, Fault::Stall] {
        let fresh = env.full_key("acme").await;
        // The first UpdateItem finds the key; the second, its last-use write, fails.
        env.faults.arm(
            Injection::new("UpdateItem", fault)
                .on_table(&env.tables.api_keys)
                .after_calls(1),
        );
        let listed = env
            .send_with_deadline(Req::get("/v1/customers").key(&fresh), DEADLINE_MILLIS)
            .await;
        env.faults.heal();
        assert_eq!(listed.status, 200, "{fault:?}");
    }

    // The customer was written but its response could not be stored: a 201 (answering 5xx
    // would invite a retry of a done request), and the customer exists once.
    env.faults
        .arm(Injection::new("UpdateItem", Fault::Throttle).on_table(&env.tables.idempotency));
    let body = json!({"fullName": "Jane", "externalId": "crm-kept"}).to_string();
    let created = env
        .send(
            Req::json("POST", "/v1/customers", &body)
                .header("idempotency-key", "kept")
                .key(&key),
        )
        .await;
    env.faults.heal();
    assert_eq!(created.status, 201);
    assert_eq!(env.item_count(&env.tables.customers).await, 2);

    // Storing it stalls: the answer still comes, in time, as the 201 it is.
    env.faults
        .arm(Injection::new("UpdateItem", Fault::Stall).on_table(&env.tables.idempotency));
    let body = json!({"fullName": "Jane", "externalId": "crm-stalled"}).to_string();
    let created = env
        .send_with_deadline(
            Req::json("POST", "/v1/customers", &body)
                .header("idempotency-key", "stalled")
                .key(&key),
            DEADLINE_MILLIS,
        )
        .await;
    env.faults.heal();
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    assert_eq!(env.item_count(&env.tables.customers).await, 4);
}
