//! The verification order, step by step, through API Gateway v2 events.

use chrono::Duration;
use serde_json::json;
use shared::keys::scope::Scope;
use shared::keys::token::ApiKeyToken;
use shared::time;

use crate::helpers::{assert_error, Req, TestEnv};

const LIST: &str = "/v1/customers";

#[tokio::test]
async fn a_valid_key_lists_an_empty_org() {
    let env = TestEnv::new().await;
    let key = env.full_key("demo").await;
    let response = env.send(Req::get(LIST).key(&key)).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json().unwrap(),
        json!({"object": "list", "data": [], "has_more": false, "next_cursor": null, "limit": 50})
    );
    assert!(response
        .header("request-id")
        .is_some_and(|id| !id.is_empty()));
    assert_eq!(response.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn missing_or_malformed_headers_are_401_without_a_database_call() {
    let env = TestEnv::new().await;
    let key = env.full_key("demo").await;
    let secret = key.token.expose_secret().to_owned();
    let mut typo = secret.clone().into_bytes();
    typo[20] = if typo[20] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo).unwrap();
    let cases = [
        None,
        Some(secret.clone()),                  // no scheme
        Some(format!("Basic {secret}")),       // wrong scheme
        Some(format!("Api-Key {secret}")),     // the peer product's scheme
        Some("Bearer ic_live_123".to_owned()), // wrong length
        Some(format!("Bearer {typo}")),        // bad checksum
        Some(format!(
            "Bearer {}",
            secret.replacen("ic_live_", "ic_test_", 1)
        )),
    ];
    let mut messages = Vec::new();
    for header in cases {
        let mut req = Req::get(LIST);
        if let Some(value) = &header {
            req = req.header("authorization", value);
        }
        let response = env.send(req).await;
        let body = assert_error(&response, 401, "unauthorized");
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
        assert_eq!(
            env.calls.take(),
            Vec::<String>::new(),
            "no DynamoDB call for {header:?}"
        );
        messages.push(body["error"]["message"].clone());
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "one message for every 401");
}

#[tokio::test]
async fn unknown_revoked_and_expired_keys_get_the_same_401() {
    let env = TestEnv::new().await;
    let unknown = ApiKeyToken::generate(shared::org::Mode::Live).unwrap();
    let revoked = env.full_key("demo").await;
    env.app
        .keys
        .revoke(&revoked.record.org_id, &revoked.record.id, time::now())
        .await
        .unwrap();
    let expired = env.full_key("demo").await;
    let mut record = expired.record.clone();
    // Plant an expired copy under a fresh hash: icadmin refuses past expiries.
    let planted = ApiKeyToken::generate(shared::org::Mode::Live).unwrap();
    record.key_hash = planted.hash();
    record.id = "key_expired".into();
    record.expires_at = Some(time::now() - Duration::seconds(1));
    env.app.keys.put_new(&record).await.unwrap();
    env.calls.take();

    let mut bodies = Vec::new();
    for token in [
        unknown.expose_secret(),
        revoked.token.expose_secret(),
        planted.expose_secret(),
    ] {
        let response = env
            .send(Req::get(LIST).header("authorization", &format!("Bearer {token}")))
            .await;
        let mut body = assert_error(&response, 401, "unauthorized");
        assert_eq!(
            env.calls.take(),
            ["UpdateItem"],
            "one call (find and count), nothing else"
        );
        body["error"]["request_id"] = json!(null);
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[1], bodies[2]);
}

#[tokio::test]
async fn revocation_takes_effect_on_the_next_request() {
    let env = TestEnv::new().await;
    let key = env.full_key("demo").await;
    assert_eq!(env.send(Req::get(LIST).key(&key)).await.status, 200);
    env.app
        .keys
        .revoke(&key.record.org_id, &key.record.id, time::now())
        .await
        .unwrap();
    assert_error(
        &env.send(Req::get(LIST).key(&key)).await,
        401,
        "unauthorized",
    );
}

#[tokio::test]
async fn ip_allowlist_is_checked_before_scopes() {
    let env = TestEnv::new().await;
    // No customers:read, and locked to one network: the IP answer must come first.
    let key = env
        .issue_key(
            "demo",
            &[Scope::AmlRead],
            &["203.0.113.0/24", "2001:db8::/32"],
        )
        .await;
    let response = env
        .send(Req::get(LIST).key(&key).source_ip("198.51.100.1"))
        .await;
    let body = assert_error(&response, 403, "ip_not_allowed");
    assert!(
        !body.to_string().contains("customers:read"),
        "an off-allowlist caller learns nothing of scopes"
    );
    let response = env
        .send(Req::get(LIST).key(&key).source_ip("203.0.113.77"))
        .await;
    assert_error(&response, 403, "forbidden_scope");
    let response = env
        .send(Req::get(LIST).key(&key).source_ip("2001:db8:1::1"))
        .await;
    assert_error(&response, 403, "forbidden_scope");
}

#[tokio::test]
async fn allowlisted_sources_pass_ipv4_and_ipv6() {
    let env = TestEnv::new().await;
    let key = env
        .issue_key(
            "demo",
            &[Scope::CustomersRead],
            &["203.0.113.0/24", "2001:db8::/32"],
        )
        .await;
    for ip in ["203.0.113.5", "2001:db8::5", "::ffff:203.0.113.6"] {
        assert_eq!(
            env.send(Req::get(LIST).key(&key).source_ip(ip))
                .await
                .status,
            200,
            "{ip}"
        );
    }
    for ip in ["203.0.114.5", "2001:db9::5", "127.0.0.1"] {
        assert_error(
            &env.send(Req::get(LIST).key(&key).source_ip(ip)).await,
            403,
            "ip_not_allowed",
        );
    }
}

#[tokio::test]
async fn the_source_ip_comes_from_the_request_context_not_headers() {
    let env = TestEnv::new().await;
    let key = env
        .issue_key("demo", &[Scope::CustomersRead], &["203.0.113.0/24"])
        .await;
    let spoofed = Req::get(LIST)
        .key(&key)
        .source_ip("198.51.100.1")
        .header("x-forwarded-for", "203.0.113.5");
    assert_error(&env.send(spoofed).await, 403, "ip_not_allowed");
}

#[tokio::test]
async fn a_missing_scope_is_403_naming_the_scope() {
    let env = TestEnv::new().await;
    let key = env
        .issue_key("demo", &[Scope::CustomersWrite, Scope::AmlRead], &[])
        .await;
    let body = assert_error(
        &env.send(Req::get(LIST).key(&key)).await,
        403,
        "forbidden_scope",
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("customers:read"),
        "{body}"
    );
}

#[tokio::test]
async fn an_authenticated_request_costs_one_call_for_the_key() {
    let env = TestEnv::new().await;
    let key = env.full_key("demo").await;
    assert_eq!(env.send(Req::get(LIST).key(&key)).await.status, 200);
    assert_eq!(
        env.calls.take(),
        ["UpdateItem", "UpdateItem", "Query"],
        "first use records last_used_at"
    );
    for _ in 0..3 {
        assert_eq!(env.send(Req::get(LIST).key(&key)).await.status, 200);
        assert_eq!(
            env.calls.take(),
            ["UpdateItem", "Query"],
            "within the minute: one call for the key"
        );
    }
    let stored = env
        .app
        .keys
        .find_by_hash(&key.token.hash())
        .await
        .unwrap()
        .unwrap();
    assert!(stored.last_used_at.is_some());
}

#[tokio::test]
async fn keys_only_see_their_own_org() {
    let env = TestEnv::new().await;
    let acme = env.full_key("acme").await;
    let globex = env.full_key("globex").await;
    // The same external id in both orgs: two customers, one each.
    let create = |key| {
        Req::json(
            "POST",
            LIST,
            &json!({"fullName": "Jane Doe", "externalId": "crm-1"}).to_string(),
        )
        .key(key)
    };
    let ours = env.send(create(&acme)).await;
    let theirs = env.send(create(&globex)).await;
    assert_eq!((ours.status, theirs.status), (201, 201));
    let ours = ours.json().unwrap()["id"].as_str().unwrap().to_owned();
    let theirs = theirs.json().unwrap()["id"].as_str().unwrap().to_owned();
    assert_ne!(ours, theirs);

    for (key, own, other) in [(&acme, &ours, &theirs), (&globex, &theirs, &ours)] {
        for query in [
            "limit=5",
            "external_id=crm-1",
            "updated_since=2000-01-01T00:00:00Z",
        ] {
            let page = env.send(Req::get(LIST).key(key).query(query)).await;
            assert_eq!(page.status, 200, "{query}");
            let ids: Vec<_> = page.json().unwrap()["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(
                ids,
                std::slice::from_ref(own),
                "{query}: only the key's own org"
            );
        }
        // The other org's customer does not exist for this key, on every route.
        for req in [
            Req::get(&format!("{LIST}/{other}")),
            Req::get(&format!("{LIST}/{other}/aml")),
            Req::json(
                "PATCH",
                &format!("{LIST}/{other}"),
                r#"{"fullName": "Taken"}"#,
            ),
        ] {
            assert_error(&env.send(req.key(key)).await, 404, "not_found");
        }
    }
    // The refused PATCH changed nothing.
    let theirs_now = env
        .send(Req::get(&format!("{LIST}/{theirs}")).key(&globex))
        .await;
    assert_eq!(theirs_now.json().unwrap()["full_name"], "Jane Doe");
}
