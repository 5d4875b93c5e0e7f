//! The member plane end to end: members signed in through the Cognito-API emulator, their
//! tokens checked by the local gateway as API Gateway's JWT authorizer checks them, the
//! member API's functions against DynamoDB Local, and the integration API used with the
//! keys they make.

mod audit;
mod delivery;
mod flood;
mod helpers;
mod leaks;
mod providers;
mod receiver;
mod test_mode;
mod webhooks;

use std::collections::BTreeSet;

use helpers::{assert_gateway_401, cognito, Plane};
use infra::authorizer::Refusal;
use serde_json::{json, Value};
use shared::keys::scope::Scope;
use shared::members::role::Role;
use shared::org::OrgId;

fn scopes_of(key: &Value) -> BTreeSet<String> {
    key["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// A whole-second RFC 3339 time `days` from now, as the API stores it (milliseconds, `Z`).
fn days_from_now(days: i64) -> String {
    let at = chrono::Utc::now() + chrono::Duration::days(days);
    shared::time::format(&chrono::DateTime::from_timestamp(at.timestamp(), 0).unwrap())
}

#[test]
fn a_member_signs_in_creates_a_key_uses_it_rolls_it_and_revokes_it() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);

    let me = plane.get("/v1/org/me", &admin.token);
    assert_eq!(me.status, 200, "{}", me.body);
    let me = me.json();
    assert_eq!(me["email"], admin.email.as_str());
    assert_eq!(me["org"]["id"], "acme");
    assert_eq!(me["role"], "administrator");
    assert_eq!(
        me["grantable_scopes"],
        json!([
            "customers:write",
            "customers:read",
            "aml:read",
            "webhooks:write"
        ])
    );

    let created = plane.post(
        "/v1/org/api-keys",
        &admin.token,
        json!({"label": "CRM sync", "scopes": ["customers:read", "customers:write"],
               "rate_limit": {"requests_per_second": 20}, "ip_allowlist": ["127.0.0.0/8"]}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let key = created.json();
    let plaintext = key["key"].as_str().unwrap().to_owned();
    let id = key["id"].as_str().unwrap().to_owned();
    assert!(plaintext.starts_with("ic_live_") && plaintext.len() == 46);
    assert_eq!(
        key["created_by"],
        json!({"id": admin.member.id, "email": admin.email})
    );
    assert_eq!(key["rate_limit"], json!({"requests_per_second": 20}));
    assert_eq!(key["status"], "active");
    assert!(key.get("key_hash").is_none());
    // The plaintext is nowhere in storage; the key works.
    plane.assert_stored_nowhere(&plaintext, "an API key's plaintext");
    let used = plane.get("/v1/customers", &plaintext);
    assert_eq!(used.status, 200, "{}", used.body);
    assert_eq!(used.header("ratelimit-limit"), Some("20"));

    // Reading it again never shows the plaintext; the last use is there.
    let read = plane.get(&format!("/v1/org/api-keys/{id}"), &admin.token);
    assert_eq!(read.status, 200, "{}", read.body);
    let read = read.json();
    assert!(read.get("key").is_none());
    assert_eq!(read["last_used_ip"], "127.0.0.1");
    assert!(read["last_used_at"].is_string());

    // Roll with an hour of grace: both work, each names the other.
    let rolled = plane.post(
        &format!("/v1/org/api-keys/{id}/roll"),
        &admin.token,
        json!({"expire_old_in_seconds": 3600}),
    );
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    let rolled = rolled.json();
    let new_id = rolled["id"].as_str().unwrap().to_owned();
    let new_plaintext = rolled["key"].as_str().unwrap().to_owned();
    assert_eq!(rolled["rolled_from"], id.as_str());
    assert_eq!(rolled["label"], "CRM sync");
    assert_eq!(scopes_of(&rolled), scopes_of(&key));
    assert_eq!(rolled["ip_allowlist"], json!(["127.0.0.0/8"]));
    assert_eq!(rolled["rate_limit"], json!({"requests_per_second": 20}));
    assert_eq!(plane.get("/v1/customers", &new_plaintext).status, 200);
    assert_eq!(plane.get("/v1/customers", &plaintext).status, 200);
    let old = plane
        .get(&format!("/v1/org/api-keys/{id}"), &admin.token)
        .json();
    assert_eq!(old["rolled_to"], new_id.as_str());
    let expires = shared::time::parse(old["expires_at"].as_str().unwrap()).unwrap();
    let left = expires - shared::time::now();
    assert!(left > chrono::Duration::minutes(59) && left <= chrono::Duration::hours(1));
    // A rolled key is not rolled again.
    let again = plane.post(
        &format!("/v1/org/api-keys/{id}/roll"),
        &admin.token,
        json!({}),
    );
    again.assert_error(409, "conflict");

    // Revoke: the next request is a 401; revoking again changes nothing.
    let revoked = plane.post(
        &format!("/v1/org/api-keys/{new_id}/revoke"),
        &admin.token,
        json!({}),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let revoked = revoked.json();
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["revoked_by"], admin.member.id.as_str());
    assert_eq!(revoked["revocation_reason"], "requested");
    assert_eq!(revoked["leak"], Value::Null);
    plane
        .get("/v1/customers", &new_plaintext)
        .assert_error(401, "unauthorized");
    let twice = plane.call(
        "POST",
        &format!("/v1/org/api-keys/{new_id}/revoke"),
        &admin.token,
        None,
    );
    assert_eq!(twice.status, 200, "{}", twice.body);
    assert_eq!(twice.json()["revoked_at"], revoked["revoked_at"]);

    // Roll with no grace: the old key stops at once.
    let (id3, plain3) = plane.create_key(&admin, &[Scope::CustomersRead]);
    let rolled = plane.post(
        &format!("/v1/org/api-keys/{id3}/roll"),
        &admin.token,
        json!({"expire_old_in_seconds": 0}),
    );
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    plane
        .get("/v1/customers", &plain3)
        .assert_error(401, "unauthorized");
}

#[test]
fn the_authorizer_and_the_session_refuse_every_token_that_is_not_a_members_access_token() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let path = "/v1/org/me";

    // No token, an API key, garbage, an unsigned or tampered token: API Gateway's 401.
    assert_gateway_401(&plane.call_with("GET", &plane.url(path)[plane.url("").len()..], &[], None));
    let (_, api_key) = plane.create_key(&admin, &[Scope::CustomersRead]);
    assert_gateway_401(&plane.get(path, &api_key));
    assert_gateway_401(&plane.get(path, "not-a-token"));
    let parts: Vec<&str> = admin.token.split('.').collect();
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
    assert_gateway_401(&plane.get(path, &unsigned));
    let mut signature = parts[2].to_owned().into_bytes();
    signature[10] = if signature[10] == b'A' { b'B' } else { b'A' };
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        String::from_utf8(signature).unwrap()
    );
    assert_gateway_401(&plane.get(path, &tampered));
    // A payload swapped under a valid signature (another member's sub).
    let forged_claims = {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
        claims["sub"] = json!("someone-else");
        engine.encode(claims.to_string())
    };
    assert_gateway_401(&plane.get(path, &format!("{}.{forged_claims}.{}", parts[0], parts[2])));

    // Another pool's token (same emulator, so the same signing key): wrong issuer.
    let other = Plane::new();
    let stranger = other.member("acme", Role::Administrator);
    let reply = plane.get(path, &stranger.token);
    assert_gateway_401(&reply);
    assert!(
        reply.header("www-authenticate").unwrap().contains("issuer"),
        "{:?}",
        reply.headers
    );

    // The same pool through another app client: wrong client.
    let other_client = plane.runtime.block_on(async {
        cognito()
            .client()
            .create_user_pool_client()
            .user_pool_id(&plane.pool.pool_id)
            .client_name("another")
            .explicit_auth_flows(aws_sdk_cognitoidentityprovider::types::ExplicitAuthFlowsType::AllowUserPasswordAuth)
            .send()
            .await
            .unwrap()
            .user_pool_client()
            .unwrap()
            .client_id()
            .unwrap()
            .to_owned()
    });
    let wrong_client = plane
        .runtime
        .block_on(shared::members::pool::sign_in(
            &cognito().client(),
            &other_client,
            &admin.email,
            &admin.password,
        ))
        .unwrap()
        .access_token;
    assert_gateway_401(&plane.get(path, &wrong_client));

    // The ID token passes the authorizer (its audience is the client) but not the handler.
    let tokens = plane.sign_in_tokens(&admin.email, &admin.password).unwrap();
    let id_token = tokens.id_token.unwrap();
    plane.get(path, &id_token).assert_error(401, "unauthorized");

    // Expired: the same real token, checked as the authorizer would an hour later.
    let check = |now: u64| {
        let authorizer = infra::authorizer::JwtAuthorizer::new(
            format!(
                "https://cognito-idp.us-east-1.amazonaws.com/{}",
                plane.pool.pool_id
            ),
            vec![plane.pool.client_id.clone()],
            cognito().jwks_url(&plane.pool.pool_id),
        );
        plane
            .runtime
            .block_on(authorizer.check(Some(&format!("Bearer {}", admin.token)), now))
    };
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap();
    let claims = check(now).expect("valid now");
    assert_eq!(claims["token_use"], "access");
    assert_eq!(claims["sub"], admin.member.id);
    let exp: u64 = claims["exp"].parse().unwrap();
    assert_eq!(
        check(exp),
        Err(Refusal::Invalid("the token has expired".into()))
    );
    assert!(check(exp - 1).is_ok());

    // A member token on the integration API is no API key.
    plane
        .get("/v1/customers", &admin.token)
        .assert_error(401, "unauthorized");
    plane
        .get("/v1/me", &admin.token)
        .assert_error(401, "unauthorized");
}

#[test]
fn roles_bound_what_a_member_may_do_and_what_their_keys_may_carry() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let developer = plane.member("acme", Role::Developer);
    let analyst = plane.member("acme", Role::Analyst);

    // A developer may make keys, within customers.read / customers.write.
    plane.create_key(&developer, &[Scope::CustomersRead, Scope::CustomersWrite]);
    let refused = plane.post(
        "/v1/org/api-keys",
        &developer.token,
        json!({"label": "x", "scopes": ["customers:read", "aml:read"]}),
    );
    let body = refused.assert_error(403, "forbidden_permission");
    assert_eq!(body["error"]["param"], "scopes");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("aml.read"),
        "{body}"
    );
    // An analyst has no org.api-keys; a developer no org.members.
    for (method, path) in [("GET", "/v1/org/api-keys"), ("POST", "/v1/org/api-keys")] {
        let reply = plane.call(
            method,
            path,
            &analyst.token,
            (method == "POST").then(|| json!({"label": "x", "scopes": ["customers:read"]})),
        );
        let body = reply.assert_error(403, "forbidden_permission");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("org.api-keys"));
    }
    plane
        .get("/v1/org/members", &developer.token)
        .assert_error(403, "forbidden_permission");
    // Everyone may read who they are.
    assert_eq!(
        plane.get("/v1/org/me", &analyst.token).json()["permissions"],
        json!(["customers.read", "aml.read"])
    );
    // A member can't change their own role, even an administrator.
    let own = plane.patch(
        &format!("/v1/org/members/{}", admin.member.id),
        &admin.token,
        json!({"role": "developer"}),
    );
    assert_eq!(
        own.assert_error(403, "forbidden_permission")["error"]["param"],
        "role"
    );
}

#[test]
fn a_demotion_takes_scopes_from_the_members_keys_at_once() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let officer = plane.member("acme", Role::ComplianceOfficer);
    let (key_id, key) = plane.create_key(&officer, &[Scope::CustomersRead, Scope::AmlRead]);
    let customer = plane.post(
        "/v1/customers",
        &plane.create_key(&admin, &[Scope::CustomersWrite]).1,
        json!({"type": "INDIVIDUAL", "full_name": "Jane Doe"}),
    );
    assert_eq!(customer.status, 201, "{}", customer.body);
    let customer_id = customer.json()["id"].as_str().unwrap().to_owned();
    let aml = format!("/v1/customers/{customer_id}/aml");
    assert_eq!(plane.get(&aml, &key).status, 200);

    let demoted = plane.patch(
        &format!("/v1/org/members/{}", officer.member.id),
        &admin.token,
        json!({"role": "developer"}),
    );
    assert_eq!(demoted.status, 200, "{}", demoted.body);
    assert_eq!(demoted.json()["role"], "developer");
    // The very next request with the key: AML is gone, customers.read stays.
    let body = plane.get(&aml, &key).assert_error(403, "forbidden_scope");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("aml:read"));
    assert_eq!(
        plane
            .get(&format!("/v1/customers/{customer_id}"), &key)
            .status,
        200
    );
    let shown = plane
        .get(&format!("/v1/org/api-keys/{key_id}"), &admin.token)
        .json();
    assert_eq!(
        scopes_of(&shown),
        BTreeSet::from(["customers:read".to_owned()])
    );
    // And the demoted member's next member-API request acts as a developer.
    plane
        .get("/v1/org/members", &officer.token)
        .assert_error(403, "forbidden_permission");
}

#[test]
fn the_last_administrator_stays_even_when_two_demote_each_other_at_once() {
    let plane = Plane::new();
    let first = plane.member("acme", Role::Administrator);
    // Alone: can't be deactivated by an officer, nor demoted.
    let officer = plane.member("acme", Role::ComplianceOfficer);
    plane
        .patch(
            &format!("/v1/org/members/{}", first.member.id),
            &officer.token,
            json!({"role": "analyst"}),
        )
        .assert_error(409, "conflict");
    plane
        .post(
            &format!("/v1/org/members/{}/deactivate", first.member.id),
            &officer.token,
            json!({}),
        )
        .assert_error(409, "conflict");

    let second = plane.member("acme", Role::Administrator);
    for _ in 0..3 {
        // Each demotes the other at the same moment: exactly one wins.
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| {
                plane.patch(
                    &format!("/v1/org/members/{}", second.member.id),
                    &first.token,
                    json!({"role": "developer"}),
                )
            });
            let b = s.spawn(|| {
                plane.patch(
                    &format!("/v1/org/members/{}", first.member.id),
                    &second.token,
                    json!({"role": "developer"}),
                )
            });
            (a.join().unwrap(), b.join().unwrap())
        });
        let statuses = BTreeSet::from([a.status, b.status]);
        let members = plane
            .runtime
            .block_on(plane.app.members.list(&OrgId::parse("acme").unwrap()))
            .unwrap();
        let admins = members
            .iter()
            .filter(|m| m.role == Role::Administrator && m.is_active())
            .count();
        assert_eq!(admins, 1, "one administrator left ({statuses:?})");
        assert!(statuses.contains(&200), "{} / {}", a.body, b.body);
        // Promote back whoever lost the role, by the one who kept it.
        let (keeper, lost) = if members
            .iter()
            .any(|m| m.id == first.member.id && m.role == Role::Administrator)
        {
            (&first, &second)
        } else {
            (&second, &first)
        };
        let back = plane.patch(
            &format!("/v1/org/members/{}", lost.member.id),
            &keeper.token,
            json!({"role": "administrator"}),
        );
        assert_eq!(back.status, 200, "{}", back.body);
    }
}

#[test]
fn deactivation_revokes_the_members_keys_or_hands_them_on() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let leaver = plane.member("acme", Role::Developer);
    let (key1_id, key1) = plane.create_key(&leaver, &[Scope::CustomersRead]);
    let (_, key2) = plane.create_key(&leaver, &[Scope::CustomersWrite, Scope::CustomersRead]);
    let reply = plane.post(
        &format!("/v1/org/members/{}/deactivate", leaver.member.id),
        &admin.token,
        json!({}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["status"], "deactivated");
    assert_eq!(body["keys_revoked"].as_array().unwrap().len(), 2);
    for key in [&key1, &key2] {
        plane
            .get("/v1/customers", key)
            .assert_error(401, "unauthorized");
    }
    let record = plane
        .get(&format!("/v1/org/api-keys/{key1_id}"), &admin.token)
        .json();
    assert_eq!(record["revocation_reason"], "member_deactivated");
    assert_eq!(record["revoked_by"], admin.member.id.as_str());
    // Their session ends on the next request, and the pool no longer signs them in.
    plane
        .get("/v1/org/me", &leaver.token)
        .assert_error(401, "unauthorized");
    // The operator tool says why (not "wrong email or password"), and so does a wrong
    // password's refusal for an active member stay as it was.
    assert_eq!(
        plane.sign_in(&leaver.email, &leaver.password).unwrap_err(),
        "this member is deactivated: the pool no longer signs them in"
    );
    assert_eq!(
        plane.sign_in(&admin.email, "not-the-password").unwrap_err(),
        "wrong email or password"
    );
    // Repeating it is harmless.
    let again = plane.post(
        &format!("/v1/org/members/{}/deactivate", leaver.member.id),
        &admin.token,
        json!({}),
    );
    assert_eq!(again.status, 200, "{}", again.body);

    // Handed on: only to an active member whose role covers the keys' scopes.
    let mover = plane.member("acme", Role::Developer);
    let analyst = plane.member("acme", Role::Analyst);
    let heir = plane.member("acme", Role::Developer);
    let (kept_id, kept) = plane.create_key(&mover, &[Scope::CustomersWrite, Scope::CustomersRead]);
    let refused = plane.post(
        &format!("/v1/org/members/{}/deactivate", mover.member.id),
        &admin.token,
        json!({"transfer_keys_to": analyst.member.id}),
    );
    assert_eq!(
        refused.assert_error(400, "invalid_request")["error"]["param"],
        "transfer_keys_to"
    );
    assert_eq!(
        plane.get("/v1/org/me", &mover.token).status,
        200,
        "nothing changed"
    );
    let moved = plane.post(
        &format!("/v1/org/members/{}/deactivate", mover.member.id),
        &admin.token,
        json!({"transfer_keys_to": heir.member.id}),
    );
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.json()["keys_transferred"], json!([kept_id]));
    assert_eq!(plane.get("/v1/customers", &kept).status, 200);
    let key = plane
        .get(&format!("/v1/org/api-keys/{kept_id}"), &admin.token)
        .json();
    assert_eq!(key["owned_by"]["id"], heir.member.id.as_str());
    assert_eq!(key["created_by"]["id"], mover.member.id.as_str());
    // The heir answers for it now: demoting the heir trims it.
    let demoted = plane.patch(
        &format!("/v1/org/members/{}", heir.member.id),
        &admin.token,
        json!({"role": "analyst"}),
    );
    assert_eq!(demoted.status, 200, "{}", demoted.body);
    let key = plane
        .get(&format!("/v1/org/api-keys/{kept_id}"), &admin.token)
        .json();
    assert_eq!(
        scopes_of(&key),
        BTreeSet::from(["customers:read".to_owned()])
    );
}

#[test]
fn another_orgs_keys_and_members_are_not_found() {
    let plane = Plane::new();
    let acme = plane.member("acme", Role::Administrator);
    let globex = plane.member("globex", Role::Administrator);
    let (acme_key, plaintext) = plane.create_key(&acme, &[Scope::CustomersRead]);
    for (method, path) in [
        ("GET", format!("/v1/org/api-keys/{acme_key}")),
        ("GET", format!("/v1/org/api-keys/{acme_key}/requests")),
        ("POST", format!("/v1/org/api-keys/{acme_key}/revoke")),
        ("POST", format!("/v1/org/api-keys/{acme_key}/roll")),
        (
            "POST",
            format!("/v1/org/members/{}/deactivate", acme.member.id),
        ),
    ] {
        plane
            .call(method, &path, &globex.token, None)
            .assert_error(404, "not_found");
    }
    plane
        .patch(
            &format!("/v1/org/api-keys/{acme_key}"),
            &globex.token,
            json!({"label": "mine"}),
        )
        .assert_error(404, "not_found");
    plane
        .patch(
            &format!("/v1/org/members/{}", acme.member.id),
            &globex.token,
            json!({"role": "analyst"}),
        )
        .assert_error(404, "not_found");
    // Untouched, and invisible in globex's lists.
    assert_eq!(plane.get("/v1/customers", &plaintext).status, 200);
    assert_eq!(
        plane.get("/v1/org/api-keys", &globex.token).json()["data"],
        json!([])
    );
    let members = plane.get("/v1/org/members", &globex.token).json();
    assert_eq!(members["data"].as_array().unwrap().len(), 1);
}

#[test]
fn secrets_are_never_stored_so_create_and_roll_take_no_idempotency_key() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let auth = format!("Bearer {}", admin.token);
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("idempotency-key", "create-1"),
    ];
    let reply = plane.call_with(
        "POST",
        "/v1/org/api-keys",
        &headers,
        Some(r#"{"label":"x","scopes":["customers:read"]}"#),
    );
    assert_eq!(
        reply.assert_error(400, "invalid_request")["error"]["param"],
        "Idempotency-Key"
    );
    assert_eq!(
        plane.get("/v1/org/api-keys", &admin.token).json()["data"],
        json!([]),
        "nothing was made"
    );
    let (id, _) = plane.create_key(&admin, &[Scope::CustomersRead]);
    let reply = plane.call_with(
        "POST",
        &format!("/v1/org/api-keys/{id}/roll"),
        &headers,
        Some("{}"),
    );
    assert_eq!(
        reply.assert_error(400, "invalid_request")["error"]["param"],
        "Idempotency-Key"
    );
    let key = plane
        .get(&format!("/v1/org/api-keys/{id}"), &admin.token)
        .json();
    assert_eq!(key["rolled_to"], Value::Null);
    let text = plane.table_text(&plane.tables.idempotency);
    assert!(
        !text.contains("ic_live_"),
        "no response with a key is stored"
    );
}

#[test]
fn bad_key_requests_get_a_clear_error_and_change_nothing() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let cases = [
        (
            json!({"label": "x", "scopes": ["customers:read"], "ip_allowlist": ["0.0.0.0/0"]}),
            "ip_allowlist",
        ),
        (
            json!({"label": "x", "scopes": ["customers:read"], "ip_allowlist": ["::/0"]}),
            "ip_allowlist",
        ),
        (
            json!({"label": "x", "scopes": ["customers:read"], "ip_allowlist": ["10.0.0.1/8"]}),
            "ip_allowlist",
        ),
        (json!({"label": "x", "scopes": []}), "scopes"),
        (json!({"label": "x", "scopes": ["admin"]}), "scopes"),
        (json!({"scopes": ["customers:read"]}), "label"),
        (
            json!({"label": "x", "scopes": ["customers:read"], "expires_at": "2020-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"label": "x", "scopes": ["customers:read"], "rate_limit": {"requests_per_second": 0}}),
            "rate_limit",
        ),
        (
            json!({"label": "x", "scopes": ["customers:read"], "rate_limit": 5}),
            "rate_limit",
        ),
        (
            json!({"label": "x", "scopes": ["customers:read"], "owner": "me"}),
            "owner",
        ),
        (
            json!({"label": "x\u{200b}", "scopes": ["customers:read"]}),
            "label",
        ),
    ];
    for (body, param) in cases {
        let reply = plane.post("/v1/org/api-keys", &admin.token, body.clone());
        assert_eq!(
            reply.assert_error(400, "invalid_request")["error"]["param"],
            param,
            "{body}"
        );
    }
    let host_bits = plane.post(
        "/v1/org/api-keys",
        &admin.token,
        json!({"label": "x", "scopes": ["customers:read"], "ip_allowlist": ["10.0.0.1/8"]}),
    );
    assert!(host_bits.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("10.0.0.0/8"));
    assert_eq!(
        plane.get("/v1/org/api-keys", &admin.token).json()["data"],
        json!([])
    );

    // Edits: scopes never change, expiry only earlier, unknown fields refused. Dates are
    // relative to now, so the test never expires itself.
    let expires = days_from_now(3 * 365);
    let created = plane.post(
        "/v1/org/api-keys",
        &admin.token,
        json!({"label": "x", "scopes": ["customers:read"], "expires_at": expires}),
    );
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/org/api-keys/{id}");
    for (body, param) in [
        (json!({"scopes": ["aml:read"]}), "scopes"),
        (json!({"expires_at": days_from_now(4 * 365)}), "expires_at"),
        (json!({"revoked_at": null}), "revoked_at"),
        (json!({"ip_allowlist": ["0.0.0.0/0"]}), "ip_allowlist"),
    ] {
        let reply = plane.patch(&path, &admin.token, body.clone());
        let refused = reply.assert_error(400, "invalid_request");
        assert_eq!(refused["error"]["param"], param, "{body}");
        if param == "scopes" {
            // The way out it names is one that gives other scopes (a roll keeps them).
            let message = refused["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("create a key with the scopes") && !message.contains("roll it"),
                "{message}"
            );
        }
    }
    let earlier = days_from_now(2 * 365);
    let edited = plane.patch(&path, &admin.token, json!({"label": "renamed", "expires_at": earlier, "rate_limit": {"requests_per_second": 5}, "ip_allowlist": ["203.0.113.0/24"]}));
    assert_eq!(edited.status, 200, "{}", edited.body);
    let edited = edited.json();
    assert_eq!(edited["label"], "renamed");
    assert_eq!(edited["expires_at"], earlier);
    assert_eq!(edited["ip_allowlist"], json!(["203.0.113.0/24"]));
    let cleared = plane.patch(&path, &admin.token, json!({"ip_allowlist": []}));
    assert_eq!(cleared.json()["ip_allowlist"], json!([]));
    // A revoked key can't be edited.
    plane.post(&format!("{path}/revoke"), &admin.token, json!({}));
    plane
        .patch(&path, &admin.token, json!({"label": "again"}))
        .assert_error(409, "conflict");
    // Roll grace beyond 7 days.
    let (id2, _) = plane.create_key(&admin, &[Scope::CustomersRead]);
    let reply = plane.post(
        &format!("/v1/org/api-keys/{id2}/roll"),
        &admin.token,
        json!({"expire_old_in_seconds": 604801}),
    );
    assert_eq!(
        reply.assert_error(400, "invalid_request")["error"]["param"],
        "expire_old_in_seconds"
    );
}

#[test]
fn keys_list_newest_first_in_pages_with_filters() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let developer = plane.member("acme", Role::Developer);
    let mut made = Vec::new();
    for i in 0..5 {
        let who = if i % 2 == 0 { &admin } else { &developer };
        made.push(plane.create_key(who, &[Scope::CustomersRead]).0);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    plane.post(
        &format!("/v1/org/api-keys/{}/revoke", made[0]),
        &admin.token,
        json!({}),
    );
    let mut seen = Vec::new();
    let mut path = "/v1/org/api-keys?limit=2".to_owned();
    loop {
        let page = plane.get(&path, &admin.token);
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/org/api-keys?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let mut newest_first = made.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let revoked = plane
        .get("/v1/org/api-keys?status=revoked", &admin.token)
        .json();
    assert_eq!(revoked["data"].as_array().unwrap().len(), 1);
    let by_dev = plane
        .get(
            &format!("/v1/org/api-keys?created_by={}", developer.member.id),
            &admin.token,
        )
        .json();
    assert_eq!(by_dev["data"].as_array().unwrap().len(), 2);
    plane
        .get("/v1/org/api-keys?status=dead", &admin.token)
        .assert_error(400, "invalid_request");
    plane
        .get("/v1/org/api-keys?cursor=%%%", &admin.token)
        .assert_error(400, "invalid_request");
}

#[test]
fn members_are_invited_listed_and_an_invitation_is_not_repeated() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let invited = plane.post(
        "/v1/org/members",
        &admin.token,
        json!({"email": "New.Person@Acme.test", "role": "analyst"}),
    );
    assert_eq!(invited.status, 201, "{}", invited.body);
    let invited = invited.json();
    assert_eq!(invited["email"], "new.person@acme.test");
    assert_eq!(invited["role"], "analyst");
    assert_eq!(invited["invited_by"], admin.member.id.as_str());
    // The pool has the user (the emulator sends no mail).
    let sub = plane
        .runtime
        .block_on(plane.app.pool().unwrap().sub_of("new.person@acme.test"))
        .unwrap();
    assert_eq!(sub.as_deref(), invited["id"].as_str());
    plane
        .post(
            "/v1/org/members",
            &admin.token,
            json!({"email": "new.person@acme.test", "role": "developer"}),
        )
        .assert_error(409, "conflict");
    plane
        .post(
            "/v1/org/members",
            &admin.token,
            json!({"email": "not an email", "role": "analyst"}),
        )
        .assert_error(400, "invalid_request");
    plane
        .post(
            "/v1/org/members",
            &admin.token,
            json!({"email": "x@acme.test", "role": "owner"}),
        )
        .assert_error(400, "invalid_request");
    let list = plane.get("/v1/org/members", &admin.token).json();
    let emails: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    let mut sorted = emails.clone();
    sorted.sort();
    assert_eq!(emails, sorted);
    assert_eq!(emails.len(), 2);
    assert!(list["data"][0].get("key_hashes").is_none());
}

#[test]
fn a_keys_request_log_reads_newest_first_with_filters_and_a_cursor() {
    use shared::request_log::record::RequestRecord;
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let (id, _) = plane.create_key(&admin, &[Scope::CustomersRead]);
    let customer = uuid::Uuid::now_v7().to_string();
    let base = shared::time::parse("2026-11-20T10:00:00Z").unwrap();
    let records: Vec<RequestRecord> = (0..7)
        .map(|i| RequestRecord {
            id: format!("req-{i}"),
            at: base + chrono::Duration::minutes(i),
            org: "acme".into(),
            key_id: id.clone(),
            method: "GET".into(),
            route: "GET /v1/customers/{id}".into(),
            path: format!("/v1/customers/{customer}"),
            status: match i {
                0 | 3 | 6 => 403,
                5 => 429,
                _ => 200,
            },
            error_code: None,
            source_ip: Some("203.0.113.9".into()),
            user_agent: None,
            customer_ids: if i < 4 {
                vec![customer.clone()]
            } else {
                vec![]
            },
            idempotent_replayed: false,
            latency_ms: 3.0,
        })
        .collect();
    plane
        .runtime
        .block_on(plane.app.request_log.put_all(&records))
        .unwrap();
    let path = format!("/v1/org/api-keys/{id}/requests");
    let ids = |reply: &helpers::Reply| -> Vec<String> {
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&plane.get(&path, &admin.token)),
        ["req-6", "req-5", "req-4", "req-3", "req-2", "req-1", "req-0"]
    );
    let first = plane.get(&format!("{path}?limit=3"), &admin.token);
    assert_eq!(ids(&first), ["req-6", "req-5", "req-4"]);
    let cursor = first.json()["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(
        ids(&plane.get(&format!("{path}?limit=3&cursor={cursor}"), &admin.token)),
        ["req-3", "req-2", "req-1"]
    );
    assert_eq!(
        ids(&plane.get(&format!("{path}?status=403"), &admin.token)),
        ["req-6", "req-3", "req-0"]
    );
    // A class: every 4xx, the 429 with the 403s; 2xx the rest.
    assert_eq!(
        ids(&plane.get(&format!("{path}?status=4xx"), &admin.token)),
        ["req-6", "req-5", "req-3", "req-0"]
    );
    assert_eq!(
        ids(&plane.get(&format!("{path}?status=2xx"), &admin.token)),
        ["req-4", "req-2", "req-1"]
    );
    assert_eq!(
        ids(&plane.get(&format!("{path}?status=5xx"), &admin.token)),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(&plane.get(&format!("{path}?customer_id={customer}"), &admin.token)),
        ["req-3", "req-2", "req-1", "req-0"]
    );
    assert_eq!(
        ids(&plane.get(
            &format!("{path}?since=2026-11-20T10:02:00Z&until=2026-11-20T10:05:00Z"),
            &admin.token
        )),
        ["req-4", "req-3", "req-2"]
    );
    for bad in ["abc", "6xx", "4XX", "40"] {
        plane
            .get(&format!("{path}?status={bad}"), &admin.token)
            .assert_error(400, "invalid_request");
    }
    plane
        .get(&format!("{path}?since=yesterday"), &admin.token)
        .assert_error(400, "invalid_request");
}

#[test]
fn no_key_hash_or_session_token_ever_reaches_a_log_line() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let (id, key) = plane.create_key(&admin, &[Scope::CustomersRead]);
    assert_eq!(plane.get("/v1/customers", &key).status, 200);
    let rolled = plane.post(
        &format!("/v1/org/api-keys/{id}/roll"),
        &admin.token,
        json!({"expire_old_in_seconds": 60}),
    );
    let new_key = rolled.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(plane.get("/v1/customers", &new_key).status, 200);
    plane.get("/v1/org/me", "garbage-token");
    let hash = shared::keys::token::ApiKeyToken::parse(&key)
        .unwrap()
        .hash();
    let text = helpers::logs().text();
    // The lines are there (this test's member requests are logged, by member id)...
    assert!(
        text.contains(&admin.member.id),
        "the member's requests are logged"
    );
    assert!(
        text.contains(&id),
        "the key's requests are logged under its id"
    );
    // ...and none holds a secret, a hash or the member's email.
    for secret in [
        key.as_str(),
        new_key.as_str(),
        admin.token.as_str(),
        &hex::encode(hash.as_bytes()),
        &admin.password,
        &admin.email,
    ] {
        assert!(!text.contains(secret), "a log line holds a secret or PII");
    }
}

#[test]
fn dynamodb_throttled_or_down_is_a_503_never_a_401_and_nothing_half_made() {
    use localdb::{Fault, Injection};
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let developer = plane.member("acme", Role::Developer);
    let (_, dev_key) = plane.create_key(&developer, &[Scope::CustomersWrite, Scope::CustomersRead]);

    // The session's read of the member record: throttled, unreachable.
    for fault in [Fault::Throttle, Fault::Refuse] {
        plane
            .faults
            .arm(Injection::new("GetItem", fault).on_table(&plane.tables.members));
        let reply = plane.get("/v1/org/me", &admin.token);
        reply.assert_error(503, "service_unavailable");
        assert_eq!(reply.header("retry-after"), Some("1"));
        plane.faults.heal();
    }
    // A key's creation, its transaction cancelled for throttling: no key, no dangling hash.
    plane.faults.arm(Injection::new(
        "TransactWriteItems",
        Fault::TransactionThrottled,
    ));
    let reply = plane.post(
        "/v1/org/api-keys",
        &admin.token,
        json!({"label": "x", "scopes": ["customers:read"]}),
    );
    reply.assert_error(503, "service_unavailable");
    plane.faults.heal();
    let listed = plane.get(
        &format!("/v1/org/api-keys?created_by={}", admin.member.id),
        &admin.token,
    );
    assert_eq!(listed.json()["data"], json!([]));
    let stored = plane
        .runtime
        .block_on(plane.app.members.get(&admin.member.id))
        .unwrap()
        .unwrap();
    assert!(
        stored.key_hashes.is_empty(),
        "no hash of a key that was never made"
    );

    // A demotion is one transaction with its keys' trimming: throttled, it is a 503 and
    // nothing changed (role and scopes as they were); the retry does it all.
    plane.faults.arm(Injection::new(
        "TransactWriteItems",
        Fault::TransactionThrottled,
    ));
    let demoted = plane.patch(
        &format!("/v1/org/members/{}", developer.member.id),
        &admin.token,
        json!({"role": "analyst"}),
    );
    demoted.assert_error(503, "service_unavailable");
    plane.faults.heal();
    let unchanged = plane
        .runtime
        .block_on(plane.app.members.get(&developer.member.id))
        .unwrap()
        .unwrap();
    assert_eq!(unchanged.role, Role::Developer);
    let customer = plane.post(
        "/v1/customers",
        &dev_key,
        json!({"type": "INDIVIDUAL", "full_name": "Before"}),
    );
    assert_eq!(
        customer.status, 201,
        "the key kept customers:write: {}",
        customer.body
    );
    let again = plane.patch(
        &format!("/v1/org/members/{}", developer.member.id),
        &admin.token,
        json!({"role": "analyst"}),
    );
    assert_eq!(again.status, 200, "{}", again.body);
    let body = plane
        .post(
            "/v1/customers",
            &dev_key,
            json!({"type": "INDIVIDUAL", "full_name": "Jane"}),
        )
        .assert_error(403, "forbidden_scope");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("customers:write"));
}

#[test]
fn keys_made_at_once_by_one_member_are_all_made_and_all_known_to_the_member() {
    let plane = Plane::new();
    let developer = plane.member("acme", Role::Developer);
    let replies: Vec<helpers::Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let plane = &plane;
                let token = developer.token.clone();
                s.spawn(move || {
                    plane.post(
                        "/v1/org/api-keys",
                        &token,
                        json!({"label": format!("k{i}"), "scopes": ["customers:read"]}),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for reply in &replies {
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let member = plane
        .runtime
        .block_on(plane.app.members.get(&developer.member.id))
        .unwrap()
        .unwrap();
    assert_eq!(
        member.key_hashes.len(),
        10,
        "every key is the member's, so a demotion reaches each"
    );

    // A demotion racing with creations leaves no key beyond the new role.
    let admin = plane.member("acme", Role::Administrator);
    let officer = plane.member("acme", Role::ComplianceOfficer);
    let (created, demoted) = std::thread::scope(|s| {
        let creations: Vec<_> = (0..6)
            .map(|i| {
                let plane = &plane;
                let token = officer.token.clone();
                s.spawn(move || {
                    plane.post(
                        "/v1/org/api-keys",
                        &token,
                        json!({"label": format!("a{i}"), "scopes": ["aml:read", "customers:read"]}),
                    )
                })
            })
            .collect();
        let demotion = s.spawn(|| {
            plane.patch(
                &format!("/v1/org/members/{}", officer.member.id),
                &admin.token,
                json!({"role": "developer"}),
            )
        });
        let created: Vec<helpers::Reply> =
            creations.into_iter().map(|h| h.join().unwrap()).collect();
        (created, demotion.join().unwrap())
    });
    assert_eq!(demoted.status, 200, "{}", demoted.body);
    for reply in &created {
        assert!(matches!(reply.status, 201 | 403 | 409), "{}", reply.body);
    }
    let keys = plane
        .get(
            &format!("/v1/org/api-keys?created_by={}", officer.member.id),
            &admin.token,
        )
        .json();
    for key in keys["data"].as_array().unwrap() {
        assert!(
            !scopes_of(key).contains("aml:read"),
            "a key kept a scope its member lost: {key}"
        );
    }
}

#[test]
fn a_deactivation_racing_with_key_creations_leaves_no_key_working() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let leaver = plane.member("acme", Role::Developer);
    let created: Vec<helpers::Reply> = std::thread::scope(|s| {
        let creations: Vec<_> = (0..6)
            .map(|i| {
                let plane = &plane;
                let token = leaver.token.clone();
                s.spawn(move || {
                    plane.post(
                        "/v1/org/api-keys",
                        &token,
                        json!({"label": format!("d{i}"), "scopes": ["customers:read"]}),
                    )
                })
            })
            .collect();
        let deactivation = s.spawn(|| {
            plane.post(
                &format!("/v1/org/members/{}/deactivate", leaver.member.id),
                &admin.token,
                json!({}),
            )
        });
        assert_eq!(deactivation.join().unwrap().status, 200);
        creations.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for reply in created.iter().filter(|r| r.status == 201) {
        let key = reply.json()["key"].as_str().unwrap().to_owned();
        plane
            .get("/v1/customers", &key)
            .assert_error(401, "unauthorized");
    }
    for reply in &created {
        assert!(matches!(reply.status, 201 | 401 | 409), "{}", reply.body);
    }
}

#[test]
fn a_hand_over_racing_with_the_heirs_demotion_never_leaves_a_key_beyond_a_role() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let other_admin = plane.member("acme", Role::Administrator);
    for round in 0..3 {
        let leaver = plane.member("acme", Role::Developer);
        let heir = plane.member("acme", Role::Developer);
        let (key_id, key) = plane.create_key(&leaver, &[Scope::CustomersWrite]);
        let (handed, demoted) = std::thread::scope(|s| {
            let handed = s.spawn(|| {
                plane.post(
                    &format!("/v1/org/members/{}/deactivate", leaver.member.id),
                    &admin.token,
                    json!({"transfer_keys_to": heir.member.id}),
                )
            });
            let demoted = s.spawn(|| {
                plane.patch(
                    &format!("/v1/org/members/{}", heir.member.id),
                    &other_admin.token,
                    json!({"role": "analyst"}),
                )
            });
            (handed.join().unwrap(), demoted.join().unwrap())
        });
        assert_eq!(demoted.status, 200, "round {round}: {}", demoted.body);
        // Handed on before the demotion (then trimmed by it), or refused after it (400).
        assert!(
            matches!(handed.status, 200 | 400),
            "round {round}: {}",
            handed.body
        );
        let shown = plane
            .get(&format!("/v1/org/api-keys/{key_id}"), &admin.token)
            .json();
        if handed.status == 200 {
            // The heir answers for it, and is an analyst now: no write scope, no write.
            assert_eq!(shown["owned_by"]["id"], heir.member.id.as_str());
            assert!(
                !scopes_of(&shown).contains("customers:write"),
                "round {round}: an analyst answers for a write key: {shown}"
            );
            let write = plane.post(
                "/v1/customers",
                &key,
                json!({"type": "INDIVIDUAL", "full_name": "Race"}),
            );
            assert_ne!(write.status, 201, "round {round}: {}", write.body);
        } else {
            // Refused: the leaver is still a developer and the key still theirs.
            assert_eq!(shown["owned_by"]["id"], leaver.member.id.as_str());
            assert_eq!(plane.get("/v1/org/me", &leaver.token).status, 200);
        }
    }
}

#[test]
fn a_rolled_key_keeps_the_old_keys_expiry() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let created = plane.post(
        "/v1/org/api-keys",
        &admin.token,
        json!({"label": "contractor", "scopes": ["customers:read"], "expires_at": days_from_now(4 * 365)}),
    );
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let rolled = plane.post(
        &format!("/v1/org/api-keys/{id}/roll"),
        &admin.token,
        json!({}),
    );
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    assert_eq!(rolled.json()["expires_at"], created.json()["expires_at"]);
}

#[test]
fn a_roll_never_copies_settings_an_edit_just_tightened() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let (mut id, _) = plane.create_key(&admin, &[Scope::CustomersRead]);
    for round in 0..4 {
        let allowed = format!("203.0.113.{round}/32");
        let (rolled, edited) = std::thread::scope(|s| {
            let rolled = s.spawn(|| {
                plane.post(
                    &format!("/v1/org/api-keys/{id}/roll"),
                    &admin.token,
                    json!({"expire_old_in_seconds": 600}),
                )
            });
            let edited = s.spawn(|| {
                plane.patch(
                    &format!("/v1/org/api-keys/{id}"),
                    &admin.token,
                    json!({"ip_allowlist": [allowed]}),
                )
            });
            (rolled.join().unwrap(), edited.join().unwrap())
        });
        match (rolled.status, edited.status) {
            // The edit first: the roll read the key before it and is refused, or after it
            // and copies the narrower list.
            (409, 200) => continue,
            (201, 200) => assert_eq!(
                rolled.json()["ip_allowlist"],
                json!([allowed]),
                "round {round}"
            ),
            // The roll first: the rolled key can no longer be edited.
            (201, 409) => {}
            other => panic!("round {round}: {other:?} {} / {}", rolled.body, edited.body),
        }
        id = rolled.json()["id"].as_str().unwrap().to_owned();
    }
    let rolled = plane.post(
        &format!("/v1/org/api-keys/{id}/roll"),
        &admin.token,
        json!({}),
    );
    assert_eq!(rolled.status, 201, "{}", rolled.body);
    let old = plane
        .get(&format!("/v1/org/api-keys/{id}"), &admin.token)
        .json();
    assert_eq!(rolled.json()["ip_allowlist"], old["ip_allowlist"]);
    plane
        .patch(
            &format!("/v1/org/api-keys/{id}"),
            &admin.token,
            json!({"label": "x"}),
        )
        .assert_error(409, "conflict");
}

#[test]
fn member_writes_keep_the_idempotency_rules_of_the_integration_api() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let auth = format!("Bearer {}", admin.token);
    let with_key = |key: &'static str| {
        vec![
            ("authorization", auth.clone()),
            ("content-type", "application/json".to_owned()),
            ("idempotency-key", key.to_owned()),
        ]
    };
    let send = |method: &str, path: &str, key: &'static str, body: &str| {
        let headers = with_key(key);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        plane.call_with(method, path, &headers, Some(body))
    };
    // An invitation whose answer was lost: the retry gets the same 201, replayed.
    let body = r#"{"email": "retry@acme.test", "role": "analyst"}"#;
    let first = send("POST", "/v1/org/members", "invite-1", body);
    assert_eq!(first.status, 201, "{}", first.body);
    let again = send("POST", "/v1/org/members", "invite-1", body);
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), first.json());
    // The same key with another request: 422, nothing done.
    let other = send(
        "POST",
        "/v1/org/members",
        "invite-1",
        r#"{"email": "other@acme.test", "role": "analyst"}"#,
    );
    other.assert_error(422, "idempotency_key_reused");
    let listed = plane.get("/v1/org/members", &admin.token).json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    // Without the key, a repeated invitation is a 409.
    plane
        .post(
            "/v1/org/members",
            &admin.token,
            json!({"email": "retry@acme.test", "role": "analyst"}),
        )
        .assert_error(409, "conflict");
    // A role change under a key, then the key reused for another role: 422, role kept.
    let id = first.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/org/members/{id}");
    assert_eq!(
        send("PATCH", &path, "role-1", r#"{"role": "developer"}"#).status,
        200
    );
    send("PATCH", &path, "role-1", r#"{"role": "administrator"}"#)
        .assert_error(422, "idempotency_key_reused");
    assert_eq!(
        plane
            .get("/v1/org/members?role=developer", &admin.token)
            .json()["data"][0]["id"],
        id.as_str()
    );
    // An administrator's invitation (which counts the org's administrators) under a key.
    let admin_invite = send(
        "POST",
        "/v1/org/members",
        "invite-admin",
        r#"{"email": "second-admin@acme.test", "role": "administrator"}"#,
    );
    assert_eq!(admin_invite.status, 201, "{}", admin_invite.body);
    assert_eq!(admin_invite.json()["role"], "administrator");
    // A key's edit under a key: replayed as answered, applied once.
    let key_id = plane
        .post(
            "/v1/org/api-keys",
            &admin.token,
            json!({"label": "sync", "scopes": ["customers:read"]}),
        )
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_path = format!("/v1/org/api-keys/{key_id}");
    let edited = send("PATCH", &key_path, "edit-1", r#"{"label": "renamed"}"#);
    assert_eq!(edited.status, 200, "{}", edited.body);
    let replayed = send("PATCH", &key_path, "edit-1", r#"{"label": "renamed"}"#);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(replayed.json(), edited.json());
    send("PATCH", &key_path, "edit-1", r#"{"label": "other"}"#)
        .assert_error(422, "idempotency_key_reused");
    assert_eq!(
        plane.get(&key_path, &admin.token).json()["label"],
        "renamed"
    );
    // Another member's identical key is another request.
    let other_admin = plane.member("acme", Role::Administrator);
    let auth2 = format!("Bearer {}", other_admin.token);
    let theirs = plane.call_with(
        "PATCH",
        &path,
        &[
            ("authorization", &auth2),
            ("content-type", "application/json"),
            ("idempotency-key", "role-1"),
        ],
        Some(r#"{"role": "analyst"}"#),
    );
    assert_eq!(theirs.status, 200, "{}", theirs.body);
    assert!(theirs.header("idempotent-replayed").is_none());
    // A malformed key is a 400 on every member write.
    let bad = plane.call_with(
        "POST",
        &format!("{path}/deactivate"),
        &[("authorization", &auth), ("idempotency-key", "")],
        None,
    );
    assert_eq!(
        bad.assert_error(400, "invalid_request")["error"]["param"],
        "Idempotency-Key"
    );
}
