//! Per-key rate limits, counted in the one DynamoDB call that authenticates, exact across
//! instances; and `GET /v1/me`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use shared::app::App;
use shared::edge::gateway_event::GatewayResponse;
use shared::keys::scope::Scope;
use shared::keys::table::{IssuedKey, NewApiKey};
use shared::time;

use crate::helpers::{assert_error, concurrently, log_line, Req, TestEnv};

async fn key_with_limit(env: &TestEnv, rps: u32, scopes: &[Scope]) -> IssuedKey {
    let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
    let new = NewApiKey::parse("acme", "limited", &scopes, None, &[], "tests", time::now())
        .and_then(|n| n.with_rate_limit(rps))
        .unwrap();
    let issued = env.app.keys.issue(new, time::now()).await.unwrap();
    env.calls.take();
    issued
}

/// Waits for the start of a second, so a short burst falls in one window.
async fn start_of_a_second() {
    let into = chrono::Utc::now().timestamp_subsec_millis();
    tokio::time::sleep(Duration::from_millis(u64::from(1_010 - into))).await;
}

/// Sends `requests` at once, within one one-second window (a burst that straddled two
/// windows, on a slow moment, is sent again).
async fn burst(env: &Arc<TestEnv>, requests: impl Fn() -> Vec<Req>) -> Vec<GatewayResponse> {
    for _ in 0..5 {
        start_of_a_second().await;
        let second = chrono::Utc::now().timestamp();
        let responses = concurrently(env, requests()).await;
        if chrono::Utc::now().timestamp() == second {
            return responses;
        }
    }
    panic!("no burst fitted in one second in five tries");
}

fn statuses(responses: &[GatewayResponse]) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for r in responses {
        *counts.entry(r.status).or_default() += 1;
    }
    counts
}

#[tokio::test]
async fn a_key_gets_exactly_its_limit_per_second_then_429() {
    let env = Arc::new(TestEnv::new().await);
    let key = key_with_limit(&env, 3, &[Scope::CustomersRead]).await;
    let responses = burst(&env, || {
        (0..7)
            .map(|_| Req::get("/v1/customers").key(&key))
            .collect()
    })
    .await;
    assert_eq!(statuses(&responses), BTreeMap::from([(200, 3), (429, 4)]));
    for r in &responses {
        assert_eq!(
            r.header("ratelimit-limit"),
            Some("3"),
            "on every keyed answer"
        );
        assert_eq!(r.header("ratelimit-reset"), Some("1"));
        if r.status == 429 {
            assert_error(r, 429, "rate_limited");
            assert_eq!(r.header("retry-after"), Some("1"));
            assert_eq!(r.header("ratelimit-remaining"), Some("0"));
            assert_eq!(
                log_line(r)["key_id"],
                key.record.id.as_str(),
                "refusals are logged"
            );
        }
    }
    let mut remaining: Vec<&str> = responses
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.header("ratelimit-remaining").unwrap())
        .collect();
    remaining.sort();
    assert_eq!(remaining, ["0", "1", "2"]);

    // The next second, the key works again.
    start_of_a_second().await;
    assert_eq!(
        env.send(Req::get("/v1/customers").key(&key)).await.status,
        200
    );
}

#[tokio::test]
async fn the_limit_holds_across_every_instance_at_once() {
    let env = Arc::new(TestEnv::new().await);
    let key = key_with_limit(&env, 4, &[Scope::CustomersRead]).await;
    // Three "Lambda instances": each its own App over the same tables.
    let instances: Vec<Arc<App>> = (0..3)
        .map(|_| Arc::new(App::new(env.client.clone(), &env.tables)))
        .collect();
    for _ in 0..5 {
        start_of_a_second().await;
        let second = chrono::Utc::now().timestamp();
        let tasks: Vec<_> = (0..9)
            .map(|i| {
                let app = instances[i % 3].clone();
                let env = env.clone();
                let req = Req::get("/v1/customers").key(&key);
                tokio::spawn(async move { env.send_to(app, req).await })
            })
            .collect();
        let mut responses = Vec::new();
        for t in tasks {
            responses.push(t.await.unwrap());
        }
        if chrono::Utc::now().timestamp() == second {
            assert_eq!(statuses(&responses), BTreeMap::from([(200, 4), (429, 5)]));
            return;
        }
    }
    panic!("no burst fitted in one second in five tries");
}

#[tokio::test]
async fn authenticating_and_counting_are_one_dynamodb_call() {
    let env = TestEnv::new().await;
    let key = key_with_limit(&env, 50, &Scope::ALL).await;
    let created = env.create(&key, json!({"fullName": "Jane"})).await;
    let id = created["id"].as_str().unwrap();
    for _ in 0..3 {
        let response = env
            .send(Req::get(&format!("/v1/customers/{id}")).key(&key))
            .await;
        assert_eq!(response.status, 200);
        assert!(response.header("ratelimit-remaining").is_some());
        assert_eq!(
            env.calls.take(),
            ["UpdateItem", "GetItem"],
            "the key, then the customer"
        );
    }
    // A key's own description is the one call.
    let me = env.send(Req::get("/v1/me").key(&key)).await;
    assert_eq!(me.status, 200);
    assert_eq!(env.calls.take(), ["UpdateItem"]);
}

#[tokio::test]
async fn a_key_describes_itself_at_v1_me() {
    let env = TestEnv::new().await;
    let key = key_with_limit(&env, 12, &[Scope::CustomersWrite]).await;
    let response = env.send(Req::get("/v1/me").key(&key)).await;
    assert_eq!(response.status, 200);
    let me = response.json().unwrap();
    assert_eq!(
        me,
        json!({
            "object": "api_key",
            "id": key.record.id,
            "label": "limited",
            "prefix": key.record.prefix,
            "last4": key.record.last4,
            "scopes": ["customers:write"],
            "mode": "live",
            "org": {"id": "acme"},
            "expires_at": null,
            "rate_limit": {"requests_per_second": 12},
        })
    );
    assert_eq!(response.header("ratelimit-limit"), Some("12"));
    // Any valid key, no scope needed; bad keys and stray parameters are refused as anywhere.
    let bad = Req::get("/v1/me").header("authorization", "Bearer ic_live_nope");
    assert_error(&env.send(bad).await, 401, "unauthorized");
    let stray = env
        .send(Req::get("/v1/me").query("verbose=1").key(&key))
        .await;
    assert_eq!(
        assert_error(&stray, 400, "invalid_request")["error"]["param"],
        "verbose"
    );
    let posted = env.send(Req::new("POST", "/v1/me").key(&key)).await;
    assert_error(&posted, 405, "method_not_allowed");
}

#[tokio::test]
async fn last_use_records_the_time_and_the_address() {
    let env = TestEnv::new().await;
    let key = key_with_limit(&env, 50, &[Scope::CustomersRead]).await;
    let response = env
        .send(Req::get("/v1/customers").key(&key).source_ip("2001:db8::7"))
        .await;
    assert_eq!(response.status, 200);
    let stored = env
        .app
        .keys
        .find_by_hash(&key.token.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.last_used_ip.as_deref(), Some("2001:db8::7"));
    assert!(stored.last_used_at.is_some());
    let listed = stored.to_public_json(time::now());
    assert_eq!(listed["last_used_ip"], "2001:db8::7");
    assert_eq!(listed["rate_limit"]["requests_per_second"], 50);
    // Refused requests are not uses: a revoked key's last use stays where it was.
    let revoked = key_with_limit(&env, 50, &[Scope::CustomersRead]).await;
    env.app
        .keys
        .revoke(&revoked.record.org_id, &revoked.record.id, time::now())
        .await
        .unwrap();
    env.send(Req::get("/v1/customers").key(&revoked)).await;
    let stored = env
        .app
        .keys
        .find_by_hash(&revoked.token.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.last_used_at, None);
}

#[tokio::test]
async fn requests_refused_for_their_source_do_not_spend_the_owners_limit() {
    let env = Arc::new(TestEnv::new().await);
    let scopes: Vec<String> = vec!["customers:read".into()];
    let new = NewApiKey::parse(
        "acme",
        "fenced",
        &scopes,
        None,
        &["203.0.113.0/24".to_owned()],
        "tests",
        time::now(),
    )
    .and_then(|n| n.with_rate_limit(3))
    .unwrap();
    let key = env.app.keys.issue(new, time::now()).await.unwrap();
    // In one second: a leaked copy used from elsewhere (4 refusals, counted in that
    // source's own window, never in the owner's), a request from the owner's network for
    // a route the key may not call (from where the key may be used: counted), then the
    // owner: 2 more fit in its 3, the third is over.
    let mut tries = 0;
    let (refused, scope, owner) = loop {
        tries += 1;
        assert!(tries <= 5, "no run fitted in one second");
        start_of_a_second().await;
        let second = chrono::Utc::now().timestamp();
        let mut refused = Vec::new();
        for _ in 0..4 {
            refused.push(
                env.send(
                    Req::get("/v1/customers")
                        .key(&key)
                        .source_ip("198.51.100.66"),
                )
                .await,
            );
        }
        let scope = env
            .send(
                Req::json("POST", "/v1/customers", r#"{"fullName":"X"}"#)
                    .key(&key)
                    .source_ip("203.0.113.5"),
            )
            .await;
        let mut owner = Vec::new();
        for ip in ["203.0.113.5", "203.0.113.6", "203.0.113.7"] {
            owner.push(
                env.send(Req::get("/v1/customers").key(&key).source_ip(ip))
                    .await,
            );
        }
        if chrono::Utc::now().timestamp() == second {
            break (refused, scope, owner);
        }
    };
    // Refusals are limited on their own: the source's 3 a second, then 429.
    let refused_statuses: Vec<u16> = refused.iter().map(|r| r.status).collect();
    assert_eq!(refused_statuses, [403, 403, 403, 429]);
    // Each refusal carries the refused source's own standing: 2, 1, 0 left, then over.
    let remaining: Vec<&str> = refused
        .iter()
        .map(|r| r.header("ratelimit-remaining").unwrap())
        .collect();
    assert_eq!(remaining, ["2", "1", "0", "0"]);
    assert!(refused
        .iter()
        .all(|r| r.header("ratelimit-limit") == Some("3")));
    assert_error(&scope, 403, "forbidden_scope");
    assert_eq!(scope.header("ratelimit-remaining"), Some("2"));
    let owner_statuses: Vec<u16> = owner.iter().map(|r| r.status).collect();
    assert_eq!(owner_statuses, [200, 200, 429]);
    assert_eq!(owner[1].header("ratelimit-remaining"), Some("0"));
}

#[tokio::test]
async fn refusals_past_the_rate_are_429_and_only_the_first_each_second_is_kept() {
    let env = Arc::new(TestEnv::new().await);
    let new = NewApiKey::parse(
        "acme",
        "fenced",
        &["customers:read".to_owned()],
        None,
        &["203.0.113.5".to_owned()],
        "tests",
        time::now(),
    )
    .and_then(|n| n.with_rate_limit(2))
    .unwrap();
    let key = env.app.keys.issue(new, time::now()).await.unwrap();
    let responses = burst(&env, || {
        (0..5)
            .map(|_| {
                Req::get("/v1/customers")
                    .key(&key)
                    .source_ip("198.51.100.9")
            })
            .collect()
    })
    .await;
    assert_eq!(statuses(&responses), BTreeMap::from([(403, 2), (429, 3)]));
    for r in &responses {
        if r.status == 429 {
            assert!(r.header("retry-after").is_some());
            assert_eq!(r.header("ratelimit-remaining"), Some("0"));
        }
    }
    // Every answer is a line for operators; only the first refusal of the source in that
    // second goes to the key's request log.
    let lines: Vec<serde_json::Value> = responses.iter().map(log_line).collect();
    let kept: Vec<_> = lines
        .iter()
        .filter(|line| {
            shared::request_log::record::RequestRecord::from_log_line(&line.to_string(), None)
                .is_some()
        })
        .collect();
    assert_eq!(kept.len(), 1, "{lines:#?}");
    assert!(lines.iter().all(|l| l["key_id"] == key.record.id.as_str()));
    // The owner's budget is whole.
    let owner = env
        .send(Req::get("/v1/customers").key(&key).source_ip("203.0.113.5"))
        .await;
    assert_eq!(owner.status, 200);
}
