//! Webhook delivery end to end: requests through the local gateway change the tables, the
//! tables' streams (read from DynamoDB Local as the event source mapping reads them) feed
//! the dispatcher, and a receiver on loopback gets signed deliveries, verified by the
//! Standard Webhooks libraries themselves. Retries, redirects, slow receivers, crashes
//! between send and record, deleted endpoints and storage faults included.

use std::time::Duration;

use localdb::{Fault, Injection};
use serde_json::{json, Value};
use shared::members::role::Role;
use shared::webhooks::delivery::DeliveryStatus;

use crate::helpers::{Plane, Signed};
use crate::receiver::{verified_by, Answer, Received, Receiver};

/// A member-made endpoint of `mode` for `events` at `url`: (id, secret).
fn endpoint(
    plane: &Plane,
    who: &Signed,
    url: &str,
    mode: &str,
    events: &[&str],
) -> (String, String) {
    let reply = plane.post(
        "/v1/org/webhook-endpoints",
        &who.token,
        json!({"url": url, "events": events, "mode": mode}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let body = reply.json();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

/// A key of `mode` with the customer scopes and `aml:read`.
fn key(plane: &Plane, admin: &Signed, mode: &str) -> String {
    let reply = plane.post(
        "/v1/org/api-keys",
        &admin.token,
        json!({"label": format!("{mode} key"), "mode": mode,
               "scopes": ["customers:read", "customers:write", "aml:read"]}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()["key"].as_str().unwrap().to_owned()
}

fn create_customer(plane: &Plane, key: &str, external_id: &str) -> Value {
    let reply = plane.post(
        "/v1/customers",
        key,
        json!({"external_id": external_id, "full_name": "Jane Doe", "email": "jane@example.com"}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()
}

fn of_kind<'a>(received: &'a [Received], kind: &str) -> Vec<&'a Received> {
    received.iter().filter(|r| r.kind() == kind).collect()
}

/// Fast retries for the tests: the schedule's shape, in milliseconds.
fn quick(webhooks: &mut shared::webhooks::dispatch::Webhooks) {
    webhooks.retry_schedule = vec![Duration::from_millis(300); 3];
}

fn deliveries(plane: &Plane, endpoint_id: &str) -> Vec<shared::webhooks::delivery::Delivery> {
    plane
        .runtime
        .block_on(plane.app.webhook_deliveries.list(endpoint_id))
        .unwrap()
}

/// Waits until `endpoint_id`'s deliveries satisfy `done`.
fn wait_deliveries(
    plane: &Plane,
    endpoint_id: &str,
    what: &str,
    done: impl Fn(&[shared::webhooks::delivery::Delivery]) -> bool,
) -> Vec<shared::webhooks::delivery::Delivery> {
    let start = std::time::Instant::now();
    loop {
        let found = deliveries(plane, endpoint_id);
        if done(&found) {
            return found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "waited 30 s for {what}: {found:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_customer_driven_through_the_lifecycle_is_delivered_signed_to_its_mode_and_role() {
    let plane = Plane::new();
    let (_webhooks, workers) = plane.webhooks(quick);
    let admin = plane.member("acme", Role::Administrator);
    let developer = plane.member("acme", Role::Developer);
    let full = Receiver::start(&plane.runtime);
    let cut = Receiver::start(&plane.runtime);
    let live = Receiver::start(&plane.runtime);
    let events = ["customer.created", "customer.updated", "customer.verified"];
    // An administrator's endpoint sees AML; a developer's does not; a live one sees no
    // test data.
    let (_, full_secret) = endpoint(&plane, &admin, &full.url("/in"), "test", &events);
    // (customer.verified states an AML result: not an event a developer may receive.)
    let (_, cut_secret) = endpoint(&plane, &developer, &cut.url("/in"), "test", &events[..2]);
    let (_, live_secret) = endpoint(&plane, &admin, &live.url("/in"), "live", &events);

    let test = key(&plane, &admin, "test");
    let created = create_customer(&plane, &test, "crm-1");
    let id = created["id"].as_str().unwrap().to_owned();
    let renamed = plane.patch(
        &format!("/v1/customers/{id}"),
        &test,
        json!({"full_name": "Jane Q. Doe"}),
    );
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    for (what, body) in [
        ("kyc", json!({"status": "IN_PROGRESS"})),
        ("kyc", json!({"status": "VERIFIED"})),
        ("aml", json!({"status": "PENDING"})),
        ("aml", json!({"status": "CLEAR"})),
    ] {
        let moved = plane.post(
            &format!("/v1/test_helpers/customers/{id}/{what}"),
            &test,
            body,
        );
        assert_eq!(moved.status, 200, "{}", moved.body);
    }

    // created, updated ×5 (rename, kyc ×2, aml ×2), verified: 7 deliveries each.
    let got = full.wait_until("the lifecycle", |r| {
        of_kind(r, "customer.verified").len() == 1 && r.len() >= 7
    });
    assert_eq!(
        got.len(),
        7,
        "{:?}",
        got.iter().map(Received::kind).collect::<Vec<_>>()
    );
    let payloads = verified_by("python", &full_secret, &got).expect("python verifies");
    assert_eq!(payloads.len(), 7);
    assert_eq!(
        verified_by("node", &full_secret, &got).expect("node verifies"),
        payloads
    );
    // Each with its own id, header and body agreeing.
    let mut ids: Vec<&str> = got.iter().map(Received::id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 7);
    for r in &got {
        assert!(r.id().starts_with("msg_"), "{}", r.id());
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.path, "/in");
        assert!(r.json()["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(r.json()["data"]["object"]["id"], json!(id));
    }
    let created_event = of_kind(&got, "customer.created")[0].json();
    assert_eq!(created_event["data"]["object"]["external_id"], "crm-1");
    assert!(created_event["data"].get("previous_attributes").is_none());
    assert!(
        created_event["data"]["object"]["aml"].is_object(),
        "an administrator's endpoint keeps AML"
    );
    let updates = of_kind(&got, "customer.updated");
    assert_eq!(updates.len(), 5);
    let rename = updates
        .iter()
        .map(|r| r.json())
        .find(|p| {
            p["data"]["object"]["full_name"] == "Jane Q. Doe"
                && p["data"]["previous_attributes"].get("full_name").is_some()
        })
        .expect("the rename is an update");
    assert_eq!(
        rename["data"]["previous_attributes"]["full_name"],
        "Jane Doe"
    );
    assert!(
        rename["data"]["previous_attributes"].get("email").is_none(),
        "only what changed"
    );
    let verified = of_kind(&got, "customer.verified")[0].json();
    assert_eq!(verified["data"]["object"]["kyc_status"], "VERIFIED");
    assert_eq!(verified["data"]["object"]["aml"]["status"], "CLEAR");

    // A tampered body, or another endpoint's secret, is refused by the library.
    let mut tampered = got[0].clone();
    tampered.body = tampered
        .body
        .replace("crm-1", "crm-2")
        .replace("Jane", "John");
    assert!(verified_by("python", &full_secret, &[tampered.clone()]).is_err());
    assert!(verified_by("node", &full_secret, &[tampered]).is_err());
    assert!(verified_by("python", &cut_secret, &got[..1]).is_err());

    // The developer's endpoint: no AML anywhere, and the two updates that changed only
    // AML (PENDING, CLEAR) are not sent there: created, 3 updates.
    cut.wait_until("the developer's updates", |r| {
        of_kind(r, "customer.updated").len() == 3
    });
    plane.settle(&workers, Duration::ZERO);
    let cut_got = cut.received();
    assert_eq!(
        cut_got.iter().map(Received::kind).collect::<Vec<_>>().len(),
        4,
        "{:?}",
        cut_got.iter().map(Received::kind).collect::<Vec<_>>()
    );
    assert_eq!(of_kind(&cut_got, "customer.updated").len(), 3);
    assert_eq!(
        verified_by("python", &cut_secret, &cut_got).unwrap().len(),
        4
    );
    for r in &cut_got {
        assert!(
            !r.body.contains("\"aml\""),
            "no AML for a creator without aml.read: {}",
            r.body
        );
    }

    // Live: a live customer reaches the live endpoint, and the test ones never did.
    let live_key = key(&plane, &admin, "live");
    let live_customer = create_customer(&plane, &live_key, "crm-live");
    let live_got = live.wait_for(1);
    assert_eq!(live_got.len(), 1);
    assert_eq!(
        live_got[0].json()["data"]["object"]["id"],
        live_customer["id"]
    );
    assert_eq!(
        verified_by("python", &live_secret, &live_got)
            .unwrap()
            .len(),
        1
    );
    // The live customer's delivery went out after the test ones were all stored and sent;
    // once the workers are idle nothing is left to go anywhere.
    plane.settle(&workers, Duration::ZERO);
    assert_eq!(
        full.received().len(),
        7,
        "a test endpoint never gets live data"
    );
}

#[test]
fn a_failing_receiver_gets_retries_with_the_same_id_and_redirects_are_not_followed() {
    let plane = Plane::new();
    let (_webhooks, _workers) = plane.webhooks(|w| {
        quick(w);
        w.sender.timeout = Duration::from_millis(1_500);
    });
    let admin = plane.member("acme", Role::Administrator);
    let receiver = Receiver::start(&plane.runtime);
    let elsewhere = Receiver::start(&plane.runtime);
    // 500, then a redirect, then too slow, then 200.
    receiver.script(vec![
        Answer::status(500),
        Answer::status(302).to(&elsewhere.url("/moved")),
        Answer::status(200).after(Duration::from_secs(4)),
    ]);
    let (endpoint_id, secret) = endpoint(
        &plane,
        &admin,
        &receiver.url("/hook"),
        "live",
        &["customer.created"],
    );
    let live = key(&plane, &admin, "live");
    create_customer(&plane, &live, "crm-retry");

    let got = receiver.wait_for(4);
    assert_eq!(got.len(), 4);
    assert!(
        got.iter().all(|r| r.id() == got[0].id()),
        "one webhook-id for every try"
    );
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "the same body every try"
    );
    assert_eq!(verified_by("python", &secret, &got).unwrap().len(), 4);
    assert!(
        elsewhere.received().is_empty(),
        "a redirect is never followed"
    );

    let done = wait_deliveries(&plane, &endpoint_id, "the delivery to succeed", |d| {
        d.len() == 1 && d[0].status == DeliveryStatus::Succeeded
    });
    let attempts = &done[0].attempts;
    assert_eq!(attempts.len(), 4, "{attempts:#?}");
    assert_eq!(attempts[0].status_code, Some(500));
    assert!(
        attempts[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("receiver says 500"),
        "{attempts:#?}"
    );
    assert_eq!(attempts[1].status_code, Some(302));
    assert!(
        attempts[1]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("not followed"),
        "{attempts:#?}"
    );
    assert_eq!(attempts[2].status_code, None, "a timeout has no status");
    assert!(
        attempts[2]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("no answer within 1.5 s"),
        "{attempts:#?}"
    );
    assert_eq!(attempts[3].status_code, Some(200));
    assert_eq!(done[0].failures, 3);
    assert!(done[0].due.is_none() && done[0].lease_until.is_none());

    // Failures started the endpoint's clock; the success cleared it.
    let seen = plane
        .get(
            &format!("/v1/org/webhook-endpoints/{endpoint_id}"),
            &admin.token,
        )
        .json();
    assert_eq!(seen["failing_since"], Value::Null);
    assert_eq!(seen["enabled"], true);
}

#[test]
fn a_crash_between_send_and_record_sends_again_with_the_same_id() {
    let plane = Plane::new();
    let (_webhooks, workers) = plane.webhooks(|w| {
        quick(w);
        w.lease = Duration::from_secs(1);
    });
    let admin = plane.member("acme", Role::Administrator);
    let receiver = Receiver::start(&plane.runtime);
    let (endpoint_id, secret) = endpoint(
        &plane,
        &admin,
        &receiver.url("/hook"),
        "live",
        &["customer.created"],
    );
    // Recording the attempt fails (the worker "dies" after sending): the lease runs out
    // and the delivery goes again.
    plane.faults.arm(
        Injection::new("PutItem", Fault::Refuse)
            .on_table(&plane.tables.webhook_deliveries)
            .after_calls(1)
            .first_calls(1),
    );
    let live = key(&plane, &admin, "live");
    create_customer(&plane, &live, "crm-crash");
    let got = receiver.wait_for(2);
    assert_eq!(got[0].id(), got[1].id());
    assert_eq!(verified_by("python", &secret, &got).unwrap().len(), 2);
    let done = wait_deliveries(&plane, &endpoint_id, "the second send recorded", |d| {
        d.len() == 1 && d[0].status == DeliveryStatus::Succeeded
    });
    assert_eq!(
        done[0].attempts.len(),
        1,
        "the lost attempt left no record: {done:#?}"
    );
    // Idle past a whole lease: no worker can still hold or take the delivery.
    plane.settle(&workers, Duration::from_secs(1));
    assert_eq!(receiver.received().len(), 2, "nothing more once recorded");
}

#[test]
fn deliveries_not_stored_fail_the_batch_and_are_stored_when_it_is_read_again() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let receiver = Receiver::start(&plane.runtime);
    let (endpoint_id, _) = endpoint(
        &plane,
        &admin,
        &receiver.url("/hook"),
        "live",
        &["customer.created"],
    );
    // DynamoDB throttles the delivery's first store: the dispatcher reports the record
    // failed, the mapping reads it again, and it is stored and sent once.
    plane.faults.arm(
        Injection::new("PutItem", Fault::Throttle)
            .on_table(&plane.tables.webhook_deliveries)
            .first_calls(1),
    );
    let (_webhooks, workers) = plane.webhooks(quick);
    let live = key(&plane, &admin, "live");
    create_customer(&plane, &live, "crm-throttled");
    let got = receiver.wait_for(1);
    plane.settle(&workers, Duration::ZERO);
    assert_eq!(receiver.received().len(), 1, "{got:?}");
    let done = deliveries(&plane, &endpoint_id);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].status, DeliveryStatus::Succeeded);
}

#[test]
fn the_dispatcher_names_the_record_it_could_not_store() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let receiver = Receiver::start(&plane.runtime);
    endpoint(
        &plane,
        &admin,
        &receiver.url("/hook"),
        "live",
        &["customer.created"],
    );
    let webhooks = std::sync::Arc::new(
        shared::webhooks::dispatch::Webhooks::new(&plane.app)
            .signing_as(infra::webhook_workers::DISPATCHER_FUNCTION),
    );
    // A real record: read from the stream.
    let live = key(&plane, &admin, "live");
    create_customer(&plane, &live, "crm-a");
    create_customer(&plane, &live, "crm-b");
    let batch = plane.runtime.block_on(read_stream(&plane));
    let records = batch["Records"].as_array().unwrap();
    let inserts: Vec<&Value> = records
        .iter()
        .filter(|r| {
            r["eventName"] == "INSERT" && r["dynamodb"]["NewImage"].get("full_name").is_some()
        })
        .collect();
    assert!(inserts.len() >= 2, "{batch:#}");
    // The second customer's delivery cannot be stored.
    plane.faults.arm(
        Injection::new("PutItem", Fault::Throttle)
            .on_table(&plane.tables.webhook_deliveries)
            .after_calls(1)
            .first_calls(1),
    );
    let answer = plane.runtime.block_on(webhooks.handle_stream(
        &batch,
        tokio::time::Instant::now() + Duration::from_secs(30),
    ));
    let failures = answer["batchItemFailures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{answer}");
    assert_eq!(
        failures[0]["itemIdentifier"],
        inserts[1]["dynamodb"]["SequenceNumber"]
    );
    assert_eq!(receiver.wait_for(1).len(), 1, "the stored one was sent");
    // Read again from that record: the second is stored and sent; the first is not sent
    // twice (its delivery already exists).
    let answer = plane.runtime.block_on(webhooks.handle_stream(
        &batch,
        tokio::time::Instant::now() + Duration::from_secs(30),
    ));
    assert_eq!(answer, json!({"batchItemFailures": []}));
    // handle_stream returns once its attempts are made: nothing else sends here.
    let got = receiver.wait_for(2);
    assert_eq!(receiver.received().len(), 2, "{got:?}");
}

/// Every record of the customers table's stream so far, as the event source mapping would
/// batch them.
async fn read_stream(plane: &Plane) -> Value {
    let arn = localdb::streams::stream_arn(&plane.client, &plane.tables.customers)
        .await
        .unwrap();
    localdb::streams::read_all(&crate::helpers::dynamodb().endpoint(), &arn)
        .await
        .unwrap()
}

#[test]
fn a_deleted_endpoint_gets_nothing_more_and_a_disabled_one_is_skipped() {
    let plane = Plane::new();
    let (_webhooks, workers) = plane.webhooks(|w| {
        w.retry_schedule = vec![Duration::from_millis(700); 5];
    });
    let admin = plane.member("acme", Role::Administrator);
    let failing = Receiver::start(&plane.runtime);
    let witness = Receiver::start(&plane.runtime);
    failing.script(vec![Answer::status(503); 10]);
    let (failing_id, _) = endpoint(
        &plane,
        &admin,
        &failing.url("/hook"),
        "live",
        &["customer.created"],
    );
    let (witness_id, _) = endpoint(
        &plane,
        &admin,
        &witness.url("/hook"),
        "live",
        &["customer.created"],
    );
    let live = key(&plane, &admin, "live");
    create_customer(&plane, &live, "crm-1");
    failing.wait_for(1);
    witness.wait_for(1);
    // Deleted while a retry is pending: the retry is dropped, not sent.
    let deleted = plane.call(
        "DELETE",
        &format!("/v1/org/webhook-endpoints/{failing_id}"),
        &admin.token,
        None,
    );
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let dropped = wait_deliveries(&plane, &failing_id, "the retry dropped", |d| {
        d.len() == 1 && d[0].status == DeliveryStatus::Dropped
    });
    assert_eq!(
        dropped[0].dropped_reason.as_deref(),
        Some("the endpoint was deleted")
    );
    // New events: the witness gets them, the deleted endpoint nothing.
    create_customer(&plane, &live, "crm-2");
    witness.wait_for(2);
    assert_eq!(failing.received().len(), 1);
    assert_eq!(
        deliveries(&plane, &failing_id).len(),
        1,
        "no delivery made for a deleted endpoint"
    );

    // Disabled: skipped by new events, the witness still served.
    let off = plane.patch(
        &format!("/v1/org/webhook-endpoints/{witness_id}"),
        &admin.token,
        json!({"enabled": false}),
    );
    assert_eq!(off.status, 200, "{}", off.body);
    let (_, _) = endpoint(
        &plane,
        &admin,
        &failing.url("/third"),
        "live",
        &["customer.created"],
    );
    create_customer(&plane, &live, "crm-3");
    failing.wait_until("the third endpoint's delivery", |r| {
        r.iter().any(|r| r.path == "/third")
    });
    plane.settle(&workers, Duration::ZERO);
    assert_eq!(
        witness.received().len(),
        2,
        "a disabled endpoint gets nothing"
    );
}

#[test]
fn endpoints_failing_for_days_are_disabled_with_the_reason_and_410_disables_at_once() {
    let plane = Plane::new();
    let (_webhooks, workers) = plane.webhooks(|w| {
        w.retry_schedule = vec![Duration::from_millis(200); 20];
        // Three "days" of failure, shortened.
        w.disable_after = chrono::Duration::milliseconds(600);
    });
    let admin = plane.member("acme", Role::Administrator);
    let broken = Receiver::start(&plane.runtime);
    broken.script(vec![Answer::status(500); 100]);
    let gone = Receiver::start(&plane.runtime);
    gone.script(vec![Answer::status(410)]);
    let (broken_id, _) = endpoint(
        &plane,
        &admin,
        &broken.url("/b"),
        "live",
        &["customer.created"],
    );
    let (gone_id, _) = endpoint(
        &plane,
        &admin,
        &gone.url("/g"),
        "live",
        &["customer.created"],
    );
    let live = key(&plane, &admin, "live");
    create_customer(&plane, &live, "crm-x");

    let start = std::time::Instant::now();
    let disabled = loop {
        let seen = plane
            .get(
                &format!("/v1/org/webhook-endpoints/{broken_id}"),
                &admin.token,
            )
            .json();
        if seen["enabled"] == false {
            break seen;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never disabled: {seen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("failed"),
        "{disabled}"
    );
    assert!(disabled["disabled_at"].is_string() && disabled["failing_since"].is_string());
    // Its pending retry is dropped once it comes due.
    wait_deliveries(
        &plane,
        &broken_id,
        "the broken endpoint's delivery dropped",
        |d| d.len() == 1 && d[0].status == DeliveryStatus::Dropped,
    );
    let tries = broken.received().len();
    // Idle past a retry slot: a retry the schedule still held would have gone by then.
    plane.settle(&workers, Duration::from_millis(200));
    assert_eq!(broken.received().len(), tries, "nothing after disabling");

    let g = plane
        .get(
            &format!("/v1/org/webhook-endpoints/{gone_id}"),
            &admin.token,
        )
        .json();
    assert_eq!(g["enabled"], false, "{g}");
    assert!(
        g["disabled_reason"].as_str().unwrap().contains("410"),
        "{g}"
    );
    assert_eq!(gone.received().len(), 1);
    let d = deliveries(&plane, &gone_id);
    assert_eq!(d[0].status, DeliveryStatus::Failed);

    // Enabled again by a member: the reason and the clock are cleared.
    let on = plane.patch(
        &format!("/v1/org/webhook-endpoints/{broken_id}"),
        &admin.token,
        json!({"enabled": true}),
    );
    assert_eq!(on.status, 200, "{}", on.body);
    let on = on.json();
    assert_eq!(on["disabled_reason"], Value::Null);
    assert_eq!(on["failing_since"], Value::Null);

    // The audit trail: each disabling by the platform, with its reason, and the member's
    // enabling; the failure clock's ticks are no events.
    let trail = plane
        .get(
            "/v1/org/audit-events?action=webhook_endpoint.updated&limit=100",
            &admin.token,
        )
        .json();
    let events = trail["data"].as_array().unwrap();
    let on_broken: Vec<&Value> = events
        .iter()
        .filter(|e| e["target"]["id"] == broken_id.as_str())
        .collect();
    assert_eq!(on_broken.len(), 2, "{trail}");
    assert_eq!(on_broken[0]["actor"]["id"], admin.member.id.as_str());
    assert_eq!(on_broken[0]["after"]["enabled"], true);
    assert_eq!(on_broken[1]["actor"]["type"], "platform");
    assert!(
        on_broken[1]["actor"]["reason"]
            .as_str()
            .unwrap()
            .contains("failed"),
        "{trail}"
    );
    assert_eq!(on_broken[1]["after"]["enabled"], false);
    let on_gone: Vec<&Value> = events
        .iter()
        .filter(|e| e["target"]["id"] == gone_id.as_str())
        .collect();
    assert_eq!(on_gone.len(), 1, "{trail}");
    assert!(on_gone[0]["actor"]["reason"]
        .as_str()
        .unwrap()
        .contains("410"));
}

#[test]
fn keys_revoked_and_expiring_are_delivered_once_each() {
    let plane = Plane::new();
    let (webhooks, workers) = plane.webhooks(quick);
    let admin = plane.member("acme", Role::Administrator);
    let receiver = Receiver::start(&plane.runtime);
    let (_, secret) = endpoint(
        &plane,
        &admin,
        &receiver.url("/keys"),
        "live",
        &["api_key.revoked", "api_key.expiring"],
    );
    let test_receiver = Receiver::start(&plane.runtime);
    endpoint(
        &plane,
        &admin,
        &test_receiver.url("/test-keys"),
        "test",
        &["api_key.revoked"],
    );

    // A key 7 days from expiry: the daily sweep, run twice, makes one event.
    let expires = (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339();
    let reply = plane.post(
        "/v1/org/api-keys",
        &admin.token,
        json!({"label": "expiring", "scopes": ["customers:read"], "expires_at": expires}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let expiring_id = reply.json()["id"].as_str().unwrap().to_owned();
    // One far from expiry, which the sweep leaves alone.
    let reply = plane.post(
        "/v1/org/api-keys",
        &admin.token,
        json!({"label": "later", "scopes": ["customers:read"], "expires_at": (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339()}),
    );
    assert_eq!(reply.status, 201);
    // The daily sweep, as its own function.
    let sweep = webhooks.signing_as(infra::webhook_workers::EXPIRING_FUNCTION);
    let keys = plane
        .app
        .keys
        .signing_as(infra::webhook_workers::EXPIRING_FUNCTION);
    for _ in 0..2 {
        plane
            .runtime
            .block_on(
                std::sync::Arc::new(sweep.clone())
                    .expiring(&keys, tokio::time::Instant::now() + Duration::from_secs(30)),
            )
            .unwrap();
    }
    let got = receiver.wait_for(1);
    assert_eq!(got[0].kind(), "api_key.expiring");
    assert_eq!(got[0].json()["data"]["object"]["id"], json!(expiring_id));
    // On the audit trail once, by the platform, however often the sweep ran; the key far
    // from expiry not at all.
    let noticed = plane
        .get(
            "/v1/org/audit-events?action=api_key.expiry_notified",
            &admin.token,
        )
        .json();
    let noticed = noticed["data"].as_array().unwrap();
    assert_eq!(noticed.len(), 1, "{noticed:?}");
    assert_eq!(noticed[0]["target"]["id"], json!(expiring_id));
    assert_eq!(noticed[0]["actor"]["type"], "platform");
    assert_eq!(noticed[0]["actor"]["id"], "key_expiry");

    // Revoked: one event, to the live endpoint only.
    let revoked = plane.post(
        &format!("/v1/org/api-keys/{expiring_id}/revoke"),
        &admin.token,
        json!({}),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let got = receiver.wait_for(2);
    assert_eq!(got[1].kind(), "api_key.revoked");
    assert_eq!(got[1].json()["data"]["object"]["id"], json!(expiring_id));
    assert!(got[1].json()["data"]["object"]["revoked_at"].is_string());
    assert_eq!(verified_by("node", &secret, &got).unwrap().len(), 2);
    // Keys in use (their rate counters write the keys table) make no events.
    let used = key(&plane, &admin, "live");
    for _ in 0..3 {
        assert_eq!(plane.get("/v1/customers", &used).status, 200);
    }
    plane.settle(&workers, Duration::ZERO);
    assert_eq!(
        receiver.received().len(),
        2,
        "{:?}",
        receiver
            .received()
            .iter()
            .map(Received::kind)
            .collect::<Vec<_>>()
    );
    assert!(
        test_receiver.received().is_empty(),
        "a live key's events stay live"
    );
}

#[test]
fn members_list_deliveries_with_their_attempts_and_resend_one() {
    let plane = Plane::new();
    let (_webhooks, _workers) = plane.webhooks(|w| {
        w.retry_schedule = vec![Duration::from_millis(200)];
    });
    let admin = plane.member("acme", Role::Administrator);
    let analyst = plane.member("acme", Role::Analyst);
    let stranger = plane.member("globex", Role::Administrator);
    let receiver = Receiver::start(&plane.runtime);
    // Two failures use the whole (shortened) schedule: the delivery ends failed.
    receiver.script(vec![Answer::status(500), Answer::status(502)]);
    let (endpoint_id, secret) = endpoint(
        &plane,
        &admin,
        &receiver.url("/hook"),
        "live",
        &["customer.created"],
    );
    let live = key(&plane, &admin, "live");
    create_customer(&plane, &live, "crm-1");
    wait_deliveries(&plane, &endpoint_id, "the first delivery failed", |d| {
        d.len() == 1 && d[0].status == DeliveryStatus::Failed
    });
    create_customer(&plane, &live, "crm-2");
    wait_deliveries(&plane, &endpoint_id, "one failed, one succeeded", |d| {
        d.len() == 2 && d.iter().all(|d| d.status != DeliveryStatus::Pending)
    });

    let path = format!("/v1/org/webhook-endpoints/{endpoint_id}/deliveries");
    let listed = plane.get(&path, &admin.token);
    assert_eq!(listed.status, 200, "{}", listed.body);
    let listed = listed.json();
    let data = listed["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert!(
        data[0]["created_at"].as_str() >= data[1]["created_at"].as_str(),
        "newest first"
    );
    assert!(
        data.iter().all(|d| d.get("payload").is_none()),
        "never the payload"
    );
    let failed: Vec<&Value> = data.iter().filter(|d| d["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{listed:#}");
    let failed = failed[0].clone();
    let codes: Vec<&Value> = failed["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, [&json!(500), &json!(502)]);
    assert!(failed["attempts"][0]["latency_ms"].is_u64());
    assert!(failed["attempts"][0]["error"]
        .as_str()
        .unwrap()
        .contains("receiver says 500"));
    // Filters and pages.
    let only_failed = plane
        .get(&format!("{path}?status=failed"), &admin.token)
        .json();
    assert_eq!(only_failed["data"].as_array().unwrap().len(), 1);
    let first = plane.get(&format!("{path}?limit=1"), &admin.token).json();
    assert_eq!(first["has_more"], true);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = plane
        .get(&format!("{path}?limit=1&cursor={cursor}"), &admin.token)
        .json();
    assert_eq!(second["has_more"], false);
    assert_ne!(first["data"][0]["id"], second["data"][0]["id"]);
    plane
        .get(&format!("{path}?status=lost"), &admin.token)
        .assert_error(400, "invalid_request");

    // Re-send: one more attempt with the same webhook-id, marked as a re-send.
    let id = failed["id"].as_str().unwrap();
    let resend = format!("{path}/{id}/resend");
    let before = receiver.received().len();
    let reply = plane.post(&resend, &admin.token, json!({}));
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.json()["status"], "pending");
    let got = receiver.wait_for(before + 1);
    let again = got.last().unwrap();
    assert_eq!(again.id(), id);
    assert_eq!(
        verified_by("python", &secret, &got[before..])
            .unwrap()
            .len(),
        1
    );
    let done = wait_deliveries(&plane, &endpoint_id, "the re-send recorded", |d| {
        d.iter()
            .any(|d| d.delivery_id == id && d.status == DeliveryStatus::Succeeded)
    });
    let resent = done.iter().find(|d| d.delivery_id == id).unwrap();
    assert_eq!(resent.attempts.len(), 3);
    assert!(resent.attempts[2].resend && !resent.attempts[0].resend);

    // Refusals: another org, a role without org.api-keys, an unknown or malformed id.
    assert_eq!(plane.get(&path, &stranger.token).status, 404);
    assert_eq!(plane.post(&resend, &stranger.token, json!({})).status, 404);
    plane
        .get(&path, &analyst.token)
        .assert_error(403, "forbidden_permission");
    plane
        .post(
            &format!("{path}/msg_00000000000000000000000000000000/resend"),
            &admin.token,
            json!({}),
        )
        .assert_error(404, "not_found");
    plane
        .post(&format!("{path}/nope/resend"), &admin.token, json!({}))
        .assert_error(404, "not_found");
    plane
        .post(&resend, &admin.token, json!({"now": true}))
        .assert_error(400, "invalid_request");
    // A disabled endpoint's deliveries wait until it is enabled again.
    plane.patch(
        &format!("/v1/org/webhook-endpoints/{endpoint_id}"),
        &admin.token,
        json!({"enabled": false}),
    );
    plane
        .post(&resend, &admin.token, json!({}))
        .assert_error(409, "conflict");
}

#[test]
fn an_endpoint_delivers_no_more_than_its_creator_may_now_see() {
    let plane = Plane::new();
    let (_webhooks, workers) = plane.webhooks(quick);
    let admin = plane.member("acme", Role::Administrator);
    let officer = plane.member("acme", Role::Administrator);
    let witness = Receiver::start(&plane.runtime);
    let by_member = Receiver::start(&plane.runtime);
    let by_key = Receiver::start(&plane.runtime);
    let created = ["customer.created"];
    endpoint(&plane, &admin, &witness.url("/w"), "live", &created);
    let (member_endpoint, _) = endpoint(&plane, &officer, &by_member.url("/m"), "live", &created);
    let (key_id, zap_key) = plane.create_key(
        &admin,
        &[
            shared::keys::scope::Scope::WebhooksWrite,
            shared::keys::scope::Scope::CustomersRead,
            shared::keys::scope::Scope::AmlRead,
        ],
    );
    let reply = crate::helpers::http::post(
        &plane.url("/v1/webhook_endpoints"),
        &zap_key,
        None,
        &json!({"url": by_key.url("/k"), "events": created}).to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let key_endpoint = reply.json()["id"].as_str().unwrap().to_owned();
    let live = key(&plane, &admin, "live");

    // As made: AML for both (an administrator; a key with aml:read).
    create_customer(&plane, &live, "crm-1");
    witness.wait_for(1);
    assert!(by_member.wait_for(1)[0].json()["data"]["object"]["aml"].is_object());
    assert!(by_key.wait_for(1)[0].json()["data"]["object"]["aml"].is_object());

    // The officer is demoted to developer (no aml.read): AML stops at once.
    let demoted = plane.patch(
        &format!("/v1/org/members/{}", officer.member.id),
        &admin.token,
        json!({"role": "developer"}),
    );
    assert_eq!(demoted.status, 200, "{}", demoted.body);
    create_customer(&plane, &live, "crm-2");
    witness.wait_for(2);
    let second = by_member.wait_for(2)[1].json();
    assert_eq!(second["data"]["object"]["external_id"], "crm-2");
    assert!(
        second["data"]["object"].get("aml").is_none(),
        "no AML after the demotion: {second}"
    );
    // The key's own scopes are unchanged (its creator kept aml.read): AML still.
    let by_key_second = by_key.wait_for(2)[1].json();
    assert!(by_key_second["data"]["object"]["aml"].is_object());

    // The key is revoked and the officer deactivated: their endpoints are disabled, with
    // the reason, and get nothing more.
    let revoked = plane.post(
        &format!("/v1/org/api-keys/{key_id}/revoke"),
        &admin.token,
        json!({}),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let gone = plane.post(
        &format!("/v1/org/members/{}/deactivate", officer.member.id),
        &admin.token,
        json!({}),
    );
    assert_eq!(gone.status, 200, "{}", gone.body);
    create_customer(&plane, &live, "crm-3");
    witness.wait_for(3);
    // Idle past a retry slot (300 ms): no first attempt or retry is left to send.
    plane.settle(&workers, Duration::from_millis(300));
    assert_eq!(
        by_key.received().len(),
        2,
        "nothing on a revoked key's behalf"
    );
    assert_eq!(
        by_member.received().len(),
        2,
        "nothing on a deactivated member's behalf"
    );
    let k = plane
        .get(
            &format!("/v1/org/webhook-endpoints/{key_endpoint}"),
            &admin.token,
        )
        .json();
    assert_eq!(k["enabled"], false, "{k}");
    assert!(
        k["disabled_reason"].as_str().unwrap().contains(&key_id),
        "{k}"
    );
    let m = plane
        .get(
            &format!("/v1/org/webhook-endpoints/{member_endpoint}"),
            &admin.token,
        )
        .json();
    assert_eq!(m["enabled"], false, "{m}");
    assert!(
        m["disabled_reason"]
            .as_str()
            .unwrap()
            .contains(&officer.email),
        "{m}"
    );
}

/// A name whose address changes between lookups (DNS rebinding), whatever the name.
#[derive(Debug, Default)]
struct Rebinding(std::sync::Mutex<Vec<std::net::IpAddr>>);

impl Rebinding {
    fn point_to(&self, ip: &str) {
        *self.0.lock().unwrap() = vec![ip.parse().unwrap()];
    }
}

impl shared::webhooks::target::Resolve for Rebinding {
    fn resolve<'a>(
        &'a self,
        _host: &'a str,
        port: u16,
    ) -> shared::webhooks::target::Resolution<'a> {
        let found = self.0.lock().unwrap().clone();
        Box::pin(async move {
            Ok(found
                .into_iter()
                .map(|ip| std::net::SocketAddr::new(ip, port))
                .collect())
        })
    }
}

#[test]
fn the_guard_refuses_a_delivery_whose_name_now_resolves_inward() {
    // As deployed, private targets refused: the endpoint's name resolved to a public
    // address when it was saved, and resolves to loopback, where a receiver listens, when
    // its events go. Every attempt is refused at connect time and recorded as such.
    let dns = std::sync::Arc::new(Rebinding::default());
    dns.point_to("93.184.215.14");
    let plane = Plane::with_targets(shared::webhooks::target::TargetGuard {
        allow_private: false,
        resolver: dns.clone(),
    });
    let admin = plane.member("acme", Role::Administrator);
    let receiver = Receiver::start(&plane.runtime);
    let url = format!("https://hooks.example.com:{}/hook", receiver.port);
    let (endpoint_id, _) = endpoint(&plane, &admin, &url, "live", &["customer.created"]);
    dns.point_to("127.0.0.1");
    // Saved now, the same URL is refused outright.
    let refused = plane.post(
        "/v1/org/webhook-endpoints",
        &admin.token,
        json!({"url": url, "events": ["customer.created"], "mode": "live"}),
    );
    let body = refused.assert_error(400, "invalid_request");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "{body}"
    );

    let (_webhooks, workers) = plane.webhooks(|w| {
        w.retry_schedule = vec![Duration::from_millis(200)];
    });
    let live = key(&plane, &admin, "live");
    create_customer(&plane, &live, "crm-rebound");
    let done = wait_deliveries(&plane, &endpoint_id, "both attempts made", |d| {
        d.len() == 1 && d[0].status == DeliveryStatus::Failed
    });
    assert_eq!(done[0].attempts.len(), 2, "{done:#?}");
    for attempt in &done[0].attempts {
        assert_eq!(attempt.status_code, None, "{attempt:?}");
        let error = attempt.error.as_deref().unwrap_or_default();
        assert!(
            error.contains("127.0.0.1"),
            "the refused address is named: {error}"
        );
    }
    plane.settle(&workers, Duration::ZERO);
    assert_eq!(
        receiver.connections(),
        0,
        "nothing connected to the receiver"
    );
}

#[test]
fn the_sweep_and_the_retrier_check_a_keys_endpoint_against_its_key_at_each_attempt() {
    // An endpoint a key made (as a Zapier REST hook does) for api_key.expiring: the daily
    // sweep's first attempt fails and marks the endpoint failing; the retrier's retry
    // succeeds and clears it. Each attempt looks the key up (still live, still allowed).
    let plane = Plane::new();
    let (webhooks, _workers) = plane.webhooks(quick);
    let admin = plane.member("acme", Role::Administrator);
    let receiver = Receiver::start(&plane.runtime);
    receiver.script(vec![Answer::status(503)]);
    let (_, hook_key) = plane.create_key(&admin, &[shared::keys::scope::Scope::WebhooksWrite]);
    let reply = crate::helpers::http::post(
        &plane.url("/v1/webhook_endpoints"),
        &hook_key,
        None,
        &json!({"url": receiver.url("/expiring"), "events": ["api_key.expiring"]}).to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let endpoint_id = reply.json()["id"].as_str().unwrap().to_owned();
    let expires = (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339();
    let expiring = plane.post(
        "/v1/org/api-keys",
        &admin.token,
        json!({"label": "expiring", "scopes": ["customers:read"], "expires_at": expires}),
    );
    assert_eq!(expiring.status, 201, "{}", expiring.body);
    let sweep = webhooks.signing_as(infra::webhook_workers::EXPIRING_FUNCTION);
    let keys = plane
        .app
        .keys
        .signing_as(infra::webhook_workers::EXPIRING_FUNCTION);
    plane
        .runtime
        .block_on(
            std::sync::Arc::new(sweep)
                .expiring(&keys, tokio::time::Instant::now() + Duration::from_secs(30)),
        )
        .unwrap();
    let got = receiver.wait_for(2);
    assert_eq!(got[0].id(), got[1].id(), "the retry keeps the webhook-id");
    assert_eq!(got[1].kind(), "api_key.expiring");
    let done = wait_deliveries(&plane, &endpoint_id, "the retry recorded", |d| {
        d.len() == 1 && d[0].status == DeliveryStatus::Succeeded
    });
    assert_eq!(done[0].attempts.len(), 2, "{done:#?}");
    assert_eq!(done[0].attempts[0].status_code, Some(503));
}

/// Finding 1 of the data-flow review: whoever points an endpoint answers for what it
/// carries. A developer (no `aml.read`) who re-points an administrator's endpoint re-binds
/// it: AML goes no further, not in new deliveries and not in re-sends of stored ones; and
/// what they may not see they can neither keep receiving, nor read the secret of.
#[test]
fn an_endpoint_re_pointed_carries_only_what_its_new_binding_may_see() {
    let plane = Plane::new();
    let (_webhooks, workers) = plane.webhooks(quick);
    let admin = plane.member("acme", Role::Administrator);
    let developer = plane.member("acme", Role::Developer);
    let officers = Receiver::start(&plane.runtime);
    let theirs = Receiver::start(&plane.runtime);
    let events = ["customer.created", "customer.updated", "customer.verified"];
    let (endpoint_id, _) = endpoint(&plane, &admin, &officers.url("/o"), "live", &events);
    let path = format!("/v1/org/webhook-endpoints/{endpoint_id}");
    let live = key(&plane, &admin, "live");
    create_customer(&plane, &live, "crm-1");
    let first = officers.wait_for(1)[0].clone();
    assert!(
        first.json()["data"]["object"]["aml"].is_object(),
        "{}",
        first.json()
    );

    // Not theirs to read: the secret of an endpoint carrying AML.
    plane
        .get(&format!("{path}/secret"), &developer.token)
        .assert_error(403, "forbidden_permission");
    plane
        .post(
            &format!("{path}/rotate-secret"),
            &developer.token,
            json!({}),
        )
        .assert_error(403, "forbidden_permission");

    // Re-pointing while keeping customer.verified (an AML result) is refused, naming it,
    // and changes nothing.
    let refused = plane.patch(&path, &developer.token, json!({"url": theirs.url("/t")}));
    let error = refused.assert_error(403, "forbidden_permission");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("customer.verified"),
        "{error}"
    );
    assert_eq!(error["error"]["param"], "events");
    let unchanged = plane.get(&path, &admin.token).json();
    assert_eq!(unchanged["url"], officers.url("/o"));
    assert_eq!(unchanged["includes_aml"], true);

    // Re-pointed with what they may receive: bound to them, no AML.
    let repointed = plane.patch(
        &path,
        &developer.token,
        json!({"url": theirs.url("/t"), "events": ["customer.created", "customer.updated"]}),
    );
    assert_eq!(repointed.status, 200, "{}", repointed.body);
    let body = repointed.json();
    assert_eq!(body["includes_aml"], false, "{body}");
    assert_eq!(
        body["bound_to"]["id"],
        developer.member.id.as_str(),
        "{body}"
    );
    assert_eq!(body["created_by"]["id"], admin.member.id.as_str(), "{body}");
    assert!(body["bound_at"].is_string(), "{body}");

    // A re-send of the delivery stored with AML reaches the new URL without it.
    let resend = plane.post(
        &format!("{path}/deliveries/{}/resend", first.id()),
        &developer.token,
        json!({}),
    );
    assert_eq!(resend.status, 202, "{}", resend.body);
    let resent = theirs.wait_for(1)[0].clone();
    assert_eq!(resent.id(), first.id());
    assert_eq!(resent.json()["data"]["object"]["external_id"], "crm-1");
    assert!(
        resent.json()["data"]["object"].get("aml").is_none(),
        "the stored AML stays behind: {}",
        resent.json()
    );
    // And so does every new one; the old URL hears nothing more.
    create_customer(&plane, &live, "crm-2");
    let new = theirs.wait_for(2)[1].json();
    assert_eq!(new["data"]["object"]["external_id"], "crm-2");
    assert!(new["data"]["object"].get("aml").is_none(), "{new}");
    plane.settle(&workers, Duration::from_millis(300));
    assert_eq!(officers.received().len(), 1);
    // Now it carries nothing beyond them: the secret is theirs.
    assert_eq!(
        plane
            .get(&format!("{path}/secret"), &developer.token)
            .status,
        200
    );

    // The administrator points it back: bound to them, AML again.
    let back = plane.patch(&path, &admin.token, json!({"url": officers.url("/o")}));
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(back.json()["includes_aml"], true);
    assert_eq!(back.json()["bound_to"]["id"], admin.member.id.as_str());
    // A description or enabled change is not a re-binding.
    let described = plane.patch(&path, &developer.token, json!({"description": "ours"}));
    assert_eq!(described.status, 200, "{}", described.body);
    assert_eq!(described.json()["bound_to"]["id"], admin.member.id.as_str());
    assert_eq!(described.json()["includes_aml"], true);

    // Edits racing each other: whichever lands last binds it, and what it carries always
    // matches whoever that is (never the developer's URL with the administrator's AML).
    std::thread::scope(|s| {
        for i in 0..8 {
            let (who, url) = if i % 2 == 0 {
                (&admin, officers.url("/o"))
            } else {
                (&developer, theirs.url("/t"))
            };
            let plane = &plane;
            let path = &path;
            s.spawn(move || {
                let reply = plane.patch(path, &who.token, json!({"url": url}));
                assert!(
                    reply.status == 200 || reply.status == 409,
                    "{} {}",
                    reply.status,
                    reply.body
                );
            });
        }
    });
    let settled = plane.get(&path, &admin.token).json();
    let to_developer = settled["bound_to"]["id"] == developer.member.id.as_str();
    assert_eq!(settled["includes_aml"], !to_developer, "{settled}");
    let url = if to_developer {
        theirs.url("/t")
    } else {
        officers.url("/o")
    };
    assert_eq!(settled["url"], url, "{settled}");
    let (receiver, before) = if to_developer {
        (&theirs, theirs.received().len())
    } else {
        (&officers, officers.received().len())
    };
    create_customer(&plane, &live, "crm-3");
    let got = receiver.wait_for(before + 1)[before].json();
    assert_eq!(got["data"]["object"]["external_id"], "crm-3");
    assert_eq!(
        got["data"]["object"]["aml"].is_object(),
        !to_developer,
        "{got}"
    );
}

/// The same rule for keys: a key holding only `webhooks:write` may not take over the
/// endpoint of a `customers:read` key (it would receive customers it may not read).
#[test]
fn a_key_may_not_re_point_an_endpoint_to_carry_what_it_may_not_read() {
    use shared::keys::scope::Scope;
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let receiver = Receiver::start(&plane.runtime);
    let (_, reader) = plane.create_key(&admin, &[Scope::WebhooksWrite, Scope::CustomersRead]);
    let (_, hooks_only) = plane.create_key(&admin, &[Scope::WebhooksWrite]);
    let made = crate::helpers::http::post(
        &plane.url("/v1/webhook_endpoints"),
        &reader,
        None,
        &json!({"url": receiver.url("/r"), "events": ["customer.created"]}).to_string(),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let url = plane.url(&format!(
        "/v1/webhook_endpoints/{}",
        made.json()["id"].as_str().unwrap()
    ));
    let taken = crate::helpers::http::patch(
        &url,
        &hooks_only,
        &json!({"url": receiver.url("/attacker")}).to_string(),
    );
    let error = taken.assert_error(403, "forbidden_scope");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("customer.created") && message.contains("customers:read"),
        "{message}"
    );
    assert_eq!(
        crate::helpers::http::get(&url, &reader).json()["url"],
        receiver.url("/r")
    );
    // customer.verified states an AML result: a key without aml:read can't subscribe to it.
    let verified = crate::helpers::http::post(
        &plane.url("/v1/webhook_endpoints"),
        &reader,
        None,
        &json!({"url": receiver.url("/v"), "events": ["customer.verified"]}).to_string(),
    );
    let error = verified.assert_error(403, "forbidden_scope");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("aml:read"),
        "{error}"
    );
}
