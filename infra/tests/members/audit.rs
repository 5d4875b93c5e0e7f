//! The org's audit trail: one event per change, in the change's transaction, chained by hash;
//! read by administrators and compliance officers with filters, a cursor and CSV; verified.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use infra::secret_scanner::report;
use localdb::Fault;
use serde_json::{json, Value};
use shared::audit::event::hash_after;
use shared::members::role::Role;
use shared::org::OrgId;

use crate::helpers::{Plane, Reply, Signed};

const EVENTS: &str = "/v1/org/audit-events";

/// Every event of `org`, newest first, through the API as `who` (walking the cursor).
fn events(plane: &Plane, who: &Signed, query: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("{EVENTS}?limit=100{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let reply = plane.get(&path, &who.token);
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        let page = reply.json();
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
    }
}

fn verdict(plane: &Plane, org: &str) -> shared::audit::log::Verdict {
    plane
        .runtime
        .block_on(
            plane
                .app
                .audit
                .verify(&OrgId::parse(org).unwrap(), shared::time::now()),
        )
        .unwrap()
}

fn key_reply(reply: &Reply) -> (String, String) {
    assert_eq!(reply.status, 201, "{}", reply.body);
    let key = reply.json();
    (
        key["id"].as_str().unwrap().to_owned(),
        key["key"].as_str().unwrap_or_default().to_owned(),
    )
}

fn create(plane: &Plane, who: &Signed, label: &str) -> (String, String) {
    key_reply(&plane.post(
        "/v1/org/api-keys",
        &who.token,
        json!({"label": label, "scopes": ["customers:read"]}),
    ))
}

/// The newest event, and that there is exactly one more than `before`.
fn one_more(plane: &Plane, who: &Signed, before: usize) -> Value {
    let now = events(plane, who, "");
    assert_eq!(now.len(), before + 1, "exactly one event: {now:#?}");
    now[0].clone()
}

#[test]
fn every_key_action_writes_exactly_one_event_with_who_what_and_where() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let analyst = plane.member("acme", Role::Analyst);
    let before = events(&plane, &admin, "").len();

    // Create: the request's id, source and user agent; the key only as its mask.
    let reply = plane.call_with(
        "POST",
        "/v1/org/api-keys",
        &[
            ("authorization", &format!("Bearer {}", admin.token)),
            ("content-type", "application/json"),
            ("user-agent", "crm-sync/2.1"),
        ],
        Some(r#"{"label": "CRM", "scopes": ["customers:read"], "rate_limit": {"requests_per_second": 20}}"#),
    );
    let request_id = reply.header("request-id").unwrap().to_owned();
    let (id, plaintext) = key_reply(&reply);
    let created = one_more(&plane, &admin, before);
    assert_eq!(created["object"], "audit_event");
    assert_eq!(created["action"], "api_key.created");
    assert_eq!(
        created["actor"],
        json!({"type": "member", "id": admin.member.id, "email": admin.email})
    );
    assert_eq!(created["target"], json!({"type": "api_key", "id": id}));
    assert_eq!(created["before"], json!({}));
    assert_eq!(created["after"]["label"], "CRM");
    assert_eq!(created["after"]["rate_limit"], 20);
    assert_eq!(created["after"]["scopes"], json!(["customers:read"]));
    let mask = created["after"]["key"].as_str().unwrap();
    assert!(mask.ends_with(&plaintext[plaintext.len() - 4..]), "{mask}");
    assert!(!created.to_string().contains(&plaintext), "never the key");
    assert_eq!(created["request_id"], request_id.as_str());
    assert_eq!(created["source_ip"], "127.0.0.1");
    assert_eq!(created["user_agent"], "crm-sync/2.1");
    assert_eq!(created["hash"].as_str().unwrap().len(), 64);
    plane.assert_stored_nowhere(&plaintext, "the created key");

    // Edit: only the fields that changed; an edit to the same values is no event.
    let path = format!("/v1/org/api-keys/{id}");
    let edited = plane.patch(
        &path,
        &admin.token,
        json!({"label": "CRM sync", "rate_limit": {"requests_per_second": 20}}),
    );
    assert_eq!(edited.status, 200, "{}", edited.body);
    let updated = one_more(&plane, &admin, before + 1);
    assert_eq!(updated["action"], "api_key.updated");
    assert_eq!(updated["before"], json!({"label": "CRM"}));
    assert_eq!(updated["after"], json!({"label": "CRM sync"}));
    assert_eq!(updated["prev_hash"], created["hash"]);
    let same = plane.patch(&path, &admin.token, json!({"label": "CRM sync"}));
    assert_eq!(same.status, 200, "{}", same.body);
    assert_eq!(
        events(&plane, &admin, "").len(),
        before + 2,
        "nothing changed"
    );
    let allowlist = plane.patch(
        &path,
        &admin.token,
        json!({"ip_allowlist": ["203.0.113.0/24"]}),
    );
    assert_eq!(allowlist.status, 200, "{}", allowlist.body);
    let updated = one_more(&plane, &admin, before + 2);
    assert_eq!(updated["before"], json!({"ip_allowlist": null}));
    assert_eq!(
        updated["after"],
        json!({"ip_allowlist": ["203.0.113.0/24"]})
    );

    // Roll: two events of one transaction — the old key rolled, naming its successor, and
    // the successor created, naming where it came from.
    let (new_id, _) = key_reply(&plane.post(
        &format!("{path}/roll"),
        &admin.token,
        json!({"expire_old_in_seconds": 3600}),
    ));
    let now = events(&plane, &admin, "");
    assert_eq!(now.len(), before + 5, "{now:#?}");
    let (successor, rolled) = (&now[0], &now[1]);
    assert_eq!(successor["action"], "api_key.created");
    assert_eq!(successor["target"]["id"], new_id.as_str());
    assert_eq!(successor["after"]["rolled_from"], id.as_str());
    assert_eq!(successor["request_id"], rolled["request_id"]);
    assert_eq!(rolled["action"], "api_key.rolled");
    assert_eq!(rolled["target"]["id"], id.as_str());
    assert_eq!(rolled["after"]["rolled_to"], new_id.as_str());
    assert!(rolled["after"]["expires_at"].is_string());

    // Revoke: one event; revoking again changes nothing and writes nothing.
    let revoke = format!("/v1/org/api-keys/{new_id}/revoke");
    assert_eq!(plane.post(&revoke, &admin.token, json!({})).status, 200);
    let revoked = one_more(&plane, &admin, before + 5);
    assert_eq!(revoked["action"], "api_key.revoked");
    assert_eq!(revoked["after"]["revocation_reason"], "requested");
    assert_eq!(plane.post(&revoke, &admin.token, json!({})).status, 200);
    assert_eq!(events(&plane, &admin, "").len(), before + 6);

    // Refusals write nothing: a 409, a 400, a 403.
    plane
        .patch(
            &format!("/v1/org/api-keys/{new_id}"),
            &admin.token,
            json!({"label": "x"}),
        )
        .assert_error(409, "conflict");
    plane
        .post(
            "/v1/org/api-keys",
            &admin.token,
            json!({"label": "", "scopes": []}),
        )
        .assert_error(400, "invalid_request");
    plane
        .post(
            "/v1/org/api-keys",
            &analyst.token,
            json!({"label": "a", "scopes": ["customers:read"]}),
        )
        .assert_error(403, "forbidden_permission");
    assert_eq!(events(&plane, &admin, "").len(), before + 6);

    // A leak reported by GitHub: the platform revokes, with its reason; the dismissal is
    // the administrator's.
    let (leaked_id, leaked) = create(&plane, &admin, "Zapier");
    let found_at = "https://github.com/acme/zap/blob/main/.env";
    let body = report(&[(&leaked, Some(found_at))]);
    let reply = plane.post_with(
        "/v1/secret-scanning/github",
        &plane.scanner_key.headers(&body),
        &body,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let by_platform = one_more(&plane, &admin, before + 7);
    assert_eq!(by_platform["action"], "api_key.revoked");
    assert_eq!(by_platform["actor"]["type"], "platform");
    assert_eq!(by_platform["actor"]["id"], "secret_scanning");
    assert!(by_platform["actor"]["reason"]
        .as_str()
        .unwrap()
        .contains(found_at));
    assert_eq!(by_platform["after"]["revocation_reason"], "leaked");
    assert_eq!(by_platform["after"]["leak_url"], found_at);
    // GitHub repeats itself: nothing more.
    let again = plane.post_with(
        "/v1/secret-scanning/github",
        &plane.scanner_key.headers(&body),
        &body,
    );
    assert_eq!(again.status, 200);
    assert_eq!(events(&plane, &admin, "").len(), before + 8);
    let dismiss = format!("/v1/org/api-keys/{leaked_id}/dismiss-leak");
    assert_eq!(plane.post(&dismiss, &admin.token, json!({})).status, 200);
    let dismissed = one_more(&plane, &admin, before + 8);
    assert_eq!(dismissed["action"], "api_key.leak_dismissed");
    assert!(dismissed["after"]["leak_dismissed_at"].is_string());
    assert_eq!(plane.post(&dismiss, &admin.token, json!({})).status, 200);
    assert_eq!(events(&plane, &admin, "").len(), before + 9);

    // A leak of a key already revoked is recorded, not revoked again.
    let (_, dead) = create(&plane, &admin, "Old");
    let dead_id = events(&plane, &admin, "&action=api_key.created")[0]["target"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        plane
            .post(
                &format!("/v1/org/api-keys/{dead_id}/revoke"),
                &admin.token,
                json!({})
            )
            .status,
        200
    );
    let body = report(&[(&dead, None)]);
    let reply = plane.post_with(
        "/v1/secret-scanning/github",
        &plane.scanner_key.headers(&body),
        &body,
    );
    assert_eq!(reply.status, 200);
    let noted = one_more(&plane, &admin, before + 11);
    assert_eq!(noted["action"], "api_key.leak_recorded");

    let verdict = verdict(&plane, "acme");
    assert_eq!(verdict.first_break, None, "{verdict:?}");
    assert_eq!(verdict.events, before + 12);
    assert_eq!(verdict.head_seq, (before + 12) as u64);
}

#[test]
fn concurrent_changes_keep_one_unbroken_chain() {
    let plane = Plane::new();
    let members: Vec<Signed> = (0..4)
        .map(|_| plane.member("acme", Role::Developer))
        .collect();
    let admin = plane.member("acme", Role::Administrator);
    let per_member = 6;
    let made: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = members
            .iter()
            .map(|member| {
                let plane = &plane;
                scope.spawn(move || {
                    (0..per_member)
                        .map(|i| create(plane, member, &format!("k{i}")).0)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(made.len(), 4 * per_member);
    // And revoke them all at once, from as many threads.
    std::thread::scope(|scope| {
        for chunk in made.chunks(per_member) {
            let plane = &plane;
            let admin = &admin;
            scope.spawn(move || {
                for id in chunk {
                    let reply = plane.post(
                        &format!("/v1/org/api-keys/{id}/revoke"),
                        &admin.token,
                        json!({}),
                    );
                    assert_eq!(reply.status, 200, "{}", reply.body);
                }
            });
        }
    });
    let all = events(&plane, &admin, "");
    let keyed = all
        .iter()
        .filter(|e| e["target"]["type"] == "api_key")
        .count();
    assert_eq!(keyed, 2 * made.len(), "one event per change");
    assert_eq!(
        all.len(),
        keyed + members.len() + 1,
        "and one per member added"
    );
    // Newest first, seq counting down without a gap, each naming its predecessor.
    for pair in all.windows(2) {
        assert_eq!(
            pair[0]["seq"].as_u64().unwrap(),
            pair[1]["seq"].as_u64().unwrap() + 1
        );
        assert_eq!(pair[0]["prev_hash"], pair[1]["hash"]);
        assert!(pair[0]["at"].as_str().unwrap() >= pair[1]["at"].as_str().unwrap());
    }
    for id in &made {
        let mine = events(&plane, &admin, &format!("&target={id}"));
        let actions: Vec<&str> = mine.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["api_key.revoked", "api_key.created"], "{id}");
    }
    let verdict = verdict(&plane, "acme");
    assert_eq!(verdict.first_break, None, "{verdict:?}");
    assert_eq!(verdict.events, all.len());
}

#[test]
fn a_fault_in_the_transaction_leaves_neither_the_change_nor_its_event() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let (id, key) = create(&plane, &admin, "CRM");
    let before = events(&plane, &admin, "").len();
    let keys_before = plane.get("/v1/org/api-keys", &admin.token).json()["data"]
        .as_array()
        .unwrap()
        .len();

    for fault in [Fault::TransactionThrottled, Fault::Throttle, Fault::Stall] {
        plane.faults.inject("TransactWriteItems", fault);
        let made = plane.post(
            "/v1/org/api-keys",
            &admin.token,
            json!({"label": "new", "scopes": ["customers:read"]}),
        );
        let revoked = plane.post(
            &format!("/v1/org/api-keys/{id}/revoke"),
            &admin.token,
            json!({}),
        );
        let edited = plane.patch(
            &format!("/v1/org/api-keys/{id}"),
            &admin.token,
            json!({"label": "x"}),
        );
        plane.faults.heal();
        for reply in [&made, &revoked, &edited] {
            reply.assert_error(503, "service_unavailable");
        }
        assert_eq!(
            events(&plane, &admin, "").len(),
            before,
            "{fault:?}: no event"
        );
        let keys = plane.get("/v1/org/api-keys", &admin.token).json();
        assert_eq!(
            keys["data"].as_array().unwrap().len(),
            keys_before,
            "{fault:?}: no key"
        );
        let mine = plane
            .get(&format!("/v1/org/api-keys/{id}"), &admin.token)
            .json();
        assert_eq!(mine["status"], "active", "{fault:?}: not revoked");
        assert_eq!(mine["label"], "CRM", "{fault:?}: not edited");
        assert_eq!(plane.get("/v1/me", &key).status, 200);
    }
    // The head read failing is the same: nothing written.
    plane.faults.inject("GetItem", Fault::Throttle);
    let revoked = plane.post(
        &format!("/v1/org/api-keys/{id}/revoke"),
        &admin.token,
        json!({}),
    );
    plane.faults.heal();
    assert_eq!(revoked.status, 503, "{}", revoked.body);
    assert_eq!(events(&plane, &admin, "").len(), before);

    // Healed, the retry goes through whole.
    let revoked = plane.post(
        &format!("/v1/org/api-keys/{id}/revoke"),
        &admin.token,
        json!({}),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(plane.get("/v1/me", &key).status, 401);
    assert_eq!(events(&plane, &admin, "").len(), before + 1);
    assert_eq!(verdict(&plane, "acme").first_break, None);
}

/// The stored item of `org`'s event `seq`.
fn stored(plane: &Plane, org: &str, seq: u64) -> HashMap<String, AttributeValue> {
    plane
        .items(&plane.tables.audit_events)
        .into_iter()
        .find(|item| {
            item["org_id"].as_s().unwrap() == org && item["seq"].as_n().unwrap() == &seq.to_string()
        })
        .unwrap_or_else(|| panic!("event {seq} of {org}"))
}

fn put(plane: &Plane, item: HashMap<String, AttributeValue>) {
    plane.runtime.block_on(async {
        plane
            .client
            .put_item()
            .table_name(&plane.tables.audit_events)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    });
}

#[test]
fn verify_names_the_first_hand_edit_removal_or_rewrite() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    for label in ["one", "two", "three", "four"] {
        create(&plane, &admin, label);
    }
    assert_eq!(verdict(&plane, "acme").first_break, None);
    // Event 1 is the administrator's invitation; 3 is the key "two".
    let original = stored(&plane, "acme", 3);

    // Its contents edited: its own hash no longer holds.
    let mut edited = original.clone();
    let body = edited["event"]
        .as_s()
        .unwrap()
        .replace("\"two\"", "\"TWO\"");
    edited.insert("event".into(), AttributeValue::S(body.clone()));
    put(&plane, edited.clone());
    let found = verdict(&plane, "acme").first_break.expect("a break");
    assert_eq!(found.seq, 3, "{found:?}");
    assert!(found.why.contains("hash"), "{found:?}");

    // Edited with its hash re-computed: the next event's prev_hash gives it away.
    let prev = edited["event"].as_s().unwrap().clone();
    let prev_hash: Value = serde_json::from_str(&prev).unwrap();
    edited.insert(
        "hash".into(),
        AttributeValue::S(hash_after(prev_hash["prev_hash"].as_str().unwrap(), &body)),
    );
    put(&plane, edited);
    let found = verdict(&plane, "acme").first_break.expect("a break");
    assert_eq!(found.seq, 4, "{found:?}");
    assert!(found.why.contains("prev_hash"), "{found:?}");

    // Its filter attributes edited (the body left alone): caught too.
    let mut relabelled = original.clone();
    relabelled.insert("action".into(), AttributeValue::S("api_key.revoked".into()));
    put(&plane, relabelled);
    let found = verdict(&plane, "acme").first_break.expect("a break");
    assert_eq!(found.seq, 3, "{found:?}");

    // Put back: whole again.
    put(&plane, original.clone());
    assert_eq!(verdict(&plane, "acme").first_break, None);

    // Removed: the gap is named.
    plane.runtime.block_on(async {
        plane
            .client
            .delete_item()
            .table_name(&plane.tables.audit_events)
            .key("org_id", original["org_id"].clone())
            .key("sk", original["sk"].clone())
            .send()
            .await
            .unwrap();
    });
    let found = verdict(&plane, "acme").first_break.expect("a break");
    assert_eq!(found.seq, 3, "{found:?}");
    assert!(found.why.contains("missing"), "{found:?}");
    put(&plane, original);

    // The newest removed: the head still says where the chain ends.
    let last = stored(&plane, "acme", 5);
    plane.runtime.block_on(async {
        plane
            .client
            .delete_item()
            .table_name(&plane.tables.audit_events)
            .key("org_id", last["org_id"].clone())
            .key("sk", last["sk"].clone())
            .send()
            .await
            .unwrap();
    });
    let found = verdict(&plane, "acme").first_break.expect("a break");
    assert!(found.why.contains("head"), "{found:?}");
}

#[test]
fn administrators_and_officers_read_the_trail_with_filters_a_cursor_and_csv() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let officer = plane.member("acme", Role::ComplianceOfficer);
    let developer = plane.member("acme", Role::Developer);
    let analyst = plane.member("acme", Role::Analyst);
    let stranger = plane.member("globex", Role::Administrator);
    let (mine, _) = create(&plane, &developer, "dev key");
    let (theirs, _) = create(&plane, &admin, "admin key");
    let started = shared::time::now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(
        plane
            .post(
                &format!("/v1/org/api-keys/{mine}/revoke"),
                &admin.token,
                json!({})
            )
            .status,
        200
    );
    create(&plane, &stranger, "globex key");

    // Who may read it.
    plane
        .get(EVENTS, &developer.token)
        .assert_error(403, "forbidden_permission");
    plane
        .get(EVENTS, &analyst.token)
        .assert_error(403, "forbidden_permission");
    let me = plane.get("/v1/org/me", &officer.token).json();
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("org.audit")),
        "{me}"
    );
    let all = events(&plane, &officer, "");
    let keyed: Vec<&Value> = all
        .iter()
        .filter(|e| e["target"]["type"] == "api_key")
        .collect();
    assert_eq!(keyed.len(), 3, "acme's three, never globex's: {all:#?}");
    assert_eq!(all.len(), 3 + 4, "and acme's four members added");
    assert!(all.iter().all(|e| e.get("org").is_none()));
    let globex = events(&plane, &stranger, "");
    assert_eq!(globex.len(), 2);
    assert_eq!(globex[0]["after"]["label"], "globex key");
    assert_eq!(globex[1]["action"], "member.invited");

    // Filters.
    let by_dev = events(&plane, &admin, &format!("&actor={}", developer.member.id));
    assert_eq!(by_dev.len(), 1);
    assert_eq!(by_dev[0]["target"]["id"], mine.as_str());
    let on_mine = events(&plane, &admin, &format!("&target={mine}"));
    assert_eq!(on_mine.len(), 2);
    let revocations = events(&plane, &admin, "&action=api_key.revoked");
    assert_eq!(revocations.len(), 1);
    let since = shared::time::format(&started);
    let recent = events(&plane, &admin, &format!("&since={since}"));
    assert_eq!(recent.len(), 1, "{recent:#?}");
    let earlier = events(
        &plane,
        &admin,
        &format!("&until={since}&action=api_key.created"),
    );
    assert_eq!(earlier.len(), 2);
    assert!(earlier.iter().any(|e| e["target"]["id"] == theirs.as_str()));
    assert!(events(&plane, &admin, "&actor=nobody").is_empty());

    // The cursor walks newest first, a page at a time, every event once.
    let mut walked = Vec::new();
    let mut path = format!("{EVENTS}?limit=1");
    loop {
        let page = plane.get(&path, &admin.token).json();
        walked.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => path = format!("{EVENTS}?limit=1&cursor={next}"),
            None => break,
        }
    }
    let ids: Vec<Value> = all.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(walked, ids);
    // A cursor is a place within its own range: outside the filters' range, a 400.
    let first = plane.get(&format!("{EVENTS}?limit=1"), &admin.token).json();
    let cursor = first["next_cursor"].as_str().unwrap();
    let body = plane
        .get(
            &format!("{EVENTS}?limit=1&cursor={cursor}&since=2999-01-01T00:00:00Z"),
            &admin.token,
        )
        .assert_error(400, "invalid_request");
    assert_eq!(body["error"]["param"], "cursor");

    // Bad input: clear 400s.
    for (query, param) in [
        ("action=api_key.deleted", "action"),
        ("since=yesterday", "since"),
        (
            "since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z",
            "until",
        ),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("format=csv&limit=2000", "limit"),
        ("format=xml", "format"),
        ("actr=x", "actr"),
        ("actor=", "actor"),
    ] {
        let body = plane
            .get(&format!("{EVENTS}?{query}"), &admin.token)
            .assert_error(400, "invalid_request");
        assert_eq!(body["error"]["param"], param, "{query}");
    }

    // CSV: a header row, a row per event, no cell a spreadsheet would run.
    let reply = plane.call_with(
        "POST",
        "/v1/org/api-keys",
        &[
            ("authorization", &format!("Bearer {}", admin.token)),
            ("content-type", "application/json"),
            ("user-agent", "=HYPERLINK(\"https://evil.test\")"),
        ],
        Some(r#"{"label": "@SUM(A1)", "scopes": ["customers:read"]}"#),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let csv = plane.get(&format!("{EVENTS}?format=csv"), &admin.token);
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let mut rows = csv::ReaderBuilder::new()
        .from_reader(csv.body.as_bytes())
        .into_records()
        .map(|r| r.unwrap())
        .collect::<Vec<_>>();
    assert_eq!(rows.len(), all.len() + 1);
    let newest = rows.remove(0);
    assert_eq!(&newest[5], "api_key.created");
    assert_eq!(&newest[12], "'=HYPERLINK(\"https://evil.test\")");
    for row in std::iter::once(&newest).chain(rows.iter()) {
        for cell in row.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@']),
                "a cell a spreadsheet would run: {cell:?}"
            );
        }
    }
    // A page of CSV links to the next.
    let paged = plane.get(
        &format!("{EVENTS}?format=csv&limit=2&action=api_key.created"),
        &admin.token,
    );
    assert_eq!(paged.status, 200);
    let link = paged.header("link").expect("a next link");
    assert!(
        link.contains("action=api_key.created") && link.contains("rel=\"next\""),
        "{link}"
    );
}

#[test]
fn member_changes_write_their_event_and_one_for_each_key_they_change() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let before = events(&plane, &admin, "").len();

    // An invitation through the member API: the member's event, by the administrator.
    let reply = plane.call_with(
        "POST",
        "/v1/org/members",
        &[
            ("authorization", &format!("Bearer {}", admin.token)),
            ("content-type", "application/json"),
            ("user-agent", "settings-page"),
        ],
        Some(r#"{"email": "new.hire@acme.test", "role": "compliance_officer"}"#),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let hire = reply.json()["id"].as_str().unwrap().to_owned();
    let invited = one_more(&plane, &admin, before);
    assert_eq!(invited["action"], "member.invited");
    assert_eq!(invited["target"], json!({"type": "member", "id": hire}));
    assert_eq!(invited["actor"]["id"], admin.member.id.as_str());
    assert_eq!(
        invited["after"],
        json!({"email": "new.hire@acme.test", "role": "compliance_officer", "status": "active"})
    );
    assert_eq!(invited["user_agent"], "settings-page");
    // Inviting them again: refused, nothing written.
    plane
        .post(
            "/v1/org/members",
            &admin.token,
            json!({"email": "new.hire@acme.test", "role": "analyst"}),
        )
        .assert_error(409, "conflict");
    assert_eq!(events(&plane, &admin, "").len(), before + 1);

    // A demotion that cuts a key's scopes: the member's event and the key's.
    let officer = plane.member("acme", Role::ComplianceOfficer);
    let (aml_key, _) = key_reply(&plane.post(
        "/v1/org/api-keys",
        &officer.token,
        json!({"label": "AML feed", "scopes": ["customers:read", "aml:read"]}),
    ));
    let (plain_key, _) = create(&plane, &officer, "CRM");
    let count = events(&plane, &admin, "").len();
    let demoted = plane.patch(
        &format!("/v1/org/members/{}", officer.member.id),
        &admin.token,
        json!({"role": "developer"}),
    );
    assert_eq!(demoted.status, 200, "{}", demoted.body);
    let now = events(&plane, &admin, "");
    assert_eq!(
        now.len(),
        count + 2,
        "the member's and the one key cut: {now:#?}"
    );
    let (trim, role) = (&now[0], &now[1]);
    assert_eq!(role["action"], "member.role_changed");
    assert_eq!(role["before"], json!({"role": "compliance_officer"}));
    assert_eq!(role["after"], json!({"role": "developer"}));
    assert_eq!(trim["action"], "api_key.updated");
    assert_eq!(trim["target"]["id"], aml_key.as_str());
    assert_eq!(
        trim["before"],
        json!({"scopes": ["customers:read", "aml:read"]})
    );
    assert_eq!(trim["after"], json!({"scopes": ["customers:read"]}));
    assert_eq!(
        trim["request_id"], role["request_id"],
        "one request, one transaction"
    );
    // The same role again changes nothing.
    let same = plane.patch(
        &format!("/v1/org/members/{}", officer.member.id),
        &admin.token,
        json!({"role": "developer"}),
    );
    assert_eq!(same.status, 200);
    assert_eq!(events(&plane, &admin, "").len(), count + 2);

    // Deactivated with their keys handed on: one event per key, and the member's.
    let heir = plane.member("acme", Role::Developer);
    let count = events(&plane, &admin, "").len();
    let gone = plane.post(
        &format!("/v1/org/members/{}/deactivate", officer.member.id),
        &admin.token,
        json!({"transfer_keys_to": heir.member.id}),
    );
    assert_eq!(gone.status, 200, "{}", gone.body);
    let now = events(&plane, &admin, "");
    assert_eq!(now.len(), count + 3, "{now:#?}");
    let mut actions: Vec<&str> = now[..3]
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "api_key.transferred",
            "api_key.transferred",
            "member.deactivated"
        ]
    );
    for event in &now[..3] {
        if event["action"] == "api_key.transferred" {
            assert!([&aml_key, &plain_key]
                .contains(&&event["target"]["id"].as_str().unwrap().to_owned()));
            assert_eq!(event["after"]["owned_by"], heir.member.id.as_str());
        } else {
            assert_eq!(event["after"]["status"], "deactivated");
        }
    }

    // Deactivated without a transfer: their keys revoked, each with its event.
    let (heirs_key, _) = create(&plane, &heir, "Heir's own");
    let count = events(&plane, &admin, "").len();
    let gone = plane.post(
        &format!("/v1/org/members/{}/deactivate", heir.member.id),
        &admin.token,
        json!({}),
    );
    assert_eq!(gone.status, 200, "{}", gone.body);
    let now = events(&plane, &admin, "");
    assert_eq!(now.len(), count + 4, "{now:#?}");
    let revoked: Vec<&Value> = now[..4]
        .iter()
        .filter(|e| e["action"] == "api_key.revoked")
        .collect();
    assert_eq!(revoked.len(), 3, "the two handed on and their own");
    assert!(revoked
        .iter()
        .any(|e| e["target"]["id"] == heirs_key.as_str()));
    assert!(revoked
        .iter()
        .all(|e| e["after"]["revocation_reason"] == "member_deactivated"));
    // Deactivating them again: nothing more.
    let again = plane.post(
        &format!("/v1/org/members/{}/deactivate", heir.member.id),
        &admin.token,
        json!({}),
    );
    assert_eq!(again.status, 200);
    assert_eq!(events(&plane, &admin, "").len(), count + 4);

    // The last administrator can't go: refused, nothing written.
    plane
        .patch(
            &format!("/v1/org/members/{}", admin.member.id),
            &plane.member("acme", Role::ComplianceOfficer).token,
            json!({"role": "analyst"}),
        )
        .assert_error(409, "conflict");
    let filtered = events(&plane, &admin, "&action=member.role_changed");
    assert_eq!(filtered.len(), 1);
    assert_eq!(verdict(&plane, "acme").first_break, None);
}

#[test]
fn a_fault_in_a_member_change_leaves_neither_the_change_nor_its_events() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let officer = plane.member("acme", Role::ComplianceOfficer);
    let (key, plaintext) = key_reply(&plane.post(
        "/v1/org/api-keys",
        &officer.token,
        json!({"label": "AML feed", "scopes": ["aml:read"]}),
    ));
    let before = events(&plane, &admin, "").len();
    for fault in [Fault::TransactionThrottled, Fault::Stall] {
        plane.faults.inject("TransactWriteItems", fault);
        let demoted = plane.patch(
            &format!("/v1/org/members/{}", officer.member.id),
            &admin.token,
            json!({"role": "analyst"}),
        );
        let gone = plane.post(
            &format!("/v1/org/members/{}/deactivate", officer.member.id),
            &admin.token,
            json!({}),
        );
        plane.faults.heal();
        demoted.assert_error(503, "service_unavailable");
        gone.assert_error(503, "service_unavailable");
        assert_eq!(events(&plane, &admin, "").len(), before, "{fault:?}");
        let listed = plane
            .get(&format!("/v1/org/api-keys/{key}"), &admin.token)
            .json();
        assert_eq!(listed["status"], "active", "{fault:?}");
        assert_eq!(plane.get("/v1/me", &plaintext).status, 200, "{fault:?}");
    }
    let gone = plane.post(
        &format!("/v1/org/members/{}/deactivate", officer.member.id),
        &admin.token,
        json!({}),
    );
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert_eq!(events(&plane, &admin, "").len(), before + 2);
    assert_eq!(plane.get("/v1/me", &plaintext).status, 401);
    assert_eq!(verdict(&plane, "acme").first_break, None);
}

#[test]
fn provider_key_changes_write_their_event_with_the_secret_only_as_its_mask() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let base = "/v1/org/provider-keys";
    let first = format!("os-{}", uuid::Uuid::new_v4().simple());
    let before = events(&plane, &admin, "").len();

    let reply = plane.post(
        base,
        &admin.token,
        json!({"key_type": "O", "label": "Sanctions", "secret": first}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let key = reply.json();
    let id = key["id"].as_str().unwrap().to_owned();
    let created = one_more(&plane, &admin, before);
    assert_eq!(created["action"], "provider_key.created");
    assert_eq!(created["target"], json!({"type": "provider_key", "id": id}));
    assert_eq!(created["after"]["masked_key"], key["masked_key"]);
    assert_eq!(created["after"]["label"], "Sanctions");
    assert_eq!(created["after"]["enabled"], true);

    // Renamed and disabled in one edit: one event with both; `{}` writes none.
    let path = format!("{base}/{id}");
    let edited = plane.patch(
        &path,
        &admin.token,
        json!({"label": "OS prod", "enabled": false}),
    );
    assert_eq!(edited.status, 200, "{}", edited.body);
    let updated = one_more(&plane, &admin, before + 1);
    assert_eq!(updated["action"], "provider_key.updated");
    assert_eq!(
        updated["before"],
        json!({"label": "Sanctions", "enabled": true})
    );
    assert_eq!(
        updated["after"],
        json!({"label": "OS prod", "enabled": false})
    );
    assert_eq!(plane.patch(&path, &admin.token, json!({})).status, 200);
    assert_eq!(events(&plane, &admin, "").len(), before + 2);
    let enabled = plane.patch(&path, &admin.token, json!({"enabled": true}));
    assert_eq!(enabled.status, 200, "{}", enabled.body);
    let updated = one_more(&plane, &admin, before + 2);
    assert_eq!(updated["after"], json!({"enabled": true}));

    // Rotated: the masks, never a secret.
    let second = format!("os-{}", uuid::Uuid::new_v4().simple());
    let rotated = plane.post(
        &format!("{path}/rotate"),
        &admin.token,
        json!({"secret": second}),
    );
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let event = one_more(&plane, &admin, before + 3);
    assert_eq!(event["action"], "provider_key.rotated");
    assert_eq!(event["before"]["masked_key"], key["masked_key"]);
    assert_eq!(event["after"]["masked_key"], rotated.json()["masked_key"]);
    assert!(event["after"]["rotated_at"].is_string());

    // Verified: who checked it, and what the provider said.
    let verified = plane.call("POST", &format!("{path}/verify"), &admin.token, None);
    assert_eq!(verified.status, 200, "{}", verified.body);
    let event = one_more(&plane, &admin, before + 4);
    assert_eq!(event["action"], "provider_key.verified");
    assert_eq!(event["after"]["result"], verified.json()["result"]);

    // A refused edit writes nothing.
    plane
        .patch(&path, &admin.token, json!({"label": ""}))
        .assert_error(400, "invalid_request");
    assert_eq!(events(&plane, &admin, "").len(), before + 5);
    let trail = plane
        .get(&format!("{EVENTS}?target={id}"), &admin.token)
        .body;
    for secret in [&first, &second] {
        assert!(!trail.contains(secret.as_str()), "a secret in the trail");
    }
    plane.assert_stored_nowhere(&first, "a provider secret");
    plane.assert_stored_nowhere(&second, "a provider secret");
    assert_eq!(verdict(&plane, "acme").first_break, None);
}

#[test]
fn webhook_endpoint_changes_name_who_re_pointed_them_and_never_a_secret() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let developer = plane.member("acme", Role::Developer);
    let before = events(&plane, &admin, "").len();
    let base = "/v1/org/webhook-endpoints";

    let reply = plane.post(
        base,
        &admin.token,
        json!({"url": "http://127.0.0.1:9009/aml", "events": ["customer.verified"], "description": "AML feed"}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let endpoint = reply.json();
    let id = endpoint["id"].as_str().unwrap().to_owned();
    let first_secret = endpoint["secret"].as_str().unwrap().to_owned();
    let created = one_more(&plane, &admin, before);
    assert_eq!(created["action"], "webhook_endpoint.created");
    assert_eq!(
        created["target"],
        json!({"type": "webhook_endpoint", "id": id})
    );
    assert_eq!(created["after"]["url"], "http://127.0.0.1:9009/aml");
    assert_eq!(created["after"]["includes_aml"], true);
    assert_eq!(created["after"]["bound_to"], admin.member.id.as_str());

    // Re-pointed by a developer: the new URL, and the binding that moved to them.
    let path = format!("{base}/{id}");
    let moved = plane.patch(
        &path,
        &developer.token,
        json!({"url": "http://127.0.0.2:9009/hook", "events": ["customer.created"]}),
    );
    assert_eq!(moved.status, 200, "{}", moved.body);
    let repointed = one_more(&plane, &admin, before + 1);
    assert_eq!(repointed["action"], "webhook_endpoint.updated");
    assert_eq!(repointed["actor"]["id"], developer.member.id.as_str());
    assert_eq!(repointed["before"]["url"], "http://127.0.0.1:9009/aml");
    assert_eq!(repointed["after"]["url"], "http://127.0.0.2:9009/hook");
    assert_eq!(repointed["before"]["bound_to"], admin.member.id.as_str());
    assert_eq!(repointed["after"]["bound_to"], developer.member.id.as_str());
    assert_eq!(repointed["after"]["includes_aml"], false);

    // Disabled by hand, the secret revealed, then rotated: one event each.
    assert_eq!(
        plane
            .patch(&path, &admin.token, json!({"enabled": false}))
            .status,
        200
    );
    let disabled = one_more(&plane, &admin, before + 2);
    assert_eq!(disabled["after"], json!({"enabled": false}));
    let revealed = plane.get(&format!("{path}/secret"), &developer.token);
    assert_eq!(revealed.status, 200, "{}", revealed.body);
    let seen = one_more(&plane, &admin, before + 3);
    assert_eq!(seen["action"], "webhook_endpoint.secret_revealed");
    assert_eq!(seen["actor"]["id"], developer.member.id.as_str());
    let rotated = plane.post(&format!("{path}/rotate-secret"), &admin.token, json!({}));
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let second_secret = rotated.json()["secret"].as_str().unwrap().to_owned();
    let event = one_more(&plane, &admin, before + 4);
    assert_eq!(event["action"], "webhook_endpoint.secret_rotated");
    assert_eq!(event["after"]["previous_secret_expires_in_seconds"], 86400);

    // Made and deleted by a key of the integration API: the key is the actor.
    let (_, key) = key_reply(&plane.post(
        "/v1/org/api-keys",
        &admin.token,
        json!({"label": "Zapier", "scopes": ["customers:read", "webhooks:write"]}),
    ));
    let count = events(&plane, &admin, "").len();
    let made = plane.call_with(
        "POST",
        "/v1/webhook_endpoints",
        &[
            ("authorization", &format!("Bearer {key}")),
            ("content-type", "application/json"),
        ],
        Some(r#"{"url": "http://127.0.0.3:9009/zap", "events": ["customer.created"]}"#),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let zap = made.json()["id"].as_str().unwrap().to_owned();
    let by_key = one_more(&plane, &admin, count);
    assert_eq!(by_key["actor"]["type"], "api_key");
    let gone = plane.call_with(
        "DELETE",
        &format!("/v1/webhook_endpoints/{zap}"),
        &[("authorization", &format!("Bearer {key}"))],
        None,
    );
    assert_eq!(gone.status, 200, "{}", gone.body);
    let deleted = one_more(&plane, &admin, count + 1);
    assert_eq!(deleted["action"], "webhook_endpoint.deleted");
    assert_eq!(deleted["before"]["url"], "http://127.0.0.3:9009/zap");
    assert_eq!(deleted["after"], json!({}));

    // Refused: a delete of what is gone, an analyst's edit. Nothing written.
    let missing = plane.call_with(
        "DELETE",
        &format!("/v1/webhook_endpoints/{zap}"),
        &[("authorization", &format!("Bearer {key}"))],
        None,
    );
    missing.assert_error(404, "not_found");
    assert_eq!(events(&plane, &admin, "").len(), count + 2);
    let trail = plane
        .get(&format!("{EVENTS}?target={id}&format=csv"), &admin.token)
        .body;
    for secret in [&first_secret, &second_secret] {
        assert!(
            !trail.contains(secret.as_str()),
            "a signing secret in the trail"
        );
    }
    assert_eq!(verdict(&plane, "acme").first_break, None);
}

#[test]
fn the_trail_streams_to_endpoints_that_ask_for_it_and_only_where_it_may_go() {
    use crate::receiver::{verified_by, Receiver};
    let plane = Plane::new();
    let (_webhooks, workers) = plane.webhooks(|_| {});
    let admin = plane.member("acme", Role::Administrator);
    let officer = plane.member("acme", Role::ComplianceOfficer);
    let developer = plane.member("acme", Role::Developer);
    let siem = Receiver::start(&plane.runtime);
    let wants = |url: &str, mode: &str| json!({"url": url, "events": ["audit_event.created"], "mode": mode});

    // Who may ask for it: a member with org.audit; not a developer, never a key.
    let body = plane
        .post(
            "/v1/org/webhook-endpoints",
            &developer.token,
            wants(&siem.url("/dev"), "live"),
        )
        .assert_error(403, "forbidden_permission");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("org.audit"));
    let (_, key) = key_reply(&plane.post(
        "/v1/org/api-keys",
        &admin.token,
        json!({"label": "Zapier", "scopes": ["customers:read", "webhooks:write"]}),
    ));
    let refused = plane.call_with(
        "POST",
        "/v1/webhook_endpoints",
        &[
            ("authorization", &format!("Bearer {key}")),
            ("content-type", "application/json"),
        ],
        Some(&json!({"url": siem.url("/key"), "events": ["audit_event.created"]}).to_string()),
    );
    refused.assert_error(403, "forbidden_scope");

    let reply = plane.post(
        "/v1/org/webhook-endpoints",
        &officer.token,
        wants(&siem.url("/siem"), "live"),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let secret = reply.json()["secret"].as_str().unwrap().to_owned();
    // A test-mode endpoint asking for it gets nothing: the trail is not test data.
    let reply = plane.post(
        "/v1/org/webhook-endpoints",
        &officer.token,
        wants(&siem.url("/test"), "test"),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);

    // A change: its event reaches the SIEM, signed, as the API shows it.
    let (made, _) = create(&plane, &developer, "CRM");
    let got = siem.wait_until("the key's audit event", |r| {
        r.iter()
            .any(|d| d.json()["data"]["object"]["target"]["id"] == made.as_str())
    });
    let payloads = verified_by("python", &secret, &got).expect("python verifies");
    let delivered = payloads
        .iter()
        .find(|p| p["data"]["object"]["target"]["id"] == made.as_str())
        .unwrap();
    assert_eq!(delivered["type"], "audit_event.created");
    let listed = events(&plane, &admin, &format!("&target={made}"));
    assert_eq!(
        delivered["data"]["object"], listed[0],
        "the event as the API shows it"
    );
    assert!(
        got.iter().all(|d| !d.path.starts_with("/test")),
        "nothing to test mode"
    );

    // The officer who set it up loses org.audit: the next events are not sent there.
    let demoted = plane.patch(
        &format!("/v1/org/members/{}", officer.member.id),
        &admin.token,
        json!({"role": "developer"}),
    );
    assert_eq!(demoted.status, 200, "{}", demoted.body);
    let (late, _) = create(&plane, &admin, "after the demotion");
    plane.settle(&workers, std::time::Duration::from_millis(200));
    assert!(
        siem.received()
            .iter()
            .all(|d| d.json()["data"]["object"]["target"]["id"] != late.as_str()),
        "an audit event went to an endpoint whose binding lost org.audit"
    );
    assert_eq!(
        events(&plane, &admin, &format!("&target={late}")).len(),
        1,
        "it is in the trail"
    );
}
