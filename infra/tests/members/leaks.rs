//! Leaked keys revoke themselves: GitHub secret scanning's reports, signed with a key pair
//! made here and listed as GitHub lists its keys, sent to the real endpoint through the
//! local gateway. Revocation is seen by the next request, the org is told by webhook
//! (verified by the Standard Webhooks libraries), and no refused report revokes anything.

use std::time::Duration;

use infra::secret_scanner::{report, KeyListServer, ScannerKey};
use localdb::Fault;
use serde_json::{json, Value};
use shared::keys::token::ApiKeyToken;
use shared::members::role::Role;
use shared::org::Mode;
use shared::secret_scanning::github_keys::{Rejected, ScanningKeys};
use shared::secret_scanning::token_hash;

use crate::helpers::{logs, Plane, Reply, Signed};
use crate::receiver::{verified_by, Receiver};

const PATH: &str = "/v1/secret-scanning/github";
type Headers = Vec<(String, String)>;
const FOUND_AT: &str = "https://github.com/acme/crm-sync/blob/main/.env";

/// `body` sent as GitHub sends it, signed by `key` (or with `headers` as given).
fn send_signed(plane: &Plane, key: &ScannerKey, body: &[u8]) -> Reply {
    let headers = key.headers(body);
    send_with(plane, &headers, body)
}

fn send_with(plane: &Plane, headers: &[(String, String)], body: &[u8]) -> Reply {
    plane.post_with(PATH, headers, body)
}

/// A key made through the member API: (id, plaintext).
fn make_key(plane: &Plane, who: &Signed, body: Value) -> (String, String) {
    let reply = plane.post("/v1/org/api-keys", &who.token, body);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let key = reply.json();
    (
        key["id"].as_str().unwrap().to_owned(),
        key["key"].as_str().unwrap().to_owned(),
    )
}

/// A key with `customers:read` alone, labelled `label`: (id, plaintext).
fn reader_key(plane: &Plane, who: &Signed, label: &str) -> (String, String) {
    make_key(
        plane,
        who,
        json!({"label": label, "scopes": ["customers:read"]}),
    )
}

fn key_record(plane: &Plane, who: &Signed, id: &str) -> Value {
    let reply = plane.get(&format!("/v1/org/api-keys/{id}"), &who.token);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

/// The key's request-log lines written by secret-scanning reports.
fn leak_lines(plane: &Plane, who: &Signed, id: &str) -> Vec<Value> {
    let reply = plane.get(&format!("/v1/org/api-keys/{id}/requests"), &who.token);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|line| line["route"] == "POST /v1/secret-scanning/github")
        .cloned()
        .collect()
}

fn works(plane: &Plane, key: &str) -> u16 {
    plane.get("/v1/me", key).status
}

#[test]
fn a_signed_report_revokes_each_of_our_keys_at_once_and_answers_githubs_feedback() {
    let plane = Plane::new();
    let (_webhooks, workers) = plane.webhooks(|_| {});
    let admin = plane.member("acme", Role::Administrator);
    let stranger = plane.member("globex", Role::Administrator);
    let receiver = Receiver::start(&plane.runtime);

    let (live_id, live) = make_key(
        &plane,
        &admin,
        json!({"label": "CRM sync", "scopes": ["customers:read", "customers:write"],
               "ip_allowlist": ["127.0.0.0/8"], "rate_limit": {"requests_per_second": 20}}),
    );
    let (test_id, test) = make_key(
        &plane,
        &admin,
        json!({"label": "Rehearsal", "scopes": ["customers:read"], "mode": "test"}),
    );
    let (dead_id, dead) = reader_key(&plane, &admin, "Old");
    let revoked = plane.post(
        &format!("/v1/org/api-keys/{dead_id}/revoke"),
        &admin.token,
        json!({}),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let (other_id, other) = reader_key(&plane, &stranger, "Globex");
    let (kept_id, kept) = reader_key(&plane, &admin, "Kept");
    let reply = plane.post(
        "/v1/org/webhook-endpoints",
        &admin.token,
        json!({"url": receiver.url("/hooks"), "events": ["api_key.revoked"]}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let secret = reply.json()["secret"].as_str().unwrap().to_owned();
    for key in [&live, &test, &other, &kept] {
        assert_eq!(works(&plane, key), 200);
    }

    // Our format with a good checksum but no such key; a made-up one; someone else's; the
    // live key twice, the second time from another place.
    let unknown = ApiKeyToken::generate(Mode::Live).unwrap();
    let unknown = unknown.expose_secret();
    let mut bad_checksum = live.clone();
    bad_checksum.replace_range(10..11, if &live[10..11] == "A" { "B" } else { "A" });
    let tokens: Vec<(&str, Option<&str>)> = vec![
        (&live, Some(FOUND_AT)),
        (&test, None),
        (unknown, Some(FOUND_AT)),
        (&bad_checksum, None),
        (&other, Some("https://gist.github.com/someone/1")),
        (&dead, Some(FOUND_AT)),
        ("ghp_notoursatall0123456789", None),
        (&live, Some("https://github.com/acme/other/blob/main/x")),
    ];
    let body = report(&tokens);
    let answer = send_signed(&plane, &plane.scanner_key, &body);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let expected: Vec<Value> = tokens
        .iter()
        .zip([true, true, false, false, true, true, false, true])
        .map(|((token, _), ours)| {
            json!({"token_hash": token_hash(token), "token_type": "instant_compliance_api_key",
                   "label": if ours { "true_positive" } else { "false_positive" }})
        })
        .collect();
    assert_eq!(answer.json(), Value::Array(expected.clone()));

    // The next request with each reported key is refused; the one not reported still works.
    for key in [&live, &test, &other, &dead] {
        plane.get("/v1/me", key).assert_error(401, "unauthorized");
    }
    assert_eq!(works(&plane, &kept), 200);

    // The record says why, where and when; a key revoked before keeps its revocation and
    // gets the leak noted.
    let record = key_record(&plane, &admin, &live_id);
    assert_eq!(record["status"], "revoked");
    assert_eq!(record["revocation_reason"], "leaked");
    assert_eq!(
        record["revoked_by"],
        json!({"type": "secret_scanning", "source": "github", "url": FOUND_AT})
    );
    assert_eq!(record["leak"]["source"], "github");
    assert_eq!(record["leak"]["url"], FOUND_AT, "the first place reported");
    assert_eq!(record["leak"]["reported_at"], record["revoked_at"]);
    assert_eq!(record["leak"]["dismissed_at"], Value::Null);
    assert_eq!(
        record["ip_allowlist"],
        json!(["127.0.0.0/8"]),
        "settings kept for a replacement"
    );
    let test_record = key_record(&plane, &admin, &test_id);
    assert_eq!(test_record["revocation_reason"], "leaked");
    assert_eq!(test_record["leak"]["url"], Value::Null);
    let dead_record = key_record(&plane, &admin, &dead_id);
    assert_eq!(dead_record["revocation_reason"], "requested");
    assert_eq!(dead_record["revoked_by"], json!(admin.member.id));
    assert_eq!(dead_record["leak"]["url"], FOUND_AT);
    assert_eq!(
        key_record(&plane, &stranger, &other_id)["revocation_reason"],
        "leaked"
    );
    assert_eq!(key_record(&plane, &admin, &kept_id)["leak"], Value::Null);

    // The page's banners: the org's reported keys, not another org's.
    let listed = plane
        .get("/v1/org/api-keys?leak=undismissed", &admin.token)
        .json();
    let mut ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![live_id.as_str(), test_id.as_str(), dead_id.as_str()];
    want.sort();
    assert_eq!(ids, want);
    plane
        .get("/v1/org/api-keys?leak=yes", &admin.token)
        .assert_error(400, "invalid_request");

    // Each key's request log has one line for the report, from GitHub's address.
    for (who, id) in [
        (&admin, &live_id),
        (&admin, &test_id),
        (&admin, &dead_id),
        (&stranger, &other_id),
    ] {
        let lines = leak_lines(&plane, who, id);
        assert_eq!(lines.len(), 1, "{id}: {lines:?}");
        assert_eq!(lines[0]["status"], 200);
        assert_eq!(lines[0]["user_agent"], "GitHub-Secret-Scanning-Local/1.0");
    }
    assert!(leak_lines(&plane, &admin, &kept_id).is_empty());

    // The org is told: one api_key.revoked for the live key, with the reason and the URL,
    // signed as Standard Webhooks verify it.
    let got = receiver.wait_until("the leaked key's event", |r| {
        r.iter()
            .any(|d| d.json()["data"]["object"]["id"] == json!(live_id))
    });
    let payloads = verified_by("python", &secret, &got).expect("python verifies");
    assert_eq!(
        verified_by("node", &secret, &got).expect("node verifies"),
        payloads
    );
    let leaked: Vec<&Value> = payloads
        .iter()
        .filter(|p| p["data"]["object"]["id"] == json!(live_id))
        .collect();
    assert_eq!(leaked.len(), 1);
    assert_eq!(leaked[0]["type"], "api_key.revoked");
    assert_eq!(leaked[0]["data"]["object"]["revocation_reason"], "leaked");
    assert_eq!(leaked[0]["data"]["object"]["revoked_by"]["url"], FOUND_AT);
    assert!(
        payloads
            .iter()
            .all(|p| p["data"]["object"]["id"] != json!(test_id)),
        "a test key's event goes to test-mode endpoints only"
    );

    // The same report again: the same answer, nothing written, no second event.
    let first = key_record(&plane, &admin, &live_id);
    let again = send_signed(&plane, &plane.scanner_key, &body);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json(), Value::Array(expected));
    assert_eq!(key_record(&plane, &admin, &live_id), first);
    assert_eq!(leak_lines(&plane, &admin, &live_id).len(), 1);
    plane.settle(&workers, Duration::ZERO);
    let events = receiver
        .received()
        .iter()
        .filter(|d| d.json()["data"]["object"]["id"] == json!(live_id))
        .count();
    assert_eq!(events, 1, "a repeated report sends nothing");

    // No token in any table or log line.
    for token in [
        &live,
        &test,
        &other,
        &dead,
        &bad_checksum,
        &unknown.to_owned(),
    ] {
        plane.assert_stored_nowhere(token, "a reported token");
        assert!(
            !logs().text().contains(token.as_str()),
            "a reported token is logged"
        );
    }
    assert!(!logs().text().contains("ghp_notoursatall"));
}

#[test]
fn reports_that_are_not_githubs_revoke_nothing() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let (id, key) = reader_key(&plane, &admin, "CRM");
    let body = report(&[(&key, Some(FOUND_AT))]);
    let good = plane.scanner_key.headers(&body);
    let without =
        |name: &str| -> Headers { good.iter().filter(|(n, _)| n != name).cloned().collect() };
    let with = |name: &str, value: &str| -> Headers {
        let mut h = without(name);
        h.push((name.to_owned(), value.to_owned()));
        h
    };
    let impostor = ScannerKey::generate().unwrap();
    let mut tampered = body.clone();
    let at = tampered.len() - 3;
    tampered[at] = b' ';

    // Not GitHub's signature: 401, whatever the body.
    let unsigned: Vec<(&str, Headers, &[u8])> = vec![
        ("unsigned", without("github-public-key-signature"), &body),
        (
            "no identifier",
            without("github-public-key-identifier"),
            &body,
        ),
        (
            "unknown identifier",
            with("github-public-key-identifier", impostor.identifier()),
            &body,
        ),
        (
            "another key's signature",
            with("github-public-key-signature", &impostor.sign(&body)),
            &body,
        ),
        ("tampered body", good.clone(), &tampered),
        (
            "signature not base64",
            with("github-public-key-signature", "%%%"),
            &body,
        ),
        (
            "signature not DER",
            with("github-public-key-signature", "AAAA"),
            &body,
        ),
    ];
    for (what, headers, payload) in unsigned {
        let reply = send_with(&plane, &headers, payload);
        let error = reply.assert_error(401, "unauthorized");
        assert!(reply.header("www-authenticate").is_none(), "{what}");
        assert!(
            !error["error"]["message"].as_str().unwrap().contains(&key),
            "{what}"
        );
        assert_eq!(works(&plane, &key), 200, "{what} revoked the key");
    }
    // Signed, but not sent as JSON.
    send_with(&plane, &with("content-type", "text/plain"), &body)
        .assert_error(415, "unsupported_media_type");
    assert_eq!(works(&plane, &key), 200);

    // Signed, but not a report.
    for (what, payload, param) in [
        ("an object", json!({"token": key}).to_string(), None),
        (
            "an entry without its token, beside the key",
            json!([{"type": "t"}, {"token": key, "type": "t"}]).to_string(),
            Some("[0].token"),
        ),
        ("a number", json!([7]).to_string(), Some("[0].token")),
        ("truncated", "[{\"token\":".to_owned(), None),
        (
            "1,001 tokens",
            Value::Array(vec![json!({"token": "x", "type": "t"}); 1001]).to_string(),
            None,
        ),
    ] {
        let reply = send_signed(&plane, &plane.scanner_key, payload.as_bytes());
        let error = reply.assert_error(400, "invalid_request");
        assert_eq!(error["error"]["param"].as_str(), param, "{what}");
        assert!(!reply.body.contains(&key), "{what}: the token is echoed");
        assert_eq!(works(&plane, &key), 200, "{what} revoked the key");
    }
    // Over 1 MB, signed or not.
    let huge = format!(
        "[{}]",
        vec![json!({"token": "x".repeat(1000), "type": "t"}).to_string(); 1100].join(",")
    );
    send_signed(&plane, &plane.scanner_key, huge.as_bytes()).assert_error(413, "payload_too_large");
    // No query parameters are taken.
    plane
        .post_with(
            &format!("{PATH}?dry_run=1"),
            &plane.scanner_key.headers(&body),
            &body,
        )
        .assert_error(400, "invalid_request");

    assert_eq!(works(&plane, &key), 200);
    assert!(leak_lines(&plane, &admin, &id).is_empty());
    assert_eq!(key_record(&plane, &admin, &id)["leak"], Value::Null);
    assert!(logs().text().contains("secret-scanning report refused"));
    assert!(!logs().text().contains(&key), "a token is logged");

    // GitHub's list unreachable and none held: 503 (GitHub retries), nothing revoked.
    plane.scanner.set_down(true);
    let fresh = plane_with_fresh_cache(&plane);
    let reply = fresh.send(&body, &good);
    assert_eq!(reply.0, 503, "{}", reply.1);
    plane.scanner.set_down(false);
    assert_eq!(works(&plane, &key), 200);
}

/// The plane's app with a key cache of its own (as a new instance has).
struct FreshInstance {
    app: std::sync::Arc<shared::App>,
    runtime_handle: tokio::runtime::Handle,
}

fn plane_with_fresh_cache(plane: &Plane) -> FreshInstance {
    let mut app = (*plane.app).clone();
    app.scanning_keys = ScanningKeys::at(&plane.scanner.url()).unwrap();
    FreshInstance {
        app: std::sync::Arc::new(app),
        runtime_handle: plane.runtime.handle().clone(),
    }
}

impl FreshInstance {
    /// `body` straight to the function (as Lambda invokes it): (status, body).
    fn send(&self, body: &[u8], headers: &[(String, String)]) -> (u16, String) {
        let mut request = lambda_http::http::Request::builder()
            .method("POST")
            .uri(format!("https://api.example{PATH}"));
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(lambda_http::Body::Binary(body.to_vec()))
            .unwrap();
        let response = self.runtime_handle.block_on(shared::handle(
            self.app.clone(),
            shared::Endpoint::Route(shared::edge::routes::Route::GithubSecretScanning),
            request,
        ));
        let text = match response.body() {
            lambda_http::Body::Text(t) => t.clone(),
            lambda_http::Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        (response.status().as_u16(), text)
    }
}

#[test]
fn githubs_rotated_keys_verify_and_a_withdrawn_one_stops() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let (_, first) = reader_key(&plane, &admin, "a");
    let (_, second) = reader_key(&plane, &admin, "b");
    let (_, third) = reader_key(&plane, &admin, "c");

    // GitHub lists a new current key beside the old one: both verify.
    let old = plane.scanner_key.clone();
    let new = ScannerKey::generate().unwrap();
    plane.scanner.rotate_to(new.clone());
    let reply = send_signed(&plane, &new, &report(&[(&first, None)]));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()[0]["label"], "true_positive");
    let reply = send_signed(&plane, &old, &report(&[(&second, None)]));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(works(&plane, &first), 401);
    assert_eq!(works(&plane, &second), 401);

    // The old key withdrawn from the list: refused once the list is fetched again.
    plane.scanner.replace(vec![new.clone()]);
    send_signed(&plane, &old, &report(&[(&third, None)])).assert_error(401, "unauthorized");
    assert_eq!(works(&plane, &third), 200);
}

#[test]
fn the_key_list_is_fetched_at_most_once_a_minute_for_unknown_identifiers() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let key = ScannerKey::generate().unwrap();
    let server = runtime
        .block_on(KeyListServer::start(vec![key.clone()]))
        .unwrap();
    let keys = ScanningKeys::at(&server.url()).unwrap();
    let body = report(&[("ic_live_x", None)]);
    runtime.block_on(async {
        assert_eq!(
            keys.verify(key.identifier(), &key.sign(&body), &body).await,
            Ok(())
        );
        // A flood of made-up identifiers, at once and one after another.
        let mut tasks = Vec::new();
        for i in 0..40 {
            let keys = keys.clone();
            let body = body.clone();
            let signature = key.sign(&body);
            tasks.push(tokio::spawn(async move {
                // Shaped like GitHub's (hex), so each could have been a rotation.
                keys.verify(&format!("{i:064x}"), &signature, &body).await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), Err(Rejected::UnknownIdentifier));
        }
        // Neither a malformed signature nor an identifier GitHub would never send fetches.
        assert_eq!(
            keys.verify(&"f".repeat(64), "%%%", &body).await,
            Err(Rejected::MalformedSignature)
        );
        assert_eq!(
            keys.verify("made-up", &key.sign(&body), &body).await,
            Err(Rejected::UnknownIdentifier)
        );
        // A rotation within the minute is seen only after it; the listed key still verifies.
        let rotated = ScannerKey::generate().unwrap();
        server.rotate_to(rotated.clone());
        assert_eq!(
            keys.verify(rotated.identifier(), &rotated.sign(&body), &body)
                .await,
            Err(Rejected::UnknownIdentifier)
        );
        assert_eq!(
            keys.verify(key.identifier(), &key.sign(&body), &body).await,
            Ok(())
        );
    });
    assert_eq!(server.fetches(), 1, "one fetch, at the first report");
    assert_eq!(runtime.block_on(keys.fetches()), 1);

    // Concurrent first reports on a new instance share one fetch.
    let fresh = ScanningKeys::at(&server.url()).unwrap();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let fresh = fresh.clone();
            let body = body.clone();
            let signature = key.sign(&body);
            let id = key.identifier().to_owned();
            tasks.push(tokio::spawn(async move {
                fresh.verify(&id, &signature, &body).await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(()));
        }
    });
    assert_eq!(server.fetches(), 2);
}

#[test]
fn concurrent_reports_of_one_token_revoke_it_once() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let (id, key) = reader_key(&plane, &admin, "CRM");
    let urls: Vec<String> = (0..8)
        .map(|i| format!("https://github.com/acme/r{i}/blob/main/.env"))
        .collect();
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = urls
            .iter()
            .map(|url| {
                let plane = &plane;
                let key = &key;
                scope.spawn(move || {
                    let body = report(&[(key.as_str(), Some(url.as_str()))]);
                    send_signed(plane, &plane.scanner_key, &body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for reply in &replies {
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json()[0]["label"], "true_positive");
    }
    assert_eq!(works(&plane, &key), 401);
    let record = key_record(&plane, &admin, &id);
    assert!(urls.contains(&record["leak"]["url"].as_str().unwrap().to_owned()));
    assert_eq!(record["revoked_by"]["url"], record["leak"]["url"]);
    assert_eq!(
        leak_lines(&plane, &admin, &id).len(),
        1,
        "one line, from the report that won"
    );
}

#[test]
fn a_storage_fault_during_revocation_leaves_the_key_as_it_was_and_the_retry_revokes_it() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let (id, key) = reader_key(&plane, &admin, "CRM");
    let body = report(&[(&key, Some(FOUND_AT))]);
    for fault in [Fault::TransactionThrottled, Fault::Throttle] {
        let operation = if fault == Fault::Throttle {
            "BatchGetItem"
        } else {
            "TransactWriteItems"
        };
        plane.faults.inject(operation, fault);
        let reply = send_signed(&plane, &plane.scanner_key, &body);
        plane.faults.heal();
        reply.assert_error(503, "service_unavailable");
        assert!(reply.header("retry-after").is_some());
        assert_eq!(works(&plane, &key), 200, "{operation}: nothing revoked");
        assert!(
            leak_lines(&plane, &admin, &id).is_empty(),
            "{operation}: no line without the revocation"
        );
    }
    // GitHub retries: the report goes through whole.
    let reply = send_signed(&plane, &plane.scanner_key, &body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(works(&plane, &key), 401);
    assert_eq!(leak_lines(&plane, &admin, &id).len(), 1);
}

#[test]
fn an_administrator_dismisses_the_notice_once_for_the_org() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let officer = plane.member("acme", Role::ComplianceOfficer);
    let analyst = plane.member("acme", Role::Analyst);
    let stranger = plane.member("globex", Role::Administrator);
    let (id, key) = reader_key(&plane, &admin, "CRM");
    let (clean_id, _) = reader_key(&plane, &admin, "Clean");
    let path = format!("/v1/org/api-keys/{id}/dismiss-leak");

    // Nothing to dismiss before a report.
    plane
        .post(&path, &admin.token, json!({}))
        .assert_error(409, "conflict");
    let reply = send_signed(
        &plane,
        &plane.scanner_key,
        &report(&[(&key, Some(FOUND_AT))]),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);

    plane
        .post(&path, &analyst.token, json!({}))
        .assert_error(403, "forbidden_permission");
    plane
        .post(&path, &stranger.token, json!({}))
        .assert_error(404, "not_found");
    plane
        .post(
            &format!("/v1/org/api-keys/{clean_id}/dismiss-leak"),
            &admin.token,
            json!({}),
        )
        .assert_error(409, "conflict");
    plane
        .post(&path, &admin.token, json!({"why": 1}))
        .assert_error(400, "invalid_request");

    let dismissed = plane.post(&path, &officer.token, json!({}));
    assert_eq!(dismissed.status, 200, "{}", dismissed.body);
    let dismissed = dismissed.json();
    assert_eq!(dismissed["leak"]["dismissed_by"], json!(officer.member.id));
    assert_eq!(dismissed["leak"]["url"], FOUND_AT, "the leak itself stays");
    assert_eq!(dismissed["revocation_reason"], "leaked");
    // Once for everyone: the banner list is empty; a second dismissal keeps the first.
    let listed = plane
        .get("/v1/org/api-keys?leak=undismissed", &admin.token)
        .json();
    assert!(listed["data"].as_array().unwrap().is_empty());
    let reported = plane
        .get("/v1/org/api-keys?leak=reported", &admin.token)
        .json();
    assert_eq!(reported["data"][0]["id"], json!(id));
    let again = plane.post(&path, &admin.token, json!({}));
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["leak"], dismissed["leak"]);
}

#[test]
fn an_odd_entry_costs_only_itself_and_the_batchs_real_leaks_are_revoked() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let (_, key) = reader_key(&plane, &admin, "CRM");
    // A type that is not a string, a url that is not a URL, an unknown source: GitHub's
    // format may grow, and the key in it is still revoked.
    let body = json!([
        {"token": "ghp_other", "type": ["?"], "url": 5, "source": {"new": true}},
        {"token": key, "url": "javascript:alert(1)"},
    ])
    .to_string();
    let reply = send_signed(&plane, &plane.scanner_key, body.as_bytes());
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json(),
        json!([
            {"token_hash": token_hash("ghp_other"), "token_type": "", "label": "false_positive"},
            {"token_hash": token_hash(&key), "token_type": "", "label": "true_positive"},
        ])
    );
    assert_eq!(works(&plane, &key), 401);
    let listed = plane
        .get("/v1/org/api-keys?leak=reported", &admin.token)
        .json();
    assert_eq!(
        listed["data"][0]["leak"]["url"],
        Value::Null,
        "only http(s) URLs are kept"
    );
}
