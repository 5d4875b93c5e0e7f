//! The API keys table against DynamoDB Local.

use chrono::Duration;
use shared::keys::scope::Scope;
use shared::keys::table::NewApiKey;
use shared::org::OrgId;
use shared::time;

use crate::helpers::{scopes, TestEnv};
use shared::keys::table::{CountedKey, Lookup};

#[tokio::test]
async fn an_issued_key_is_found_by_its_hash_and_listed_for_its_org_only() {
    let env = TestEnv::new().await;
    let issued = env
        .issue_key("acme", &[Scope::CustomersRead], &["10.0.0.0/8"])
        .await;
    let other = env.issue_key("globex", &[Scope::AmlRead], &[]).await;

    let found = env
        .app
        .keys
        .find_by_hash(&issued.token.hash())
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(found, issued.record);
    assert_eq!(found.prefix, &issued.token.expose_secret()[..12]);
    assert_eq!(found.last4, &issued.token.expose_secret()[42..]);
    assert_eq!(found.scopes, scopes(&[Scope::CustomersRead]));
    assert_eq!(found.ip_allowlist.to_strings(), ["10.0.0.0/8"]);

    let acme = env
        .app
        .keys
        .list_for_org(&OrgId::parse("acme").unwrap())
        .await
        .unwrap();
    assert_eq!(
        acme.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        [issued.record.id.as_str()]
    );
    let globex = env
        .app
        .keys
        .list_for_org(&OrgId::parse("globex").unwrap())
        .await
        .unwrap();
    assert_eq!(
        globex.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        [other.record.id.as_str()]
    );
    assert!(env
        .app
        .keys
        .list_for_org(&OrgId::parse("nobody").unwrap())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn revoke_is_scoped_to_the_org_and_idempotent() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let acme = OrgId::parse("acme").unwrap();
    let globex = OrgId::parse("globex").unwrap();

    assert_eq!(
        env.app
            .keys
            .revoke(&globex, &key.record.id, time::now())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        env.app
            .keys
            .revoke(&acme, "key_doesnotexist", time::now())
            .await
            .unwrap(),
        None
    );
    let still = env
        .app
        .keys
        .find_by_hash(&key.token.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        still.revoked_at, None,
        "another org's revoke must not touch the key"
    );

    let at = time::now();
    let revoked = env
        .app
        .keys
        .revoke(&acme, &key.record.id, at)
        .await
        .unwrap()
        .expect("own key");
    assert_eq!(revoked.revoked_at, Some(at));
    let again = env
        .app
        .keys
        .revoke(&acme, &key.record.id, at + Duration::seconds(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.revoked_at,
        Some(at),
        "the first revocation time is kept"
    );
    let listed = env.app.keys.list_for_org(&acme).await.unwrap();
    assert_eq!(listed.len(), 1, "revoked keys stay listed");
    assert_eq!(listed[0].status(time::now()), "revoked");
}

#[tokio::test]
async fn last_used_is_written_at_most_once_a_minute() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let hash = key.token.hash();
    let t0 = time::now();
    let last_used = || async {
        env.app
            .keys
            .find_by_hash(&hash)
            .await
            .unwrap()
            .unwrap()
            .last_used_at
    };

    let ip: std::net::IpAddr = "203.0.113.9".parse().unwrap();
    env.app
        .keys
        .record_use(&hash, t0, Some(ip), &[])
        .await
        .unwrap();
    assert_eq!(last_used().await, Some(t0));
    env.app
        .keys
        .record_use(&hash, t0 + Duration::seconds(30), None, &[])
        .await
        .unwrap();
    assert_eq!(
        last_used().await,
        Some(t0),
        "a write within the minute is refused by the condition"
    );
    env.app
        .keys
        .record_use(&hash, t0 + Duration::seconds(61), None, &[])
        .await
        .unwrap();
    assert_eq!(last_used().await, Some(t0 + Duration::seconds(61)));
}

#[tokio::test]
async fn the_plaintext_never_reaches_the_table() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let secret = key.token.expose_secret();
    let scan = env
        .client
        .scan()
        .table_name(&env.tables.api_keys)
        .send()
        .await
        .unwrap();
    let items = scan.items.unwrap_or_default();
    assert_eq!(items.len(), 1);
    let dump = format!("{:?}", items[0]);
    assert!(
        dump.contains(&key.record.id),
        "the dump is of the right item"
    );
    assert!(!dump.contains(secret));
    // Nor its secret part alone (everything after the 12 stored prefix characters).
    assert!(!dump.contains(&secret[12..]));
    assert!(!dump.contains(&secret[8..40]));
}

#[tokio::test]
async fn a_hash_collision_cannot_overwrite_a_key() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let mut forged = key.record.clone();
    forged.org_id = OrgId::parse("mallory").unwrap();
    assert!(env.app.keys.put_new(&forged).await.is_err());
    let stored = env
        .app
        .keys
        .find_by_hash(&key.token.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.org_id.as_str(), "acme");
}

#[tokio::test]
async fn new_key_requests_are_validated_before_storage() {
    let now = time::now();
    let past = time::format(&(now - Duration::seconds(1)));
    let scopes = vec!["customers:read".to_owned()];
    assert!(NewApiKey::parse("acme", "x", &scopes, Some(&past), &[], "t", now).is_err());
}

fn counted(lookup: Lookup) -> CountedKey {
    match lookup {
        Lookup::Counted(counted) => counted,
        other => panic!("a live key: {other:?}"),
    }
}

/// The key's item as stored.
async fn stored_item(
    env: &TestEnv,
    hash: &shared::keys::token::KeyHash,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    env.client
        .get_item()
        .table_name(&env.tables.api_keys)
        .key(
            "key_hash",
            aws_sdk_dynamodb::types::AttributeValue::S(hex::encode(hash.as_bytes())),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap()
}

/// The key's stored item without its per-second counters.
async fn record_attributes(
    env: &TestEnv,
    hash: &shared::keys::token::KeyHash,
) -> std::collections::BTreeMap<String, String> {
    stored_item(env, hash)
        .await
        .into_iter()
        .filter(|(k, _)| !k.starts_with("rl_"))
        .map(|(k, v)| (k, format!("{v:?}")))
        .collect()
}

/// The source the counting tests call from.
fn here() -> shared::keys::ip_allowlist::SourceBucket {
    shared::keys::ip_allowlist::SourceBucket::of(Some("203.0.113.7".parse().unwrap()))
}

/// The counter window of `here()` at `at`.
fn window(at: shared::time::Timestamp) -> String {
    format!("rl_{}_203.0.113.7", at.timestamp())
}

async fn windows_on(env: &TestEnv, hash: &shared::keys::token::KeyHash) -> Vec<String> {
    let item = stored_item(env, hash).await;
    let mut windows: Vec<String> = item
        .keys()
        .filter(|k| k.starts_with("rl_"))
        .cloned()
        .collect();
    windows.sort();
    windows
}

#[tokio::test]
async fn one_call_finds_a_key_and_counts_its_requests_per_second() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let hash = key.token.hash();
    let t0 = time::parse("2026-11-23T10:00:00.100Z").unwrap();
    for expected in 1..=3u64 {
        let found = counted(
            env.app
                .keys
                .find_and_count(&hash, t0, &here())
                .await
                .unwrap(),
        );
        assert_eq!(found.own, expected);
        assert_eq!(found.allowed_count(), expected);
        assert_eq!(found.record.id, key.record.id);
        assert_eq!(found.record.key_hash, hash);
    }
    assert_eq!(
        env.calls.take(),
        ["UpdateItem", "UpdateItem", "UpdateItem"],
        "one call each"
    );
    // The next second starts again at 1; the previous one is kept (an instance whose clock
    // is a little behind may still count in it).
    let t1 = t0 + Duration::milliseconds(1000);
    assert_eq!(
        counted(
            env.app
                .keys
                .find_and_count(&hash, t1, &here())
                .await
                .unwrap()
        )
        .own,
        1
    );
    assert_eq!(windows_on(&env, &hash).await, [window(t0), window(t1)]);
    // Two seconds on, the older one goes with the counting write itself.
    let t3 = t1 + Duration::seconds(2);
    let found = counted(
        env.app
            .keys
            .find_and_count(&hash, t3, &here())
            .await
            .unwrap(),
    );
    assert!(found.old_windows.is_empty());
    assert_eq!(
        windows_on(&env, &hash).await,
        [window(t3)],
        "{t1} removed, nothing else"
    );
    // After an idle gap longer than a minute, the last active window is left over: reported,
    // and pruned by the last-use write (or `prune_windows` on a refusal).
    let later = t3 + Duration::seconds(120);
    let found = counted(
        env.app
            .keys
            .find_and_count(&hash, later, &here())
            .await
            .unwrap(),
    );
    assert_eq!(found.own, 1);
    assert_eq!(found.old_windows, [window(t3)]);
    env.app
        .keys
        .record_use(&hash, later, None, &found.old_windows)
        .await
        .unwrap();
    assert_eq!(windows_on(&env, &hash).await, [window(later)]);
    let much_later = later + Duration::seconds(300);
    let found = counted(
        env.app
            .keys
            .find_and_count(&hash, much_later, &here())
            .await
            .unwrap(),
    );
    env.app
        .keys
        .prune_windows(&hash, &found.old_windows)
        .await
        .unwrap();
    assert_eq!(windows_on(&env, &hash).await, [window(much_later)]);

    // An unknown key is not found, and nothing is written for it.
    let stranger = shared::keys::token::ApiKeyToken::generate(shared::org::Mode::Live)
        .unwrap()
        .hash();
    assert_eq!(
        env.app
            .keys
            .find_and_count(&stranger, t0, &here())
            .await
            .unwrap(),
        Lookup::Unknown
    );
    assert_eq!(env.item_count(&env.tables.api_keys).await, 1);
}

#[tokio::test]
async fn revoked_and_expired_keys_are_identified_and_only_their_own_counters_written() {
    // The authenticating call may name only the key, the counters and the last-use fields
    // (the functions' IAM policy, which covers its condition too): revocation and expiry
    // are decided from the item it returns. A dead key's attempts are counted in its own
    // window, which no live caller shares; nothing else of it is written.
    let env = TestEnv::new().await;
    let revoked = env.full_key("acme").await;
    env.app
        .keys
        .revoke(&revoked.record.org_id, &revoked.record.id, time::now())
        .await
        .unwrap();
    let expired = env.full_key("acme").await;
    let mut record = expired.record.clone();
    let token = shared::keys::token::ApiKeyToken::generate(shared::org::Mode::Live).unwrap();
    record.id = "key_expired".into();
    record.key_hash = token.hash();
    record.expires_at = Some(time::now() - Duration::seconds(1));
    env.app.keys.put_new(&record).await.unwrap();
    for (hash, id) in [
        (revoked.token.hash(), revoked.record.id.clone()),
        (token.hash(), "key_expired".to_owned()),
    ] {
        let before = record_attributes(&env, &hash).await;
        for _ in 0..3 {
            match env
                .app
                .keys
                .find_and_count(&hash, time::now(), &here())
                .await
                .unwrap()
            {
                Lookup::Dead { record, .. } => assert_eq!(record.id, id),
                other => panic!("{id}: {other:?}"),
            }
        }
        assert_eq!(
            record_attributes(&env, &hash).await,
            before,
            "{id}: nothing but counters written"
        );
        assert!(
            !windows_on(&env, &hash).await.is_empty(),
            "{id}: the attempts were counted in the key's own window"
        );
    }
}
