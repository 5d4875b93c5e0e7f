//! The API keys table against DynamoDB Local.

use chrono::Duration;
use shared::keys::scope::Scope;
use shared::keys::table::NewApiKey;
use shared::org::OrgId;
use shared::time;

use crate::helpers::{scopes, TestEnv};

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

#[tokio::test]
async fn one_call_finds_a_key_and_counts_its_requests_per_second() {
    let env = TestEnv::new().await;
    let key = env.full_key("acme").await;
    let hash = key.token.hash();
    let t0 = time::parse("2026-11-23T10:00:00.100Z").unwrap();
    for expected in 1..=3u64 {
        let counted = env
            .app
            .keys
            .find_and_count(&hash, t0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(counted.count, expected);
        assert_eq!(counted.record.id, key.record.id);
        assert_eq!(counted.record.key_hash, hash);
    }
    assert_eq!(
        env.calls.take(),
        ["UpdateItem", "UpdateItem", "UpdateItem"],
        "one call each"
    );
    // The next second starts again at 1, and the window before it is removed with it.
    let t1 = t0 + Duration::milliseconds(1000);
    let counted = env
        .app
        .keys
        .find_and_count(&hash, t1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(counted.count, 1);
    assert!(counted.old_windows.is_empty(), "{:?}", counted.old_windows);
    // After an idle gap, the last active window is left over, and the last-use write takes it.
    let later = t1 + Duration::seconds(120);
    let counted = env
        .app
        .keys
        .find_and_count(&hash, later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(counted.count, 1);
    assert_eq!(counted.old_windows, [format!("rl_{}", t1.timestamp())]);
    env.app
        .keys
        .record_use(&hash, later, None, &counted.old_windows)
        .await
        .unwrap();
    let item = env
        .client
        .get_item()
        .table_name(&env.tables.api_keys)
        .key(
            "key_hash",
            aws_sdk_dynamodb::types::AttributeValue::S(hex::encode(hash.as_bytes())),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let windows: Vec<&String> = item.keys().filter(|k| k.starts_with("rl_")).collect();
    assert_eq!(windows, [&format!("rl_{}", later.timestamp())]);

    // An unknown key is not found, and nothing is written for it.
    let stranger = shared::keys::token::ApiKeyToken::generate().unwrap().hash();
    assert_eq!(
        env.app.keys.find_and_count(&stranger, t0).await.unwrap(),
        None
    );
    assert_eq!(env.item_count(&env.tables.api_keys).await, 1);
}
