//! Webhook endpoints on the member plane (`/v1/org/webhook-endpoints`, `org.api-keys`):
//! both modes, the secret revealed again and rotated with an overlap in which both sign,
//! AML visibility from the creator's role, and the integration plane's endpoints in view.

use serde_json::{json, Value};
use shared::keys::scope::Scope;
use shared::members::role::Role;
use shared::org::OrgId;
use shared::time;

use localdb::Fault;
use shared::webhooks::signing::StoredSecret;

use crate::helpers::{assert_gateway_401, Plane};

const HOOK: &str = "http://127.0.0.1:9009/hooks";

fn create(plane: &Plane, token: &str, body: Value) -> Value {
    let reply = plane.post("/v1/org/webhook-endpoints", token, body);
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    reply.json()
}

#[test]
fn members_manage_endpoints_of_both_modes_and_roles_bound_them() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let developer = plane.member("acme", Role::Developer);
    let analyst = plane.member("acme", Role::Analyst);
    let stranger = plane.member("globex", Role::Administrator);

    let live = create(
        &plane,
        &admin.token,
        json!({"url": HOOK, "events": ["customer.verified"], "description": "Back office"}),
    );
    assert_eq!(live["mode"], "live");
    assert_eq!(live["includes_aml"], true, "an administrator has aml.read");
    assert_eq!(
        live["created_by"],
        json!({"type": "member", "id": admin.member.id, "email": admin.email})
    );
    assert!(live["secret"].as_str().unwrap().starts_with("whsec_"));
    let test = create(
        &plane,
        &developer.token,
        json!({"url": HOOK, "events": ["customer.created", "api_key.revoked"], "mode": "test"}),
    );
    assert_eq!(test["mode"], "test");
    assert_eq!(test["includes_aml"], false, "a developer lacks aml.read");

    // A key's own endpoint (a Zapier subscription) is in the org's view too.
    let (_, key) = plane.create_key(&admin, &[Scope::WebhooksWrite, Scope::CustomersRead]);
    let reply = crate::helpers::http::post(
        &plane.url("/v1/webhook_endpoints"),
        &key,
        None,
        &json!({"url": HOOK, "events": ["customer.updated"]}).to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let zap = reply.json();
    assert_eq!(zap["created_by"]["type"], "api_key");

    let list = plane.get("/v1/org/webhook-endpoints", &developer.token);
    assert_eq!(list.status, 200, "{}", list.body);
    let ids: Vec<Value> = list.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(
        ids,
        vec![live["id"].clone(), test["id"].clone(), zap["id"].clone()]
    );
    let only_test = plane
        .get("/v1/org/webhook-endpoints?mode=test", &admin.token)
        .json();
    assert_eq!(only_test["data"].as_array().unwrap().len(), 1);
    assert!(only_test["data"][0].get("secret").is_none());
    plane
        .get("/v1/org/webhook-endpoints?mode=both", &admin.token)
        .assert_error(400, "invalid_request");
    plane
        .get("/v1/org/webhook-endpoints?limit=2", &admin.token)
        .json()["has_more"]
        .as_bool()
        .filter(|more| *more)
        .expect("a second page");

    // The analyst's role lacks org.api-keys; another org sees nothing of acme's.
    let refused = plane
        .get("/v1/org/webhook-endpoints", &analyst.token)
        .assert_error(403, "forbidden_permission");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("org.api-keys"));
    plane
        .post(
            "/v1/org/webhook-endpoints",
            &analyst.token,
            json!({"url": HOOK, "events": ["api_key.revoked"]}),
        )
        .assert_error(403, "forbidden_permission");
    let id = live["id"].as_str().unwrap();
    for path in [
        format!("/v1/org/webhook-endpoints/{id}"),
        format!("/v1/org/webhook-endpoints/{id}/secret"),
    ] {
        plane
            .get(&path, &stranger.token)
            .assert_error(404, "not_found");
    }
    assert!(plane
        .get("/v1/org/webhook-endpoints", &stranger.token)
        .json()["data"]
        .as_array()
        .unwrap()
        .is_empty());

    // The member API takes no key, and the key API no member token.
    assert_gateway_401(&plane.get(&format!("/v1/org/webhook-endpoints/{id}/secret"), &key));
    crate::helpers::http::get(&plane.url("/v1/webhook_endpoints"), &admin.token)
        .assert_error(401, "unauthorized");

    // A developer edits and deletes, as their permission allows.
    let path = format!("/v1/org/webhook-endpoints/{id}");
    let changed = plane.patch(&path, &developer.token, json!({"enabled": false}));
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.json()["enabled"], false);
    let deleted = plane.call("DELETE", &path, &developer.token, None);
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    plane
        .call("DELETE", &path, &developer.token, None)
        .assert_error(404, "not_found");
}

#[test]
fn the_secret_is_revealed_again_and_rotated_with_an_overlap() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let made = create(
        &plane,
        &admin.token,
        json!({"url": HOOK, "events": ["api_key.revoked"]}),
    );
    let id = made["id"].as_str().unwrap();
    let first = made["secret"].as_str().unwrap().to_owned();

    let shown = plane.get(
        &format!("/v1/org/webhook-endpoints/{id}/secret"),
        &admin.token,
    );
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(shown.header("cache-control"), Some("no-store"));
    assert_eq!(
        shown.json(),
        json!({"object": "webhook_endpoint_secret", "endpoint_id": id, "secret": first, "previous_secret_expires_at": null})
    );

    let rotate = format!("/v1/org/webhook-endpoints/{id}/rotate-secret");
    for bad in [
        json!({"expire_previous_in_seconds": -1}),
        json!({"expire_previous_in_seconds": 604_801}),
        json!({"expire_previous_in_seconds": "1h"}),
        json!({"grace": 5}),
    ] {
        plane
            .post(&rotate, &admin.token, bad)
            .assert_error(400, "invalid_request");
    }
    let reply = plane.call_with(
        "POST",
        &rotate,
        &[
            ("authorization", &format!("Bearer {}", admin.token)),
            ("idempotency-key", "r1"),
        ],
        None,
    );
    let refused = reply.assert_error(400, "invalid_request");
    assert_eq!(refused["error"]["param"], "Idempotency-Key");
    // What a retry does instead is the rotation's, not the create's.
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("A retry rotates again") && !message.contains("another endpoint"),
        "{message}"
    );

    let before = time::now();
    let rotated = plane.post(
        &rotate,
        &admin.token,
        json!({"expire_previous_in_seconds": 3600}),
    );
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_eq!(rotated.header("cache-control"), Some("no-store"));
    let rotated = rotated.json();
    let second = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let until = time::parse(rotated["previous_secret_expires_at"].as_str().unwrap()).unwrap();
    assert!(
        until >= before + chrono::Duration::seconds(3600)
            && until <= time::now() + chrono::Duration::seconds(3600)
    );
    assert_eq!(
        plane
            .get(
                &format!("/v1/org/webhook-endpoints/{id}/secret"),
                &admin.token
            )
            .json()["secret"],
        second.as_str()
    );

    // During the overlap both secrets sign, the new one first; without one, only the new.
    let stored = plane.runtime.block_on(async {
        plane
            .app
            .webhook_endpoints
            .get(&OrgId::parse("acme").unwrap(), id)
            .await
            .unwrap()
            .unwrap()
    });
    // Stored sealed (the plaintext is in no table), opened only for this endpoint.
    let acme = OrgId::parse("acme").unwrap();
    let signing: Vec<String> = plane.runtime.block_on(async {
        let mut opened = Vec::new();
        for sealed in stored.signing_secrets(time::now()) {
            assert!(matches!(sealed, StoredSecret::Sealed(_)), "{sealed:?}");
            let secret = sealed
                .open(plane.app.vault.as_ref(), &acme, id)
                .await
                .unwrap();
            opened.push(secret.expose().to_owned());
        }
        opened
    });
    assert_eq!(signing, [second.clone(), first.clone()]);
    for secret in [&first, &second] {
        plane.assert_stored_nowhere(secret, "a webhook signing secret");
    }
    assert_eq!(stored.signing_secrets(until).len(), 1);
    let third = plane
        .post(
            &rotate,
            &admin.token,
            json!({"expire_previous_in_seconds": 0}),
        )
        .json();
    assert_eq!(third["previous_secret_expires_at"], Value::Null);
    let stored = plane.runtime.block_on(async {
        plane
            .app
            .webhook_endpoints
            .get(&OrgId::parse("acme").unwrap(), id)
            .await
            .unwrap()
            .unwrap()
    });
    assert_eq!(stored.signing_secrets(time::now()).len(), 1);

    // No secret is ever written to the log.
    let text = crate::helpers::logs().text();
    for secret in [&first, &second] {
        assert!(!text.contains(&secret[6..]));
    }
}

/// A sealed secret opens only for the endpoint it was sealed for: copied onto another
/// endpoint's row (of its org or another's), KMS refuses it, the reveal is a 500 and
/// nothing is signed with it.
#[test]
fn a_sealed_secret_moved_to_another_endpoint_opens_nowhere() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let stranger = plane.member("globex", Role::Administrator);
    let body = json!({"url": HOOK, "events": ["api_key.revoked"]});
    let a = create(&plane, &admin.token, body.clone());
    let b = create(&plane, &admin.token, body.clone());
    let c = create(&plane, &stranger.token, body);
    let (a_id, b_id, c_id) = (
        a["id"].as_str().unwrap(),
        b["id"].as_str().unwrap(),
        c["id"].as_str().unwrap(),
    );
    let (acme, globex) = (
        OrgId::parse("acme").unwrap(),
        OrgId::parse("globex").unwrap(),
    );
    plane.runtime.block_on(async {
        let endpoints = &plane.app.webhook_endpoints;
        let source = endpoints.get(&acme, a_id).await.unwrap().unwrap();
        for (org, id) in [(&acme, b_id), (&globex, c_id)] {
            let mut target = endpoints.get(org, id).await.unwrap().unwrap();
            let read = target.clone();
            target.secret = source.secret.clone();
            let change =
                shared::audit::Audited::audit_change(&read, "webhook_endpoint.updated", &target);
            let by = shared::audit::Author::operator("tests");
            assert!(endpoints
                .replace(&plane.app.audit, &by, &mut target, change)
                .await
                .unwrap());
            let refused = target.secret.open(plane.app.vault.as_ref(), org, id).await;
            assert!(
                matches!(
                    refused,
                    Err(shared::providers::vault::VaultError::Refused(_))
                ),
                "{refused:?}"
            );
        }
    });
    plane
        .get(
            &format!("/v1/org/webhook-endpoints/{b_id}/secret"),
            &admin.token,
        )
        .assert_error(500, "internal_error");
    plane
        .get(
            &format!("/v1/org/webhook-endpoints/{c_id}/secret"),
            &stranger.token,
        )
        .assert_error(500, "internal_error");
    // Its own endpoint still opens it.
    let shown = plane.get(
        &format!("/v1/org/webhook-endpoints/{a_id}/secret"),
        &admin.token,
    );
    assert_eq!(shown.json()["secret"], a["secret"]);
}

/// KMS out of reach: an endpoint is not made (503, nothing stored), a rotation leaves the
/// secret as it was, and a reveal is a 503.
#[test]
fn kms_out_of_reach_is_a_503_and_nothing_is_half_done() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let body = json!({"url": HOOK, "events": ["api_key.revoked"]});
    plane.kms_faults.inject("GenerateDataKey", Fault::Throttle);
    let reply = plane.post("/v1/org/webhook-endpoints", &admin.token, body.clone());
    reply.assert_error(503, "service_unavailable");
    assert!(reply.header("retry-after").is_some());
    assert!(
        plane.get("/v1/org/webhook-endpoints", &admin.token).json()["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    plane.kms_faults.heal();
    let made = create(&plane, &admin.token, body);
    let id = made["id"].as_str().unwrap();
    plane.kms_faults.inject("GenerateDataKey", Fault::Throttle);
    plane
        .post(
            &format!("/v1/org/webhook-endpoints/{id}/rotate-secret"),
            &admin.token,
            json!({}),
        )
        .assert_error(503, "service_unavailable");
    plane.kms_faults.inject("Decrypt", Fault::Throttle);
    plane
        .get(
            &format!("/v1/org/webhook-endpoints/{id}/secret"),
            &admin.token,
        )
        .assert_error(503, "service_unavailable");
    plane.kms_faults.heal();
    let shown = plane.get(
        &format!("/v1/org/webhook-endpoints/{id}/secret"),
        &admin.token,
    );
    assert_eq!(
        shown.json()["secret"],
        made["secret"],
        "the secret as it was"
    );
    assert_eq!(shown.json()["previous_secret_expires_at"], Value::Null);
}
