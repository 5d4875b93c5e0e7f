//! Warm reads: once an instance has authenticated a key, its reads start their data call
//! beside authentication. Authentication alone decides: every refusal is the refusal, with
//! no byte of what was read in the answer or the request log, answered without waiting for
//! the data call; a revocation is seen by the next request, even one already racing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use localdb::{Fault, Injection};
use serde_json::{json, Value};
use shared::edge::gateway_event::GatewayResponse;
use shared::keys::facts::SpeculationCounts;
use shared::keys::scope::Scope;
use shared::keys::table::IssuedKey;
use shared::time;

use crate::helpers::{assert_error, log_line, Req, TestEnv};

const SECRET_NAME: &str = "Zelda Speculative-Read";

fn counts(env: &TestEnv) -> SpeculationCounts {
    env.app.speculation.counts()
}

/// A customer of `key`'s org, whose name must never leak into a refusal.
async fn customer(env: &TestEnv, key: &IssuedKey) -> String {
    let created = env
        .create(
            key,
            json!({"fullName": SECRET_NAME, "externalId": "crm-warm"}),
        )
        .await;
    created["id"].as_str().unwrap().to_owned()
}

/// The three read routes for customer `id`.
fn reads(id: &str) -> Vec<Req> {
    vec![
        Req::get(&format!("/v1/customers/{id}")),
        Req::get(&format!("/v1/customers/{id}/aml")),
        Req::get("/v1/customers"),
        Req::get("/v1/customers").query("updated_since=2020-01-01T00:00:00Z"),
    ]
}

fn body_text(response: &GatewayResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

/// The answer with its per-request parts (request id, rate headers) left out.
fn answer(response: &GatewayResponse) -> (u16, Value) {
    let mut body = response.json().unwrap_or(Value::Null);
    if let Some(error) = body.get_mut("error") {
        error["request_id"] = Value::Null;
    }
    (response.status, body)
}

#[tokio::test]
async fn a_warm_read_fetches_beside_authentication_and_answers_exactly_as_a_cold_one() {
    let env = TestEnv::new().await;
    let key = env.full_key("warm").await;
    let id = customer(&env, &key).await;
    for req in reads(&id) {
        // Another instance, which never saw this key: a cold read.
        let fresh = Arc::new(shared::App::new(env.client.clone(), &env.tables));
        let cold = env.send_to(fresh.clone(), req.clone().key(&key)).await;
        assert_eq!(fresh.speculation.counts(), SpeculationCounts::default());
        let before = counts(&env);
        env.calls.take();
        let warm = env.send(req.clone().key(&key)).await;
        let calls = env.calls.take();
        let after = counts(&env);
        assert_eq!(warm.status, 200, "{}", body_text(&warm));
        assert_eq!(answer(&warm), answer(&cold), "{}", req.path);
        assert_eq!(
            after.started,
            before.started + 1,
            "{}: speculated",
            req.path
        );
        assert_eq!(after.used, before.used + 1, "{}", req.path);
        assert_eq!(after.wasted, before.wasted);
        // The same calls as a cold read: one authenticating UpdateItem and the data call.
        assert_eq!(
            calls.iter().filter(|c| *c == "UpdateItem").count(),
            1,
            "{calls:?}"
        );
        assert_eq!(calls.len(), 2, "{}: {calls:?}", req.path);
        if req.path.contains(&id) {
            assert_eq!(log_line(&warm)["customer_ids"], json!(id));
        }
    }
    // A key this instance never authenticated reads cold (and is remembered after).
    let other = env.full_key("warm").await;
    let before = counts(&env);
    let reply = env
        .send(Req::get(&format!("/v1/customers/{id}")).key(&other))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(counts(&env).started, before.started, "a first read is cold");
    let reply = env
        .send(Req::get(&format!("/v1/customers/{id}")).key(&other))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        counts(&env).started,
        before.started + 1,
        "the second is warm"
    );
}

/// Revokes `key` (of org `acme`) as the operator would; acknowledged on return.
async fn revoke(env: &TestEnv, key: &IssuedKey) {
    let org = shared::org::OrgId::parse("acme").unwrap();
    env.app
        .keys
        .revoke(&org, &key.record.id, time::now())
        .await
        .unwrap();
}

/// Warms `key` with one allowed read of `id`.
async fn warm_up(env: &TestEnv, key: &IssuedKey, id: &str, from: &str) {
    let reply = env
        .send(
            Req::get(&format!("/v1/customers/{id}"))
                .key(key)
                .source_ip(from),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", body_text(&reply));
}

/// A warm request refused with `status`/`code`: the speculative read was started and
/// thrown away, and nothing of the customer is in the answer or the request log.
async fn assert_refused_unread(env: &TestEnv, req: Req, status: u16, code: &str) {
    let before = counts(env);
    let reply = env.send(req).await;
    assert_error(&reply, status, code);
    let after = counts(env);
    assert_eq!(
        after.started,
        before.started + 1,
        "{code}: the read was started"
    );
    assert_eq!(after.wasted, before.wasted + 1, "{code}: and thrown away");
    let text = body_text(&reply);
    assert!(
        !text.contains(SECRET_NAME) && !text.contains("crm-warm"),
        "{text}"
    );
    assert_eq!(
        log_line(&reply)["customer_ids"],
        "",
        "{code}: nothing disclosed"
    );
}

#[tokio::test]
async fn every_refusal_of_a_warm_key_is_answered_with_no_byte_of_the_read() {
    let env = TestEnv::new().await;
    let owner = env.full_key("acme").await;
    let id = customer(&env, &owner).await;
    let path = format!("/v1/customers/{id}");

    // Revoked between two warm requests.
    let key = env.full_key("acme").await;
    warm_up(&env, &key, &id, "198.51.100.10").await;
    revoke(&env, &key).await;
    assert_refused_unread(&env, Req::get(&path).key(&key), 401, "unauthorized").await;
    // Refused as dead, it is forgotten: its next attempts start no read beside authentication.
    let before = counts(&env);
    let again = env.send(Req::get(&path).key(&key)).await;
    assert_error(&again, 401, "unauthorized");
    assert_eq!(
        counts(&env).started,
        before.started,
        "a dead key reads cold"
    );

    // Expired since it was warmed.
    let key = env.full_key("acme").await;
    warm_up(&env, &key, &id, "198.51.100.10").await;
    env.client
        .update_item()
        .table_name(&env.tables.api_keys)
        .key(
            "key_hash",
            aws_sdk_dynamodb::types::AttributeValue::S(hex::encode(key.token.hash().as_bytes())),
        )
        .update_expression("SET expires_at = :past")
        .expression_attribute_values(
            ":past",
            aws_sdk_dynamodb::types::AttributeValue::S(time::format(
                &(time::now() - chrono::Duration::seconds(1)),
            )),
        )
        .send()
        .await
        .unwrap();
    assert_refused_unread(&env, Req::get(&path).key(&key), 401, "unauthorized").await;

    // From a source its allowlist refuses.
    let key = env
        .issue_key("acme", &Scope::ALL, &["198.51.100.0/24"])
        .await;
    warm_up(&env, &key, &id, "198.51.100.10").await;
    assert_refused_unread(
        &env,
        Req::get(&path).key(&key).source_ip("203.0.113.9"),
        403,
        "ip_not_allowed",
    )
    .await;

    // Without the route's scope (warmed on a route it has).
    let key = env.issue_key("acme", &[Scope::CustomersRead], &[]).await;
    warm_up(&env, &key, &id, "198.51.100.10").await;
    assert_refused_unread(
        &env,
        Req::get(&format!("{path}/aml")).key(&key),
        403,
        "forbidden_scope",
    )
    .await;

    // Over its rate: a limit of 1 a second, so within one second the second is refused.
    let new = shared::keys::table::NewApiKey::parse(
        "acme",
        "slow",
        &["customers:read".to_owned()],
        None,
        &[],
        "tests",
        time::now(),
    )
    .and_then(|n| n.with_rate_limit(1))
    .unwrap();
    let key = env.app.keys.issue(new, time::now()).await.unwrap();
    let mut refused = None;
    for _ in 0..20 {
        let second = time::now().timestamp();
        let first = env.send(Req::get(&path).key(&key)).await;
        if first.status != 200 || time::now().timestamp() != second {
            continue;
        }
        let before = counts(&env);
        let next = env.send(Req::get(&path).key(&key)).await;
        if time::now().timestamp() == second {
            refused = Some((before, next));
            break;
        }
    }
    let (before, next) = refused.expect("two requests within one second");
    assert_error(&next, 429, "rate_limited");
    assert_eq!(counts(&env).wasted, before.wasted + 1);
    assert!(!body_text(&next).contains(SECRET_NAME));
    assert_eq!(log_line(&next)["customer_ids"], "");

    // Another org's warm key asks for acme's customer: its own space has no such customer.
    let stranger = env.full_key("globex").await;
    let globex_customer = customer(&env, &stranger).await;
    warm_up(&env, &stranger, &globex_customer, "198.51.100.10").await;
    let before = counts(&env);
    let reply = env.send(Req::get(&path).key(&stranger)).await;
    assert_error(&reply, 404, "not_found");
    assert_eq!(
        counts(&env).used,
        before.used + 1,
        "fetched in globex's space"
    );
    assert!(!body_text(&reply).contains(SECRET_NAME));
    assert_eq!(log_line(&reply)["customer_ids"], "");
}

#[tokio::test]
async fn a_refusal_is_answered_without_waiting_for_the_data_call() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let id = customer(&env, &key).await;
    warm_up(&env, &key, &id, "198.51.100.10").await;
    let path = format!("/v1/customers/{id}");
    // The customers table stops answering: an allowed warm read runs out of time (503)...
    env.faults
        .arm(Injection::new("GetItem", Fault::Stall).on_table(&env.tables.customers));
    let stalled = env
        .send_with_deadline(Req::get(&path).key(&key), 1_500)
        .await;
    assert_error(&stalled, 503, "service_unavailable");
    // ...but a refused one is answered by authentication alone, before that deadline.
    revoke(&env, &key).await;
    let before = counts(&env);
    let refused = env
        .send_with_deadline(Req::get(&path).key(&key), 1_500)
        .await;
    env.faults.heal();
    assert_error(&refused, 401, "unauthorized");
    assert_eq!(counts(&env).wasted, before.wasted + 1);
}

#[tokio::test]
async fn warm_reads_racing_a_revocation_never_answer_after_it_is_acknowledged() {
    let env = Arc::new(TestEnv::new().await);
    let key = Arc::new(env.full_key("acme").await);
    let id = customer(&env, &key).await;
    warm_up(&env, &key, &id, "198.51.100.10").await;
    let path = format!("/v1/customers/{id}");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..8 {
        let (env, key, path, stop) = (env.clone(), key.clone(), path.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let sent = Instant::now();
                let reply = env.send(Req::get(&path).key(&key)).await;
                seen.push((sent, reply.status, body_text(&reply).contains(SECRET_NAME)));
            }
            seen
        }));
    }
    // Some reads go through, then the revocation, then more racing reads.
    tokio::time::sleep(Duration::from_millis(300)).await;
    revoke(&env, &key).await;
    let acknowledged = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut before_ack = 0;
    let mut after_ack = 0;
    for reader in readers {
        for (sent, status, disclosed) in reader.await.unwrap() {
            if sent > acknowledged {
                after_ack += 1;
                assert_eq!(
                    status, 401,
                    "a read sent after the revocation was acknowledged"
                );
                assert!(!disclosed);
            } else if status == 200 {
                before_ack += 1;
                assert!(disclosed);
            }
        }
    }
    assert!(
        before_ack > 0 && after_ack > 0,
        "{before_ack} before, {after_ack} after"
    );
    assert!(counts(&env).used > 0, "the reads were warm");
}
