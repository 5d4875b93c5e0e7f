//! Webhook endpoints on the integration plane (`/v1/webhook_endpoints`, scope
//! `webhooks:write`): the secret answered once, targets checked (https, resolvable, public),
//! event types, the 20-per-org limit under concurrent creates, modes, and what a key that
//! made an endpoint lets it see.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{json, Value};
use shared::keys::scope::Scope;
use shared::keys::table::{IssuedKey, NewApiKey, MAX_RATE_LIMIT_RPS};
use shared::org::Mode;
use shared::time;
use shared::webhooks::target::{FixedResolver, TargetGuard};

use crate::helpers::{assert_error, concurrently, log_line, logs, Req, TestEnv};

const PUBLIC: &str = "https://hooks.example.com/instant";

/// A test env whose resolver knows a few names: one public, some that point inward.
async fn env() -> TestEnv {
    let mut env = TestEnv::new().await;
    let ip = |text: &str| text.parse::<IpAddr>().unwrap();
    let resolver = FixedResolver(HashMap::from([
        ("hooks.example.com".to_owned(), vec![ip("93.184.215.14")]),
        (
            "other.example.com".to_owned(),
            vec![ip("2606:4700::6810:84e5")],
        ),
        (
            "metadata.example.com".to_owned(),
            vec![ip("169.254.169.254")],
        ),
        ("intranet.example.com".to_owned(), vec![ip("10.20.30.40")]),
        (
            "split.example.com".to_owned(),
            vec![ip("93.184.215.14"), ip("fd00::1")],
        ),
    ]));
    let mut app = (*env.app).clone();
    app.webhook_targets = TargetGuard {
        allow_private: false,
        resolver: Arc::new(resolver),
    };
    env.app = Arc::new(app);
    env
}

async fn key(env: &TestEnv, org: &str, scopes: &[Scope], mode: Mode) -> IssuedKey {
    let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
    let new = NewApiKey::parse(org, "hooks", &scopes, None, &[], "tests", time::now())
        .and_then(|new| new.with_rate_limit(MAX_RATE_LIMIT_RPS))
        .expect("valid key")
        .with_mode(mode);
    env.app.keys.issue(new, time::now()).await.expect("issue")
}

fn create(key: &IssuedKey, body: Value) -> Req {
    Req::json("POST", "/v1/webhook_endpoints", &body.to_string()).key(key)
}

async fn listed(env: &TestEnv, key: &IssuedKey) -> Vec<Value> {
    let response = env.send(Req::get("/v1/webhook_endpoints").key(key)).await;
    assert_eq!(response.status, 200);
    response.json().unwrap()["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_endpoint_is_made_once_with_its_secret_and_never_shows_it_again() {
    let env = env().await;
    let zapier = key(
        &env,
        "acme",
        &[Scope::WebhooksWrite, Scope::CustomersRead],
        Mode::Live,
    )
    .await;
    let response = env
        .send(create(
            &zapier,
            json!({"url": PUBLIC, "events": ["customer.created", "customer.updated"], "description": "Zapier"}),
        ))
        .await;
    assert_eq!(response.status, 201, "{:?}", response.json());
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let made = response.json().unwrap();
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("we_"));
    assert_eq!(
        response.header("location"),
        Some(format!("/v1/webhook_endpoints/{id}").as_str())
    );
    let secret = made["secret"].as_str().unwrap().to_owned();
    assert!(shared::webhooks::signing::WebhookSecret::parse(&secret).is_some());
    assert_eq!(made["mode"], "live");
    assert_eq!(made["enabled"], true);
    assert_eq!(made["includes_aml"], false, "the key has no aml:read");
    assert_eq!(
        made["events"],
        json!(["customer.created", "customer.updated"])
    );
    assert_eq!(
        made["created_by"],
        json!({"type": "api_key", "id": zapier.record.id})
    );

    let got = env
        .send(Req::get(&format!("/v1/webhook_endpoints/{id}")).key(&zapier))
        .await;
    assert_eq!(got.status, 200);
    let got = got.json().unwrap();
    assert!(got.get("secret").is_none());
    let mut without_secret = made.clone();
    without_secret
        .as_object_mut()
        .unwrap()
        .shift_remove("secret");
    assert_eq!(got, without_secret);
    assert_eq!(listed(&env, &zapier).await, vec![without_secret]);

    // The log line names the endpoint's id and never the secret.
    assert_eq!(log_line(&response)["path"], "/v1/webhook_endpoints");
    let line = log_line(
        &env.send(Req::get(&format!("/v1/webhook_endpoints/{id}")).key(&zapier))
            .await,
    );
    assert_eq!(line["path"], format!("/v1/webhook_endpoints/{id}"));
    assert!(!logs().text().contains(&secret[6..]));
}

#[tokio::test]
async fn scopes_bound_the_routes_and_what_an_endpoint_may_carry() {
    let env = env().await;
    let reader = key(
        &env,
        "acme",
        &[Scope::CustomersRead, Scope::AmlRead],
        Mode::Live,
    )
    .await;
    let response = env
        .send(create(
            &reader,
            json!({"url": PUBLIC, "events": ["customer.created"]}),
        ))
        .await;
    let body = assert_error(&response, 403, "forbidden_scope");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("webhooks:write"));
    assert_error(
        &env.send(Req::get("/v1/webhook_endpoints").key(&reader))
            .await,
        403,
        "forbidden_scope",
    );

    // A key that can't read customers may hear about keys, not customers.
    let hooks_only = key(&env, "acme", &[Scope::WebhooksWrite], Mode::Live).await;
    let response = env
        .send(create(
            &hooks_only,
            json!({"url": PUBLIC, "events": ["customer.updated"]}),
        ))
        .await;
    let body = assert_error(&response, 403, "forbidden_scope");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("customers:read"));
    let response = env
        .send(create(
            &hooks_only,
            json!({"url": PUBLIC, "events": ["api_key.revoked", "api_key.expiring"]}),
        ))
        .await;
    assert_eq!(response.status, 201);

    // With aml:read, the endpoint carries AML data.
    let full = key(&env, "acme", &Scope::ALL, Mode::Live).await;
    let response = env
        .send(create(
            &full,
            json!({"url": PUBLIC, "events": ["customer.verified"]}),
        ))
        .await;
    assert_eq!(response.json().unwrap()["includes_aml"], true);
}

#[tokio::test]
async fn bad_targets_and_bodies_get_a_clear_400_and_store_nothing() {
    let env = env().await;
    let k = key(&env, "acme", &Scope::ALL, Mode::Live).await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"url": "http://hooks.example.com/in", "events": ["customer.created"]}),
            "url",
            "https",
        ),
        (
            json!({"url": "https://u:p@hooks.example.com/in", "events": ["customer.created"]}),
            "url",
            "credentials",
        ),
        (
            json!({"url": "hooks.example.com", "events": ["customer.created"]}),
            "url",
            "absolute",
        ),
        (
            json!({"url": "https://nowhere.invalid/in", "events": ["customer.created"]}),
            "url",
            "could not be resolved",
        ),
        (
            json!({"url": "https://metadata.example.com/latest", "events": ["customer.created"]}),
            "url",
            "169.254.169.254",
        ),
        (
            json!({"url": "https://intranet.example.com/in", "events": ["customer.created"]}),
            "url",
            "private",
        ),
        (
            json!({"url": "https://split.example.com/in", "events": ["customer.created"]}),
            "url",
            "fd00::1",
        ),
        (
            json!({"url": "https://127.0.0.1/in", "events": ["customer.created"]}),
            "url",
            "loopback",
        ),
        (
            json!({"url": "https://[::ffff:169.254.169.254]/in", "events": ["customer.created"]}),
            "url",
            "169.254.169.254",
        ),
        (
            json!({"url": 7, "events": ["customer.created"]}),
            "url",
            "required",
        ),
        (json!({"events": ["customer.created"]}), "url", "required"),
        (
            json!({"url": PUBLIC, "events": ["customer.deleted"]}),
            "events",
            "customer.deleted",
        ),
        (
            json!({"url": PUBLIC, "events": []}),
            "events",
            "at least one",
        ),
        (
            json!({"url": PUBLIC, "events": "customer.created"}),
            "events",
            "list",
        ),
        (json!({"url": PUBLIC}), "events", "required"),
        (
            json!({"url": PUBLIC, "events": ["customer.created"], "description": "x".repeat(201)}),
            "description",
            "200",
        ),
        (
            json!({"url": PUBLIC, "events": ["customer.created"], "enabled": "yes"}),
            "enabled",
            "true or false",
        ),
        (
            json!({"url": PUBLIC, "events": ["customer.created"], "mode": "test"}),
            "mode",
            "live",
        ),
        (
            json!({"url": PUBLIC, "events": ["customer.created"], "secret": "whsec_x"}),
            "secret",
            "Unknown field",
        ),
    ];
    for (body, param, says) in cases {
        let response = env.send(create(&k, body.clone())).await;
        let error = assert_error(&response, 400, "invalid_request");
        assert_eq!(error["error"]["param"], param, "{body}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    let response = env
        .send(
            create(&k, json!({"url": PUBLIC, "events": ["customer.created"]}))
                .header("idempotency-key", "retry-1"),
        )
        .await;
    assert_eq!(
        assert_error(&response, 400, "invalid_request")["error"]["param"],
        "Idempotency-Key"
    );
    assert!(listed(&env, &k).await.is_empty());
    assert_eq!(env.item_count(&env.tables.webhook_endpoints).await, 0);
}

#[tokio::test]
async fn an_org_has_at_most_twenty_endpoints_per_mode_even_when_created_all_at_once() {
    let env = Arc::new(env().await);
    let live = key(&env, "acme", &Scope::ALL, Mode::Live).await;
    let test = key(&env, "acme", &Scope::ALL, Mode::Test).await;
    let other_org = key(&env, "globex", &Scope::ALL, Mode::Live).await;
    let body = json!({"url": PUBLIC, "events": ["customer.created"]});
    // A test key fills test mode, racing with itself: 20 of 26 made.
    let requests = (0..26).map(|_| create(&test, body.clone())).collect();
    let answers = concurrently(&env, requests).await;
    let made = answers.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        made,
        20,
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for refused in answers.iter().filter(|r| r.status != 201) {
        let error = assert_error(refused, 409, "conflict");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("20 test webhook endpoints"), "{message}");
    }
    assert_eq!(listed(&env, &test).await.len(), 20);
    // Live mode is untouched: its own 20, made at once too, then full.
    let requests = (0..22).map(|_| create(&live, body.clone())).collect();
    let answers = concurrently(&env, requests).await;
    assert_eq!(answers.iter().filter(|r| r.status == 201).count(), 20);
    assert_eq!(listed(&env, &live).await.len(), 20);
    assert_error(
        &env.send(create(&live, body.clone())).await,
        409,
        "conflict",
    );
    // Another org is not affected; deleting one gives a place back in its own mode only.
    assert_eq!(env.send(create(&other_org, body.clone())).await.status, 201);
    let first = listed(&env, &live).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = env
        .send(Req::new("DELETE", &format!("/v1/webhook_endpoints/{first}")).key(&live))
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        deleted.json().unwrap(),
        json!({"object": "webhook_endpoint", "id": first, "deleted": true})
    );
    assert_error(
        &env.send(create(&test, body.clone())).await,
        409,
        "conflict",
    );
    assert_eq!(env.send(create(&live, body.clone())).await.status, 201);
    assert_error(&env.send(create(&live, body)).await, 409, "conflict");
}

#[tokio::test]
async fn modes_and_orgs_never_see_each_others_endpoints() {
    let env = env().await;
    let live = key(&env, "acme", &Scope::ALL, Mode::Live).await;
    let test = key(&env, "acme", &Scope::ALL, Mode::Test).await;
    let globex = key(&env, "globex", &Scope::ALL, Mode::Live).await;
    let made = env
        .send(create(
            &test,
            json!({"url": PUBLIC, "events": ["customer.created"]}),
        ))
        .await
        .json()
        .unwrap();
    assert_eq!(made["mode"], "test");
    let id = made["id"].as_str().unwrap();
    for stranger in [&live, &globex] {
        for req in [
            Req::get(&format!("/v1/webhook_endpoints/{id}")),
            Req::json(
                "PATCH",
                &format!("/v1/webhook_endpoints/{id}"),
                r#"{"enabled":false}"#,
            ),
            Req::new("DELETE", &format!("/v1/webhook_endpoints/{id}")),
        ] {
            assert_error(&env.send(req.key(stranger)).await, 404, "not_found");
        }
        assert!(listed(&env, stranger).await.is_empty());
    }
    assert_eq!(listed(&env, &test).await.len(), 1);
    for bad in ["we_", "we_../x", "key_abc", "we_abc%2Fdef"] {
        assert_error(
            &env.send(Req::get(&format!("/v1/webhook_endpoints/{bad}")).key(&test))
                .await,
            404,
            "not_found",
        );
    }
}

#[tokio::test]
async fn patch_changes_what_it_names_checks_it_as_create_does_and_replays() {
    let env = env().await;
    let k = key(&env, "acme", &Scope::ALL, Mode::Live).await;
    let made = env
        .send(create(
            &k,
            json!({"url": PUBLIC, "events": ["customer.created"], "description": "CRM"}),
        ))
        .await
        .json()
        .unwrap();
    let path = format!("/v1/webhook_endpoints/{}", made["id"].as_str().unwrap());
    let patch = |body: Value| Req::json("PATCH", &path, &body.to_string()).key(&k);

    let response = env
        .send(patch(json!({"url": "https://metadata.example.com/x"})))
        .await;
    assert_eq!(
        assert_error(&response, 400, "invalid_request")["error"]["param"],
        "url"
    );
    assert_error(
        &env.send(patch(json!({"events": ["nope"]}))).await,
        400,
        "invalid_request",
    );
    assert_error(
        &env.send(patch(json!({"secret": "x"}))).await,
        400,
        "invalid_request",
    );
    let unchanged = env.send(Req::get(&path).key(&k)).await.json().unwrap();
    assert_eq!(unchanged["url"], PUBLIC);

    let response = env
        .send(
            patch(json!({"url": "https://other.example.com/v2", "events": ["customer.updated", "customer.verified"], "enabled": false, "description": null}))
                .header("idempotency-key", "p-1"),
        )
        .await;
    assert_eq!(response.status, 200, "{:?}", response.json());
    let changed = response.json().unwrap();
    assert_eq!(changed["url"], "https://other.example.com/v2");
    assert_eq!(
        changed["events"],
        json!(["customer.updated", "customer.verified"])
    );
    assert_eq!(changed["enabled"], false);
    assert_eq!(changed["description"], Value::Null);
    assert!(changed["disabled_at"].is_string());
    assert!(changed.get("secret").is_none());
    let again = env
        .send(
            patch(json!({"url": "https://other.example.com/v2", "events": ["customer.updated", "customer.verified"], "enabled": false, "description": null}))
                .header("idempotency-key", "p-1"),
        )
        .await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json().unwrap(), changed);
    assert_error(
        &env.send(patch(json!({"enabled": true})).header("idempotency-key", "p-1"))
            .await,
        422,
        "idempotency_key_reused",
    );
    let enabled = env
        .send(patch(json!({"enabled": true})))
        .await
        .json()
        .unwrap();
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["disabled_at"], Value::Null);
    assert_eq!(enabled["created_at"], made["created_at"]);
}

/// Streams feed the dispatcher: exactly the customers and keys tables have one, with both
/// images (`customer.updated` needs the old one), as template.yaml declares them.
#[tokio::test]
async fn the_customers_and_keys_tables_stream_both_images_the_audit_trail_new_ones_and_no_other_does(
) {
    let env = TestEnv::new().await;
    let t = &env.tables;
    // The audit trail's events are only ever put: the new image is the whole event.
    for (table, view) in [
        (&t.customers, Some("NEW_AND_OLD_IMAGES")),
        (&t.api_keys, Some("NEW_AND_OLD_IMAGES")),
        (&t.audit_events, Some("NEW_IMAGE")),
        (&t.audit_heads, None),
        (&t.idempotency, None),
        (&t.members, None),
        (&t.request_log, None),
        (&t.webhook_endpoints, None),
        (&t.webhook_deliveries, None),
        (&t.provider_keys, None),
    ] {
        let streamed = view.is_some();
        let described = env
            .client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap();
        let spec = described.table().unwrap().stream_specification();
        if streamed {
            let spec = spec.unwrap_or_else(|| panic!("{table} has no stream"));
            assert!(spec.stream_enabled(), "{table}");
            assert_eq!(spec.stream_view_type().map(|v| v.as_str()), view, "{table}");
        } else {
            assert!(
                spec.is_none_or(|s| !s.stream_enabled()),
                "{table} streams for no reason"
            );
        }
    }
}
