//! Provider keys through the member API: members signed in through the Cognito emulator,
//! secrets sealed under the template's KMS key in the KMS emulator, calls made to the local
//! fakes of the providers' APIs.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use localdb::Fault;
use serde_json::{json, Value};
use shared::members::role::Role;
use shared::org::OrgId;
use shared::providers::kind::KeyType;

use crate::helpers::{assert_gateway_401, logs, Plane, Reply, Signed};

const BASE: &str = "/v1/org/provider-keys";

/// A secret no test hard-codes: the provider's prefix and 32 random characters.
fn secret(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn create(plane: &Plane, who: &Signed, key_type: &str, label: &str, secret: &str) -> Reply {
    plane.post(
        BASE,
        &who.token,
        json!({"key_type": key_type, "label": label, "secret": secret}),
    )
}

fn created(plane: &Plane, who: &Signed, key_type: &str, secret: &str) -> Value {
    let reply = create(plane, who, key_type, "prod", secret);
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()
}

fn verify(plane: &Plane, who: &Signed, id: &str) -> Reply {
    plane.call("POST", &format!("{BASE}/{id}/verify"), &who.token, None)
}

fn today() -> String {
    chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

/// The day's row of a key's call summary (the default window ends today).
fn today_summary(plane: &Plane, who: &Signed, id: &str) -> Value {
    let reply = plane.get(&format!("{BASE}/{id}/call-summaries"), &who.token);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    let rows = body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 30, "the last 30 days, a row each");
    let last = rows.last().unwrap().clone();
    assert_eq!(last["date"], today());
    last
}

fn assert_error(reply: &Reply, status: u16, code: &str, param: Option<&str>) {
    assert_eq!(reply.status, status, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    if let Some(param) = param {
        assert_eq!(body["error"]["param"], param, "{body}");
    }
}

/// Every string and byte string of every item of `table`.
/// `secret` is in no table of the plane, in clear or base64.
fn assert_stored_nowhere(plane: &Plane, secret: &str) {
    plane.assert_stored_nowhere(secret, "a provider secret");
}

#[test]
fn a_member_adds_verifies_retires_and_rotates_provider_keys() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let sanctions = secret("os");
    let chain = secret("ch");
    plane.fakes.accept(KeyType::OpenSanctions, &sanctions);
    plane.fakes.accept(KeyType::Chainalysis, &chain);

    let os = created(&plane, &admin, "O", &sanctions);
    let ch = created(&plane, &admin, "H", &chain);
    let os_id = os["id"].as_str().unwrap().to_owned();
    let ch_id = ch["id"].as_str().unwrap().to_owned();
    assert!(os_id.starts_with("pk_"));
    assert_eq!(os["object"], "provider_key");
    assert_eq!(os["provider"], "Open Sanctions");
    assert_eq!(ch["provider"], "Chainalysis");
    assert_eq!(os["enabled"], true);
    assert_eq!(os["usage_count"], 0);
    assert_eq!(os["last_used_at"], Value::Null);
    assert_eq!(os["rotated_at"], Value::Null);
    assert_eq!(os["created_by"]["id"], admin.member.id.as_str());
    let tail: String = sanctions.chars().skip(sanctions.len() - 4).collect();
    assert_eq!(
        os["masked_key"],
        format!("{}{tail}", "•".repeat(sanctions.len() - 4))
    );

    // Listed masked, newest first.
    let list = plane.get(BASE, &admin.token).json();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [ch_id.as_str(), os_id.as_str()]);
    for key in list["data"].as_array().unwrap() {
        assert!(key["masked_key"].as_str().unwrap().starts_with("••••"));
    }

    // Verify the Open Sanctions key against its fake: ok, counted once, today.
    let reply = verify(&plane, &admin, &os_id);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["object"], "provider_key_verification");
    assert_eq!(body["result"], "ok");
    assert_eq!(body["http_status"], 200);
    assert_eq!(body["provider_key"]["usage_count"], 1);
    assert!(body["provider_key"]["last_used_at"].is_string());
    assert_eq!(
        plane.fakes.seen(KeyType::OpenSanctions),
        vec![sanctions.clone()]
    );
    let day = today_summary(&plane, &admin, &os_id);
    assert_eq!(
        (day["calls"].as_u64(), day["errors"].as_u64()),
        (Some(1), Some(0))
    );
    let got = plane.get(&format!("{BASE}/{os_id}"), &admin.token).json();
    assert_eq!(got["usage_count"], 1);

    // Disable the Chainalysis key: verify refuses, nothing reaches the provider, the key
    // and its history stay.
    let reply = plane.patch(
        &format!("{BASE}/{ch_id}"),
        &admin.token,
        json!({"enabled": false}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["enabled"], false);
    assert_error(&verify(&plane, &admin, &ch_id), 409, "conflict", None);
    assert!(plane.fakes.seen(KeyType::Chainalysis).is_empty());
    let kept = plane.get(&format!("{BASE}/{ch_id}"), &admin.token);
    assert_eq!(kept.status, 200);
    assert_eq!(kept.json()["enabled"], false);
    let disabled = plane
        .get(&format!("{BASE}?enabled=false"), &admin.token)
        .json();
    assert_eq!(disabled["data"].as_array().unwrap().len(), 1);
    assert_eq!(today_summary(&plane, &admin, &ch_id)["calls"], 0);
    // And the library's client, asked for the org's Chainalysis key, has none to use.
    let org = OrgId::parse("acme").unwrap();
    let request = shared::providers::client::ProviderRequest {
        method: lambda_http::http::Method::GET,
        path_and_query: KeyType::Chainalysis.probe().path.to_owned(),
        body: None,
    };
    let providers = plane.app.providers.clone().unwrap();
    let err = plane
        .runtime
        .block_on(providers.call(&org, KeyType::Chainalysis, &request))
        .unwrap_err();
    assert_eq!(err, shared::providers::client::CallError::NoEnabledKey);
    assert!(plane.fakes.seen(KeyType::Chainalysis).is_empty());

    // Rotate the Open Sanctions key: same id and history, the old secret no longer sent.
    let rotated_secret = secret("os2");
    plane.fakes.accept(KeyType::OpenSanctions, &rotated_secret);
    let reply = plane.post(
        &format!("{BASE}/{os_id}/rotate"),
        &admin.token,
        json!({"secret": rotated_secret}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let rotated = reply.json();
    assert_eq!(rotated["id"], os_id.as_str());
    assert_eq!(rotated["usage_count"], 1);
    assert!(rotated["rotated_at"].is_string());
    assert_ne!(rotated["masked_key"], os["masked_key"]);
    let reply = verify(&plane, &admin, &os_id);
    assert_eq!(reply.json()["result"], "ok", "{}", reply.body);
    assert_eq!(
        plane.fakes.seen(KeyType::OpenSanctions),
        [sanctions.clone(), rotated_secret.clone()]
    );
    assert_eq!(today_summary(&plane, &admin, &os_id)["calls"], 2);

    // The library's client picks the org's enabled key of the type and sends its secret.
    let (used, outcome) = plane
        .runtime
        .block_on(providers.call(
            &org,
            KeyType::OpenSanctions,
            &shared::providers::client::ProviderRequest {
                method: lambda_http::http::Method::GET,
                path_and_query: KeyType::OpenSanctions.probe().path.to_owned(),
                body: None,
            },
        ))
        .unwrap();
    assert_eq!(used.id, os_id);
    assert_eq!(used.usage_count, 3);
    assert!(!outcome.failed());
    assert_eq!(
        plane.fakes.seen(KeyType::OpenSanctions).last(),
        Some(&rotated_secret)
    );

    // No secret in any table, log line or answer.
    let text = logs().text();
    // Each change says which key, who, and the request it came in (to join its request line).
    for (message, key) in [
        ("provider key created", &os_id),
        ("provider key updated", &ch_id),
        ("provider key rotated", &os_id),
    ] {
        let line = text
            .lines()
            .find(|line| line.contains(message) && line.contains(key.as_str()))
            .unwrap_or_else(|| panic!("no {message:?} line for {key}"));
        let line: Value = serde_json::from_str(line).unwrap();
        let fields = line.get("fields").unwrap_or(&line);
        assert_eq!(
            fields["by"],
            json!(format!("member:{}", admin.member.id)),
            "{line}"
        );
        let request_id = fields["request_id"].as_str().unwrap_or_default();
        assert!(
            text.lines().any(|l| l.contains("\"request\"")
                && l.contains(request_id)
                && l.contains(&admin.member.id)),
            "no request line with {request_id:?} for {message:?}"
        );
    }
    for s in [&sanctions, &chain, &rotated_secret] {
        assert_stored_nowhere(&plane, s);
        assert!(!text.contains(s.as_str()), "a provider secret was logged");
    }
    let everything = plane.get(BASE, &admin.token).body;
    assert!(!everything.contains(&sanctions) && !everything.contains(&rotated_secret));
}

#[test]
fn every_provider_is_verified_the_way_it_takes_its_key() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::ComplianceOfficer);
    for key_type in KeyType::ALL {
        let good = match key_type {
            KeyType::WorldCheck => format!("{}:{}", secret("wck"), secret("wcs")),
            _ => secret("good"),
        };
        let bad = match key_type {
            KeyType::WorldCheck => format!("{}:{}", secret("wck"), secret("wcs")),
            _ => secret("bad"),
        };
        plane.fakes.accept(key_type, &good);
        let ok = created(&plane, &admin, key_type.code(), &good);
        let refused = created(&plane, &admin, key_type.code(), &bad);
        let reply = verify(&plane, &admin, ok["id"].as_str().unwrap());
        assert_eq!(reply.json()["result"], "ok", "{key_type:?}: {}", reply.body);
        let reply = verify(&plane, &admin, refused["id"].as_str().unwrap());
        let body = reply.json();
        assert_eq!(body["result"], "rejected", "{key_type:?}: {}", reply.body);
        assert_eq!(body["http_status"], 401);
        let day = today_summary(&plane, &admin, refused["id"].as_str().unwrap());
        assert_eq!(
            (day["calls"].as_u64(), day["errors"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(plane.fakes.seen(key_type).len(), 2, "{key_type:?}");
    }
    // A provider that is down: unreachable, counted as an error.
    plane.fakes.take_down(KeyType::OpenAi);
    let down = created(&plane, &admin, "A", &secret("sk"));
    let id = down["id"].as_str().unwrap();
    let body = verify(&plane, &admin, id).json();
    assert_eq!(body["result"], "unreachable");
    assert_eq!(body["http_status"], 503);
    let day = today_summary(&plane, &admin, id);
    assert_eq!(
        (day["calls"].as_u64(), day["errors"].as_u64()),
        (Some(1), Some(1))
    );
}

#[test]
fn bad_provider_key_input_is_refused_with_the_field_and_nothing_is_stored() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let good = secret("ok");
    for key_type in [
        json!("X"),
        json!(""),
        json!("o"),
        json!("OO"),
        json!(5),
        json!(null),
    ] {
        let reply = plane.post(
            BASE,
            &admin.token,
            json!({"key_type": key_type, "label": "l", "secret": good}),
        );
        assert_error(&reply, 400, "invalid_request", Some("key_type"));
        assert!(reply.body.contains("O (Open Sanctions)"), "{}", reply.body);
    }
    let reply = plane.post(BASE, &admin.token, json!({"label": "l", "secret": good}));
    assert_error(&reply, 400, "invalid_request", Some("key_type"));
    let marker = uuid::Uuid::new_v4().simple().to_string();
    for bad in [
        json!(""),
        json!("a".repeat(4097)),
        json!(format!("{marker}\n")),
        json!(format!("{marker}\u{0}")),
        json!(format!("{marker}é")),
        json!(format!("{marker}\u{200b}")),
        json!(format!(" {marker}")),
        json!(42),
        json!(null),
    ] {
        let reply = create_raw(
            &plane,
            &admin,
            json!({"key_type": "O", "label": "l", "secret": bad}),
        );
        assert_error(&reply, 400, "invalid_request", Some("secret"));
        assert!(!reply.body.contains(&marker), "the error quotes the secret");
        // A missing secret and one of the wrong type are told apart.
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            message.contains("must be a string"),
            bad.is_number(),
            "{message}"
        );
    }
    // World Check takes a pair.
    let reply = create(&plane, &admin, "W", "l", &secret("nocolon"));
    assert_error(&reply, 400, "invalid_request", Some("secret"));
    // Exactly 4 KiB is fine.
    assert_eq!(
        create(&plane, &admin, "O", "max", &"k".repeat(4096)).status,
        201
    );
    for (body, param) in [
        (json!({"key_type": "O", "secret": good}), "label"),
        (
            json!({"key_type": "O", "label": "", "secret": good}),
            "label",
        ),
        (
            json!({"key_type": "O", "label": "l", "secret": good, "enabled": false}),
            "enabled",
        ),
    ] {
        assert_error(
            &create_raw(&plane, &admin, body),
            400,
            "invalid_request",
            Some(param),
        );
    }
    let reply = plane.call_with(
        "POST",
        BASE,
        &[
            ("authorization", &format!("Bearer {}", admin.token)),
            ("content-type", "application/json"),
        ],
        Some("{\"key_type\": \"O\", \"secret\": "),
    );
    assert_error(&reply, 400, "invalid_request", None);
    // Only the 4 KiB key was stored.
    let list = plane.get(BASE, &admin.token).json();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let id = list["data"][0]["id"].as_str().unwrap().to_owned();

    // PATCH takes label and enabled only; the secret changes by rotation.
    let path = format!("{BASE}/{id}");
    for (body, param) in [
        (json!({"secret": good}), "secret"),
        (json!({"key_type": "H"}), "key_type"),
        (json!({"enabled": "no"}), "enabled"),
        (json!({"label": "\u{7}"}), "label"),
    ] {
        assert_error(
            &plane.patch(&path, &admin.token, body),
            400,
            "invalid_request",
            Some(param),
        );
    }
    let reply = plane.post(
        &format!("{path}/rotate"),
        &admin.token,
        json!({"secret": ""}),
    );
    assert_error(&reply, 400, "invalid_request", Some("secret"));
    let reply = plane.post(&format!("{path}/rotate"), &admin.token, json!({}));
    assert_error(&reply, 400, "invalid_request", Some("secret"));
    // Call summaries: dates, order and width.
    for (query, param) in [
        ("since=2026-13-01", "since"),
        ("until=yesterday", "until"),
        ("since=2026-1-1", "since"),
        ("since=2026-12-02&until=2026-12-01", "since"),
        ("since=2024-01-01&until=2025-12-31", "since"),
    ] {
        let reply = plane.get(&format!("{path}/call-summaries?{query}"), &admin.token);
        assert_error(&reply, 400, "invalid_request", Some(param));
    }
    let reply = plane.get(
        &format!("{path}/call-summaries?since=2025-01-01&until=2025-12-31"),
        &admin.token,
    );
    let rows = reply.json()["data"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 365);
    assert_eq!(rows[0]["date"], "2025-01-01");
    assert_eq!(rows[364]["date"], "2025-12-31");
    assert!(rows.iter().all(|r| r["calls"] == 0 && r["errors"] == 0));
}

fn create_raw(plane: &Plane, who: &Signed, body: Value) -> Reply {
    plane.post(BASE, &who.token, body)
}

#[test]
fn provider_keys_need_the_permission_and_stay_in_their_org() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let officer = plane.member("acme", Role::ComplianceOfficer);
    let developer = plane.member("acme", Role::Developer);
    let analyst = plane.member("acme", Role::Analyst);
    let other = plane.member("globex", Role::Administrator);
    let theirs = secret("os");
    plane.fakes.accept(KeyType::OpenSanctions, &theirs);
    let key = created(&plane, &admin, "O", &theirs);
    let id = key["id"].as_str().unwrap().to_owned();
    assert_eq!(
        plane.get(&format!("{BASE}/{id}"), &officer.token).status,
        200
    );

    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", BASE.to_owned(), None),
        (
            "POST",
            BASE.to_owned(),
            Some(json!({"key_type": "O", "label": "x", "secret": secret("s")})),
        ),
        ("GET", format!("{BASE}/{id}"), None),
        (
            "PATCH",
            format!("{BASE}/{id}"),
            Some(json!({"enabled": false})),
        ),
        (
            "POST",
            format!("{BASE}/{id}/rotate"),
            Some(json!({"secret": secret("s")})),
        ),
        ("GET", format!("{BASE}/{id}/call-summaries"), None),
        ("POST", format!("{BASE}/{id}/verify"), None),
    ];
    for who in [&developer, &analyst] {
        for (method, path, body) in &routes {
            let reply = plane.call(method, path, &who.token, body.clone());
            assert_error(&reply, 403, "forbidden_permission", None);
            assert!(reply.body.contains("org.provider-keys"), "{}", reply.body);
        }
    }
    // Another org's key is not found, whatever the route; so is an id of the wrong form.
    for (method, path, body) in routes.iter().skip(2) {
        let reply = plane.call(method, path, &other.token, body.clone());
        assert_error(&reply, 404, "not_found", None);
    }
    for bad in ["pk_", "key_abc", "pk_a-b", "pk_nosuchkeyatall0000000"] {
        assert_error(
            &plane.get(&format!("{BASE}/{bad}"), &admin.token),
            404,
            "not_found",
            None,
        );
    }
    assert!(plane.get(BASE, &other.token).json()["data"]
        .as_array()
        .unwrap()
        .is_empty());
    // Nothing the refused requests asked for happened.
    let after = plane.get(&format!("{BASE}/{id}"), &admin.token).json();
    assert_eq!(after["enabled"], true);
    assert_eq!(after["masked_key"], key["masked_key"]);
    assert_eq!(after["usage_count"], 0);
    assert!(plane.fakes.seen(KeyType::OpenSanctions).is_empty());

    // A provider key is no API key: as a bearer token it is an unknown token.
    for token in [theirs.as_str(), id.as_str()] {
        let reply = plane.call_with(
            "GET",
            "/v1/customers",
            &[("authorization", &format!("Bearer {token}"))],
            None,
        );
        assert_error(&reply, 401, "unauthorized", None);
        assert_gateway_401(&plane.get(BASE, token));
    }
}

#[test]
fn a_ciphertext_moved_to_another_row_does_not_open() {
    let plane = Plane::new();
    let a = plane.member("acme", Role::Administrator);
    let b = plane.member("globex", Role::Administrator);
    let secret_a = secret("a");
    plane.fakes.accept(KeyType::OpenSanctions, &secret_a);
    let key_a = created(&plane, &a, "O", &secret_a)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_b = created(&plane, &b, "O", &secret("b"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_a2 = created(&plane, &a, "O", &secret("a2"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (org_a, org_b) = (
        OrgId::parse("acme").unwrap(),
        OrgId::parse("globex").unwrap(),
    );
    let table = &plane.tables.provider_keys;
    let vault = plane.app.vault.clone().unwrap();
    let keys = plane.app.provider_keys.clone();
    plane.runtime.block_on(async {
        let (_, sealed_a) = keys.get_sealed(&org_a, &key_a).await.unwrap().unwrap();
        let opened = vault.open(&org_a, &key_a, &sealed_a).await.unwrap();
        assert_eq!(opened.expose(), secret_a);
        // Copy A's sealed attributes, as they are stored, onto B's row and onto another
        // key of A's own org.
        let item = plane
            .client
            .get_item()
            .table_name(table)
            .key("org_id", AttributeValue::S("acme".into()))
            .key("provider_key_id", AttributeValue::S(key_a.clone()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        let sealed: HashMap<String, AttributeValue> = [
            "secret_scheme",
            "kms_key_id",
            "data_key",
            "nonce",
            "ciphertext",
        ]
        .iter()
        .map(|name| (name.to_string(), item[*name].clone()))
        .collect();
        for (org, id) in [("globex", &key_b), ("acme", &key_a2)] {
            let mut update = plane
                .client
                .update_item()
                .table_name(table)
                .key("org_id", AttributeValue::S(org.into()))
                .key("provider_key_id", AttributeValue::S(id.clone()));
            let mut sets = Vec::new();
            for (name, value) in &sealed {
                sets.push(format!("{name} = :{name}"));
                update = update.expression_attribute_values(format!(":{name}"), value.clone());
            }
            update
                .update_expression(format!("SET {}", sets.join(", ")))
                .send()
                .await
                .unwrap();
        }
        for (org, id) in [(&org_b, &key_b), (&org_a, &key_a2)] {
            let (_, moved) = keys.get_sealed(org, id).await.unwrap().unwrap();
            assert_eq!(moved, sealed_a);
            let err = vault.open(org, id, &moved).await.unwrap_err();
            assert!(
                matches!(err, shared::providers::vault::VaultError::Refused(_)),
                "{err:?}"
            );
        }
    });
    // Through the API: a 500 for B (never the client's doing), and A's secret never sent.
    let reply = verify(&plane, &b, &key_b);
    assert_error(&reply, 500, "internal_error", None);
    assert!(plane.fakes.seen(KeyType::OpenSanctions).is_empty());
    assert_eq!(verify(&plane, &a, &key_a).json()["result"], "ok");
}

#[test]
fn kms_throttling_is_a_503_and_nothing_is_half_done() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    plane.kms_faults.inject("GenerateDataKey", Fault::Throttle);
    let reply = create(&plane, &admin, "O", "l", &secret("os"));
    assert_error(&reply, 503, "service_unavailable", None);
    assert!(reply.header("retry-after").is_some());
    assert!(plane.get(BASE, &admin.token).json()["data"]
        .as_array()
        .unwrap()
        .is_empty());
    plane.kms_faults.heal();

    let first = secret("os");
    plane.fakes.accept(KeyType::OpenSanctions, &first);
    let key = created(&plane, &admin, "O", &first);
    let id = key["id"].as_str().unwrap().to_owned();
    // Rotation under throttling leaves the old secret in place.
    plane.kms_faults.inject("GenerateDataKey", Fault::Throttle);
    let reply = plane.post(
        &format!("{BASE}/{id}/rotate"),
        &admin.token,
        json!({"secret": secret("os2")}),
    );
    assert_error(&reply, 503, "service_unavailable", None);
    plane.kms_faults.heal();
    let after = plane.get(&format!("{BASE}/{id}"), &admin.token).json();
    assert_eq!(after["masked_key"], key["masked_key"]);
    assert_eq!(after["rotated_at"], Value::Null);
    // Opening under throttling: no call made, none counted.
    plane.kms_faults.inject("Decrypt", Fault::Throttle);
    assert_error(
        &verify(&plane, &admin, &id),
        503,
        "service_unavailable",
        None,
    );
    plane.kms_faults.inject("Decrypt", Fault::Stall);
    assert_error(
        &verify(&plane, &admin, &id),
        503,
        "service_unavailable",
        None,
    );
    plane.kms_faults.heal();
    assert_eq!(plane.fakes.calls(), 0);
    assert_eq!(today_summary(&plane, &admin, &id)["calls"], 0);
    assert_eq!(verify(&plane, &admin, &id).json()["result"], "ok");
    assert_eq!(today_summary(&plane, &admin, &id)["calls"], 1);
}

#[test]
fn concurrent_calls_are_each_counted_once() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let good = secret("sk");
    plane.fakes.accept(KeyType::OpenAi, &good);
    let id = created(&plane, &admin, "A", &good)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|_| scope.spawn(|| verify(&plane, &admin, &id)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for reply in &replies {
        assert_eq!(reply.json()["result"], "ok", "{}", reply.body);
    }
    let key = plane.get(&format!("{BASE}/{id}"), &admin.token).json();
    assert_eq!(key["usage_count"], 12);
    let day = today_summary(&plane, &admin, &id);
    assert_eq!(
        (day["calls"].as_u64(), day["errors"].as_u64()),
        (Some(12), Some(0))
    );
    assert_eq!(plane.fakes.seen(KeyType::OpenAi).len(), 12);
}

#[test]
fn a_repeated_create_with_its_idempotency_key_makes_one_key() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let the_secret = secret("os");
    let body = json!({"key_type": "O", "label": "prod", "secret": the_secret}).to_string();
    let auth = format!("Bearer {}", admin.token);
    let send = |body: &str| {
        plane.call_with(
            "POST",
            BASE,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
                ("idempotency-key", "create-os-1"),
            ],
            Some(body),
        )
    };
    let first = send(&body);
    assert_eq!(first.status, 201, "{}", first.body);
    let again = send(&body);
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["id"], first.json()["id"]);
    let other = json!({"key_type": "O", "label": "other", "secret": the_secret}).to_string();
    assert_error(&send(&other), 422, "idempotency_key_reused", None);
    // Another secret with the same length and last 4 characters (the same mask) is another
    // request: refused, not replayed with the new secret silently dropped.
    let n = the_secret.len();
    let twin = format!(
        "{}{}",
        the_secret[..n - 4].chars().rev().collect::<String>(),
        &the_secret[n - 4..]
    );
    assert_ne!(twin, the_secret);
    assert_eq!(
        shared::providers::secret::mask(&twin),
        shared::providers::secret::mask(&the_secret)
    );
    let twin_body = json!({"key_type": "O", "label": "prod", "secret": twin}).to_string();
    assert_error(&send(&twin_body), 422, "idempotency_key_reused", None);
    assert_stored_nowhere(&plane, &twin);
    assert_eq!(
        plane.get(BASE, &admin.token).json()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_stored_nowhere(&plane, &the_secret);
}
