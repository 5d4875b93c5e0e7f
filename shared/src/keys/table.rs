//! The API keys table: keyed by the SHA-256 of the key, with the `ByOrg` index for listing.
//! The plaintext never reaches this module's items.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::keys::ip_allowlist::{InvalidCidr, IpAllowlist, SourceBucket};
use crate::keys::leak::{Leak, RevocationReason};
use crate::keys::scope::{Scope, UnknownScope};
use crate::keys::token::{random_base62, ApiKeyToken, KeyHash};
use crate::org::{InvalidOrgId, OrgId};
use crate::storage::{classify, corrupt, service_code, unless_condition_failed, StorageError};
use crate::time::{self, Timestamp};

pub const BY_ORG_INDEX: &str = "ByOrg";
/// `last_used_at` is refreshed when the stored value is older than this.
pub const LAST_USED_WRITE_INTERVAL_SECS: i64 = 60;
pub const MAX_LABEL_CHARS: usize = 100;
/// Requests per second a key may make unless set otherwise, and the range it may be set to.
pub const DEFAULT_RATE_LIMIT_RPS: u32 = 50;
pub const MAX_RATE_LIMIT_RPS: u32 = 1000;
/// The per-second counters are attributes `rl_<epoch second>_<source>` of the key's own
/// item: one per source (an IPv4 address, an IPv6 /64), so a request refused for its source
/// is counted apart and never spends the allowed caller's budget. (`rl_<second>`, without a
/// source, is what keys counted before; only pruned now.)
const RATE_WINDOW_PREFIX: &str = "rl_";
/// The windows each counting write removes: from two seconds back (the previous second may
/// still be counting on an instance whose clock is a little behind) to a minute back.
/// Leftovers of longer idle gaps are pruned by a later request (`prune_windows`).
const RATE_WINDOWS_KEPT_BACK: i64 = 1;
const RATE_WINDOWS_CLEARED: i64 = 60;
/// Names one prune removes at most (an update expression is limited to 4 KB).
const MAX_WINDOWS_PRUNED: usize = 100;
const KEY_ID_PREFIX: &str = "key_";
/// Who `created_by` / `revoked_by` name for the operator tool.
pub const OPERATOR: &str = "operator";

/// A member's edit of a key (`PATCH /v1/org/api-keys/{id}`); `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyEdit {
    pub label: Option<String>,
    pub ip_allowlist: Option<IpAllowlist>,
    pub rate_limit_rps: Option<u32>,
    pub expires_at: Option<Timestamp>,
}
const KEY_ID_RANDOM_CHARS: usize = 20;

/// A stored key, as the verifier and the operator tool see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub org_id: OrgId,
    pub label: String,
    pub scopes: BTreeSet<Scope>,
    pub prefix: String,
    pub last4: String,
    pub key_hash: KeyHash,
    pub created_at: Timestamp,
    /// The member id of its creator (`operator` or `local-stack` for keys made by icadmin
    /// or `make run`), and their email at the time.
    pub created_by: String,
    pub created_by_email: Option<String>,
    /// The member who answers for the key now, when not its creator (keys transferred on a
    /// deactivation): whose role bounds its scopes.
    pub owned_by: Option<String>,
    pub owned_by_email: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub revoked_by: Option<String>,
    /// Why it was revoked; `None` for keys revoked before reasons were kept.
    pub revocation_reason: Option<RevocationReason>,
    /// Reported as leaked (found in public by a secret scanner), whatever its state then.
    pub leak: Option<Leak>,
    pub ip_allowlist: IpAllowlist,
    pub last_used_at: Option<Timestamp>,
    pub last_used_ip: Option<String>,
    pub rate_limit_rps: u32,
    /// The key this one replaced (roll), and the key that replaced this one.
    pub rolled_from: Option<String>,
    pub rolled_to: Option<String>,
}

/// A live key found by the authenticating call, with this second's request counts by
/// source (this request included) and the names of counter windows older than a minute
/// still on the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedKey {
    pub record: ApiKeyRecord,
    /// This second's count for each source seen, this request's own source among them.
    pub counts: Vec<(SourceBucket, u64)>,
    /// This second's count for this request's source.
    pub own: u64,
    pub old_windows: Vec<String>,
}

impl CountedKey {
    /// This second's requests from sources the key's allowlist permits: the budget the
    /// allowed caller spends. Each request from such a source sees a different total (the
    /// counting writes are serialised on the item), so exactly the limit get through.
    pub fn allowed_count(&self) -> u64 {
        self.counts
            .iter()
            .filter(|(bucket, _)| self.record.ip_allowlist.permits_bucket(bucket))
            .map(|(_, n)| n)
            .sum()
    }
}

/// What the authenticating call found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No key has this hash; nothing was written.
    Unknown,
    /// Revoked or expired: identified (for the audit trail), with this second's attempts
    /// from this source so far (counted in the key's own windows, which no live caller
    /// shares); nothing else of it written.
    Dead { record: ApiKeyRecord, own: u64 },
    /// A live key, counted.
    Counted(CountedKey),
}

/// `REMOVE` of the named counter windows, their names bound on `update`.
fn remove_windows(
    mut update: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    windows: &[&String],
) -> (
    aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    String,
) {
    let mut names = Vec::new();
    for (i, window) in windows.iter().enumerate() {
        let name = format!("#old{i}");
        update = update.expression_attribute_names(&name, window.as_str());
        names.push(name);
    }
    (update, format!("REMOVE {}", names.join(", ")))
}

/// Whether `text` is shaped like a key id (`key_` and letters and digits).
pub fn is_key_id(text: &str) -> bool {
    text.strip_prefix(KEY_ID_PREFIX).is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 60 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// The second of a counter window's name (`rl_<second>_<source>`, or an older `rl_<second>`).
fn window_second(name: &str) -> Option<i64> {
    let rest = name.strip_prefix(RATE_WINDOW_PREFIX)?;
    rest.split_once('_')
        .map_or(rest, |(second, _)| second)
        .parse()
        .ok()
}

fn window_name(second: i64, source: &SourceBucket) -> String {
    format!("{RATE_WINDOW_PREFIX}{second}_{}", source.name())
}

/// A window's second and source.
fn window_of(name: &str) -> Option<(i64, SourceBucket)> {
    let (second, source) = name.strip_prefix(RATE_WINDOW_PREFIX)?.split_once('_')?;
    Some((second.parse().ok()?, SourceBucket::parse(source)?))
}

impl ApiKeyRecord {
    pub fn status(&self, now: Timestamp) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else {
            "active"
        }
    }

    /// What an operator may see: everything but the hash (and the plaintext is never stored).
    pub fn to_public_json(&self, now: Timestamp) -> Value {
        let ts = |t: &Option<Timestamp>| t.as_ref().map(time::format);
        json!({
            "object": "api_key",
            "id": self.id,
            "org": self.org_id,
            "label": self.label,
            "scopes": self.scopes,
            "prefix": self.prefix,
            "last4": self.last4,
            "status": self.status(now),
            "mode": self.mode().as_str(),
            "created_at": time::format(&self.created_at),
            "created_by": {"id": self.created_by, "email": self.created_by_email},
            "owned_by": {"id": self.owner(), "email": self.owned_by_email.as_ref().or(self.created_by_email.as_ref())},
            "expires_at": ts(&self.expires_at),
            "revoked_at": ts(&self.revoked_at),
            "revoked_by": self.revoked_by_json(),
            "revocation_reason": self.revocation_reason.map(RevocationReason::as_str),
            "leak": self.leak.as_ref().map(Leak::to_json),
            "last_used_at": ts(&self.last_used_at),
            "last_used_ip": self.last_used_ip,
            "ip_allowlist": self.ip_allowlist.to_strings(),
            "rate_limit": {"requests_per_second": self.rate_limit_rps},
            "rolled_from": self.rolled_from,
            "rolled_to": self.rolled_to,
        })
    }

    /// Live for `ic_live_` keys, test for `ic_test_` keys.
    pub fn mode(&self) -> crate::org::Mode {
        crate::keys::token::mode_of_prefix(&self.prefix)
    }

    /// Who answers for the key: its creator unless it was transferred.
    pub fn owner(&self) -> &str {
        self.owned_by.as_deref().unwrap_or(&self.created_by)
    }

    /// Whether this request should refresh `last_used_at`.
    pub fn last_used_is_stale(&self, now: Timestamp) -> bool {
        self.last_used_at
            .is_none_or(|at| now - at >= Duration::seconds(LAST_USED_WRITE_INTERVAL_SECS))
    }
}

/// Why a key request is refused before anything is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKeyRequest {
    #[error(transparent)]
    Org(#[from] InvalidOrgId),
    #[error("label must be 1-{MAX_LABEL_CHARS} characters without control characters")]
    Label,
    #[error("at least one --scope is required")]
    NoScopes,
    #[error(transparent)]
    Scope(#[from] UnknownScope),
    #[error(transparent)]
    Cidr(#[from] InvalidCidr),
    #[error("expiry {0:?} is not an RFC 3339 timestamp such as 2027-01-31T00:00:00Z")]
    ExpirySyntax(String),
    #[error("expiry {0} is not in the future")]
    ExpiryInPast(String),
    #[error(
        "rate limit must be a whole number of requests per second from 1 to {MAX_RATE_LIMIT_RPS}"
    )]
    RateLimit,
}

/// A validated request to issue a key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub org_id: OrgId,
    pub label: String,
    pub scopes: BTreeSet<Scope>,
    pub expires_at: Option<Timestamp>,
    pub ip_allowlist: IpAllowlist,
    pub created_by: String,
    pub created_by_email: Option<String>,
    pub rate_limit_rps: u32,
    pub rolled_from: Option<String>,
    /// Live unless asked: test keys reach only the org's test data.
    pub mode: crate::org::Mode,
}

impl NewApiKey {
    /// The same request for a key of `mode`.
    pub fn with_mode(mut self, mode: crate::org::Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The same request with another rate limit (1-1000 requests per second).
    pub fn with_rate_limit(mut self, rps: u32) -> Result<Self, InvalidKeyRequest> {
        if !(1..=MAX_RATE_LIMIT_RPS).contains(&rps) {
            return Err(InvalidKeyRequest::RateLimit);
        }
        self.rate_limit_rps = rps;
        Ok(self)
    }

    pub fn parse(
        org: &str,
        label: &str,
        scopes: &[String],
        expires_at: Option<&str>,
        allow_ips: &[String],
        created_by: &str,
        now: Timestamp,
    ) -> Result<Self, InvalidKeyRequest> {
        let org_id = OrgId::parse(org)?;
        let label = label.trim();
        if label.is_empty()
            || label.chars().count() > MAX_LABEL_CHARS
            || label.chars().any(char::is_control)
        {
            return Err(InvalidKeyRequest::Label);
        }
        if scopes.is_empty() {
            return Err(InvalidKeyRequest::NoScopes);
        }
        let scopes = scopes
            .iter()
            .map(|s| s.parse())
            .collect::<Result<BTreeSet<Scope>, _>>()?;
        let expires_at = match expires_at {
            None => None,
            Some(text) => {
                let at = time::parse(text)
                    .ok_or_else(|| InvalidKeyRequest::ExpirySyntax(text.to_owned()))?;
                if at <= now {
                    return Err(InvalidKeyRequest::ExpiryInPast(time::format(&at)));
                }
                Some(at)
            }
        };
        Ok(Self {
            org_id,
            label: label.to_owned(),
            scopes,
            expires_at,
            ip_allowlist: IpAllowlist::parse(allow_ips)?,
            created_by: created_by.to_owned(),
            created_by_email: None,
            rate_limit_rps: DEFAULT_RATE_LIMIT_RPS,
            rolled_from: None,
            mode: crate::org::Mode::Live,
        })
    }
}

/// A freshly issued key: the only value that ever holds the plaintext next to its record.
#[derive(Debug)]
pub struct IssuedKey {
    pub record: ApiKeyRecord,
    pub token: ApiKeyToken,
}

impl IssuedKey {
    /// The creation response: the record plus, this once, the plaintext.
    pub fn to_json(&self, now: Timestamp) -> Value {
        let mut body = self.record.to_public_json(now);
        body["key"] = Value::String(self.token.expose_secret().to_owned());
        body
    }
}

/// The stored shape. Hashes are hex; optional attributes are absent rather than null.
#[derive(Debug, Serialize, Deserialize)]
struct KeyItem {
    key_hash: String,
    key_id: String,
    org_id: OrgId,
    label: String,
    scopes: Vec<Scope>,
    prefix: String,
    last4: String,
    created_at: String,
    created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_by_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owned_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owned_by_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revocation_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leaked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leak_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leak_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leak_dismissed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leak_dismissed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rolled_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rolled_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used_at: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ip_allowlist: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used_ip: Option<String>,
    /// Absent on keys made before rate limits: the default applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate_limit: Option<u32>,
}

impl KeyItem {
    fn from_record(r: &ApiKeyRecord) -> Self {
        let ts = |t: &Option<Timestamp>| t.as_ref().map(time::format);
        KeyItem {
            key_hash: hex::encode(r.key_hash.as_bytes()),
            key_id: r.id.clone(),
            org_id: r.org_id.clone(),
            label: r.label.clone(),
            scopes: r.scopes.iter().copied().collect(),
            prefix: r.prefix.clone(),
            last4: r.last4.clone(),
            created_at: time::format(&r.created_at),
            created_by: r.created_by.clone(),
            created_by_email: r.created_by_email.clone(),
            owned_by: r.owned_by.clone(),
            owned_by_email: r.owned_by_email.clone(),
            expires_at: ts(&r.expires_at),
            revoked_at: ts(&r.revoked_at),
            revoked_by: r.revoked_by.clone(),
            revocation_reason: r.revocation_reason.map(|why| why.as_str().to_owned()),
            leaked_at: r.leak.as_ref().map(|leak| time::format(&leak.reported_at)),
            leak_source: r.leak.as_ref().map(|leak| leak.source.clone()),
            leak_url: r.leak.as_ref().and_then(|leak| leak.url.clone()),
            leak_dismissed_at: r.leak.as_ref().and_then(|leak| ts(&leak.dismissed_at)),
            leak_dismissed_by: r.leak.as_ref().and_then(|leak| leak.dismissed_by.clone()),
            rolled_from: r.rolled_from.clone(),
            rolled_to: r.rolled_to.clone(),
            last_used_at: ts(&r.last_used_at),
            ip_allowlist: r.ip_allowlist.to_strings(),
            last_used_ip: r.last_used_ip.clone(),
            rate_limit: Some(r.rate_limit_rps),
        }
    }

    fn into_record(self) -> Result<ApiKeyRecord, StorageError> {
        let ts = |name: &str, t: &str| {
            time::parse(t).ok_or_else(|| corrupt("api key", format!("bad {name}")))
        };
        let opt_ts = |name: &str, t: &Option<String>| t.as_deref().map(|t| ts(name, t)).transpose();
        let key_hash = hex::decode(&self.key_hash)
            .ok()
            .and_then(|bytes| KeyHash::from_slice(&bytes))
            .ok_or_else(|| corrupt("api key", "bad key_hash"))?;
        let leak = match &self.leaked_at {
            None => None,
            Some(at) => Some(Leak {
                reported_at: ts("leaked_at", at)?,
                source: self.leak_source.clone().unwrap_or_default(),
                url: self.leak_url.clone(),
                dismissed_at: opt_ts("leak_dismissed_at", &self.leak_dismissed_at)?,
                dismissed_by: self.leak_dismissed_by.clone(),
            }),
        };
        let revocation_reason = self
            .revocation_reason
            .as_deref()
            .map(|text| {
                RevocationReason::parse(text)
                    .ok_or_else(|| corrupt("api key", "bad revocation_reason"))
            })
            .transpose()?;
        Ok(ApiKeyRecord {
            revocation_reason,
            leak,
            created_at: ts("created_at", &self.created_at)?,
            expires_at: opt_ts("expires_at", &self.expires_at)?,
            revoked_at: opt_ts("revoked_at", &self.revoked_at)?,
            last_used_at: opt_ts("last_used_at", &self.last_used_at)?,
            ip_allowlist: IpAllowlist::from_stored(&self.ip_allowlist),
            id: self.key_id,
            org_id: self.org_id,
            label: self.label,
            scopes: self.scopes.into_iter().collect(),
            prefix: self.prefix,
            last4: self.last4,
            key_hash,
            created_by: self.created_by,
            created_by_email: self.created_by_email,
            owned_by: self.owned_by,
            owned_by_email: self.owned_by_email,
            revoked_by: self.revoked_by,
            rolled_from: self.rolled_from,
            rolled_to: self.rolled_to,
            last_used_ip: self.last_used_ip,
            rate_limit_rps: self.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT_RPS),
        })
    }
}

fn decode(item: HashMap<String, AttributeValue>) -> Result<ApiKeyRecord, StorageError> {
    serde_dynamo::from_item::<_, KeyItem>(item)
        .map_err(|e| corrupt("api key", e))?
        .into_record()
}

/// A whole item as stored, its per-second counters left out.
/// A key from its stored item (a stream image, say), counters aside.
pub fn key_from_item(item: HashMap<String, AttributeValue>) -> Result<ApiKeyRecord, StorageError> {
    decode_without_windows(item)
}

pub(super) fn decode_without_windows(
    mut item: HashMap<String, AttributeValue>,
) -> Result<ApiKeyRecord, StorageError> {
    item.retain(|name, _| !name.starts_with(RATE_WINDOW_PREFIX));
    decode(item)
}

pub(super) fn hash_key(hash: &KeyHash) -> AttributeValue {
    AttributeValue::S(hex::encode(hash.as_bytes()))
}

#[derive(Clone, Debug)]
pub struct ApiKeysTable {
    client: Client,
    name: String,
}

impl ApiKeysTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    /// The same table, its calls signed as `access_key_id` (`App::signing_as`).
    pub fn signing_as(&self, access_key_id: &str) -> Self {
        Self {
            client: crate::sdk::dynamodb_signing_as(&self.client, access_key_id),
            name: self.name.clone(),
        }
    }

    /// Generates a key and stores its record, with no audit event: the tests' and the
    /// bench's fixtures (the product makes keys with `issue_audited`). The condition guards
    /// against a (vanishingly unlikely) hash collision overwriting another key.
    pub async fn issue(&self, new: NewApiKey, now: Timestamp) -> Result<IssuedKey, StorageError> {
        let issued = Self::prepare(new, now)?;
        self.put_new(&issued.record).await?;
        Ok(issued)
    }

    /// A new key and its record, not yet stored (a member's key is stored in a transaction
    /// with its creator's record: `put_new_item`).
    pub fn prepare(new: NewApiKey, now: Timestamp) -> Result<IssuedKey, StorageError> {
        let token = ApiKeyToken::generate(new.mode)
            .map_err(|e| StorageError::Other(format!("OS randomness: {e}")))?;
        let id = format!(
            "{KEY_ID_PREFIX}{}",
            random_base62(KEY_ID_RANDOM_CHARS)
                .map_err(|e| StorageError::Other(format!("OS randomness: {e}")))?
        );
        let record = ApiKeyRecord {
            id,
            org_id: new.org_id,
            label: new.label,
            scopes: new.scopes,
            prefix: token.display_prefix().to_owned(),
            last4: token.last4().to_owned(),
            key_hash: token.hash(),
            created_at: now,
            created_by: new.created_by,
            created_by_email: new.created_by_email,
            owned_by: None,
            owned_by_email: None,
            expires_at: new.expires_at,
            revoked_at: None,
            revoked_by: None,
            revocation_reason: None,
            leak: None,
            ip_allowlist: new.ip_allowlist,
            last_used_at: None,
            last_used_ip: None,
            rate_limit_rps: new.rate_limit_rps,
            rolled_from: new.rolled_from,
            rolled_to: None,
        };
        Ok(IssuedKey { record, token })
    }

    /// The put of a new key's record, for a transaction.
    pub fn put_new_item(
        &self,
        record: &ApiKeyRecord,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StorageError> {
        let item = serde_dynamo::to_item(KeyItem::from_record(record))
            .map_err(|e| corrupt("api key", e))?;
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(key_hash)")
            .build()
            .map_err(|e| StorageError::Other(format!("Put api key: {e}")))?;
        Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .put(put)
            .build())
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(super) fn table_name(&self) -> &str {
        &self.name
    }

    /// Stores a record as it is. `issue` is the way to make keys; tests use this to plant
    /// revoked or expired ones.
    pub async fn put_new(&self, record: &ApiKeyRecord) -> Result<(), StorageError> {
        let item = serde_dynamo::to_item(KeyItem::from_record(record))
            .map_err(|e| corrupt("api key", e))?;
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(key_hash)")
            .send()
            .await
            .map_err(|e| classify("PutItem api key", &e))?;
        Ok(())
    }

    /// The verifier's one read: strongly consistent, so a revoke is seen by the next request.
    pub async fn find_by_hash(&self, hash: &KeyHash) -> Result<Option<ApiKeyRecord>, StorageError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .key("key_hash", hash_key(hash))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem api key", &e))?;
        output.item.map(decode).transpose()
    }

    /// Every key of the org, revoked and expired ones included, oldest first.
    pub async fn list_for_org(&self, org: &OrgId) -> Result<Vec<ApiKeyRecord>, StorageError> {
        let items: Vec<_> = self
            .client
            .query()
            .table_name(&self.name)
            .index_name(BY_ORG_INDEX)
            .key_condition_expression("org_id = :org")
            .expression_attribute_values(":org", AttributeValue::S(org.to_string()))
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        let mut keys = items
            .into_iter()
            .map(|item| decode(item.map_err(|e| classify("Query api keys", &e))?))
            .collect::<Result<Vec<_>, _>>()?;
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys)
    }

    /// Live keys (not revoked) that expire within `[from, to]`, every org's: the daily
    /// `api_key.expiring` sweep (a Scan, once a day).
    pub async fn expiring_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ApiKeyRecord>, StorageError> {
        let items: Vec<_> = self
            .client
            .scan()
            .table_name(&self.name)
            .filter_expression(
                "expires_at BETWEEN :from AND :to AND attribute_not_exists(revoked_at)",
            )
            .expression_attribute_values(":from", AttributeValue::S(time::format(&from)))
            .expression_attribute_values(":to", AttributeValue::S(time::format(&to)))
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        items
            .into_iter()
            .map(|item| decode_without_windows(item.map_err(|e| classify("Scan api keys", &e))?))
            .collect()
    }

    /// Revokes `key_id` if it belongs to `org`, as the operator, with no audit event: the
    /// tests' fixture (the product revokes with `revoke_audited`); see `revoke_by`.
    pub async fn revoke(
        &self,
        org: &OrgId,
        key_id: &str,
        now: Timestamp,
    ) -> Result<Option<ApiKeyRecord>, StorageError> {
        self.revoke_by(org, key_id, now, OPERATOR).await
    }

    /// `org`'s key `key_id`, read from the table itself (strongly consistent) once the
    /// index has named its hash; `None` when the org has no such key.
    pub async fn find_by_id(
        &self,
        org: &OrgId,
        key_id: &str,
    ) -> Result<Option<ApiKeyRecord>, StorageError> {
        let found = self
            .client
            .query()
            .table_name(&self.name)
            .index_name(BY_ORG_INDEX)
            .key_condition_expression("org_id = :org AND key_id = :id")
            .expression_attribute_values(":org", AttributeValue::S(org.to_string()))
            .expression_attribute_values(":id", AttributeValue::S(key_id.to_owned()))
            .send()
            .await
            .map_err(|e| classify("Query api key", &e))?;
        let Some(item) = found.items.unwrap_or_default().into_iter().next() else {
            return Ok(None);
        };
        let hash = item
            .get("key_hash")
            .and_then(|v| v.as_s().ok())
            .and_then(|h| hex::decode(h).ok())
            .and_then(|bytes| KeyHash::from_slice(&bytes))
            .ok_or_else(|| corrupt("api key", "bad key_hash in index"))?;
        Ok(self
            .find_by_hash(&hash)
            .await?
            .filter(|record| &record.org_id == org && record.id == key_id))
    }

    /// Revokes `key_id` if it belongs to `org`, recording who did; `None` when the org has
    /// no such key. Revoking a revoked key changes nothing and returns it as it is.
    pub async fn revoke_by(
        &self,
        org: &OrgId,
        key_id: &str,
        now: Timestamp,
        by: &str,
    ) -> Result<Option<ApiKeyRecord>, StorageError> {
        let Some(record) = self.find_by_id(org, key_id).await? else {
            return Ok(None);
        };
        self.revoke_record(&record, now, by).await.map(Some)
    }

    /// Revokes a key already read; returns it as stored afterwards.
    pub async fn revoke_record(
        &self,
        record: &ApiKeyRecord,
        now: Timestamp,
        by: &str,
    ) -> Result<ApiKeyRecord, StorageError> {
        if record.revoked_at.is_some() {
            return Ok(record.clone());
        }
        let updated = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("key_hash", hash_key(&record.key_hash))
            .update_expression("SET revoked_at = :now, revoked_by = :by, revocation_reason = :why")
            .condition_expression(
                "org_id = :org AND key_id = :id AND attribute_not_exists(revoked_at)",
            )
            .expression_attribute_values(":now", AttributeValue::S(time::format(&now)))
            .expression_attribute_values(":by", AttributeValue::S(by.to_owned()))
            .expression_attribute_values(
                ":why",
                AttributeValue::S(RevocationReason::Requested.as_str().to_owned()),
            )
            .expression_attribute_values(":org", AttributeValue::S(record.org_id.to_string()))
            .expression_attribute_values(":id", AttributeValue::S(record.id.clone()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        // Revoked by someone else in between: what they wrote.
        self.written_or_current(updated, &record.key_hash, "UpdateItem revoke")
            .await?
            .ok_or_else(|| corrupt("api key", "vanished while revoked"))
    }

    /// The key as a conditional `UpdateItem` (returning `ALL_NEW`) left it, or, when its
    /// condition failed because another write got there first, as that write left it.
    pub(super) async fn written_or_current<R>(
        &self,
        result: Result<
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
            aws_sdk_dynamodb::error::SdkError<
                aws_sdk_dynamodb::operation::update_item::UpdateItemError,
                R,
            >,
        >,
        hash: &KeyHash,
        operation: &str,
    ) -> Result<Option<ApiKeyRecord>, StorageError> {
        match result {
            Ok(output) => output.attributes.map(decode_without_windows).transpose(),
            Err(e) if service_code(&e) == Some("ConditionalCheckFailedException") => {
                self.find_by_hash(hash).await
            }
            Err(e) => Err(classify(operation, &e)),
        }
    }

    fn transact_update(
        update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StorageError> {
        let update = update
            .build()
            .map_err(|e| StorageError::Other(format!("Update api key: {e}")))?;
        Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .update(update)
            .build())
    }

    /// For a role change's transaction: `key`'s scopes cut to `allowed`, on condition that
    /// they are still what was read.
    pub fn trim_item(
        &self,
        key: &ApiKeyRecord,
        allowed: &BTreeSet<Scope>,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StorageError> {
        let list = |scopes: &mut dyn Iterator<Item = &Scope>| {
            AttributeValue::L(
                scopes
                    .map(|s| AttributeValue::S(s.as_str().to_owned()))
                    .collect(),
            )
        };
        Self::transact_update(
            aws_sdk_dynamodb::types::Update::builder()
                .table_name(&self.name)
                .key("key_hash", hash_key(&key.key_hash))
                .update_expression("SET scopes = :kept")
                .condition_expression("scopes = :old")
                .expression_attribute_values(":kept", list(&mut key.scopes.intersection(allowed)))
                .expression_attribute_values(":old", list(&mut key.scopes.iter())),
        )
    }

    /// For a transaction: `key` revoked at `now` by `by` for `why`, unless it already is.
    pub fn revoke_item(
        &self,
        key: &ApiKeyRecord,
        now: Timestamp,
        by: &str,
        why: RevocationReason,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StorageError> {
        self.set_on_unrevoked(
            key,
            "revoked_at = :now, revoked_by = :by, revocation_reason = :why",
            &[
                (":now", &time::format(&now)),
                (":by", by),
                (":why", why.as_str()),
            ],
        )
    }

    /// For a deactivation's transaction: `key` handed to the member `to`, if still live.
    pub fn transfer_item(
        &self,
        key: &ApiKeyRecord,
        to: &str,
        to_email: &str,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StorageError> {
        self.set_on_unrevoked(
            key,
            "owned_by = :to, owned_by_email = :email",
            &[(":to", to), (":email", to_email)],
        )
    }

    /// For a transaction: `SET <assignments>` on `key`, with these string values, on
    /// condition that it exists and is not revoked.
    fn set_on_unrevoked(
        &self,
        key: &ApiKeyRecord,
        assignments: &str,
        values: &[(&str, &str)],
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StorageError> {
        let mut update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.name)
            .key("key_hash", hash_key(&key.key_hash))
            .update_expression(format!("SET {assignments}"))
            .condition_expression(
                "attribute_exists(key_hash) AND attribute_not_exists(revoked_at)",
            );
        for (name, value) in values {
            update =
                update.expression_attribute_values(*name, AttributeValue::S((*value).to_owned()));
        }
        Self::transact_update(update)
    }

    /// The update that marks `old` as rolled to `new_id` and makes it expire at `until`
    /// (never later than it would have): for the transaction that stores the new key. It
    /// fails if the old key was revoked, expired or rolled in the meantime.
    pub fn roll_item(
        &self,
        old: &ApiKeyRecord,
        new_id: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StorageError> {
        let until = old.expires_at.map_or(until, |at| at.min(until));
        // The new key copies the old one's settings as read: they must still be those (an
        // edit that tightened them meanwhile makes the roll fail, not the copy loosen them).
        let mut update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.name)
            .key("key_hash", hash_key(&old.key_hash))
            .update_expression("SET rolled_to = :new, expires_at = :until")
            .expression_attribute_values(":new", AttributeValue::S(new_id.to_owned()))
            .expression_attribute_values(":until", AttributeValue::S(time::format(&until)))
            .expression_attribute_values(":now", AttributeValue::S(time::format(&now)))
            .expression_attribute_values(":label", AttributeValue::S(old.label.clone()))
            .expression_attribute_values(":rps", AttributeValue::N(old.rate_limit_rps.to_string()));
        // Keys made before rate limits have none stored and get the default.
        let rate_as_read = if old.rate_limit_rps == DEFAULT_RATE_LIMIT_RPS {
            "(rate_limit = :rps OR attribute_not_exists(rate_limit))"
        } else {
            "rate_limit = :rps"
        };
        let allowlist = old.ip_allowlist.to_strings();
        let allowlist_as_read = if allowlist.is_empty() {
            "attribute_not_exists(ip_allowlist)"
        } else {
            update = update.expression_attribute_values(
                ":ips",
                AttributeValue::L(allowlist.into_iter().map(AttributeValue::S).collect()),
            );
            "ip_allowlist = :ips"
        };
        let update = update
            .condition_expression(format!(
                "attribute_exists(key_hash) AND attribute_not_exists(revoked_at) \
                 AND attribute_not_exists(rolled_to) \
                 AND (attribute_not_exists(expires_at) OR expires_at > :now) \
                 AND label = :label AND {rate_as_read} AND {allowlist_as_read}"
            ))
            .build()
            .map_err(|e| StorageError::Other(format!("Update api key roll: {e}")))?;
        Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .update(update)
            .build())
    }

    /// The verifier's one call: finds the key by hash and counts this request in the
    /// current second's window of its source, atomically, for every instance at once. An
    /// `UpdateItem` that returns the item as written, so it is as strongly consistent as a
    /// read: a revoke is seen by the next request, and the counts of every source are there
    /// to be judged against the allowlist the same item holds. Unknown keys are never
    /// written. Revocation and expiry are decided here, from the item returned, not in the
    /// condition: the functions' IAM policy lets this call name only the key, the counters
    /// and the last-use fields (`dynamodb:Attributes`, which covers the condition too), so
    /// the integration path can never rewrite a key's scopes, revocation, expiry, allowlist
    /// or org. A dead key's attempt is counted in its own windows, which no live caller
    /// shares.
    pub async fn find_and_count(
        &self,
        hash: &KeyHash,
        now: Timestamp,
        source: &SourceBucket,
    ) -> Result<Lookup, StorageError> {
        let second = now.timestamp();
        let current = window_name(second, source);
        let mut update = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("key_hash", hash_key(hash))
            .condition_expression("attribute_exists(key_hash)")
            .expression_attribute_names("#now", &current)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        // This source's own past windows go with it; other sources' are pruned later.
        let mut removed = Vec::new();
        for back in (1 + RATE_WINDOWS_KEPT_BACK)..=(RATE_WINDOWS_CLEARED + RATE_WINDOWS_KEPT_BACK) {
            let name = format!("#p{back}");
            update = update.expression_attribute_names(&name, window_name(second - back, source));
            removed.push(name);
        }
        let result = update
            .update_expression(format!("ADD #now :one REMOVE {}", removed.join(", ")))
            .send()
            .await;
        let mut item = match result {
            Ok(output) => output.attributes.unwrap_or_default(),
            Err(e) if service_code(&e) == Some("ConditionalCheckFailedException") => {
                return Ok(Lookup::Unknown);
            }
            Err(e) => return Err(classify("UpdateItem api key (authenticate)", &e)),
        };
        let oldest_kept = second - RATE_WINDOWS_CLEARED - RATE_WINDOWS_KEPT_BACK;
        let mut counts = Vec::new();
        let mut old_windows = Vec::new();
        for (name, value) in &item {
            match window_second(name) {
                Some(at) if at < oldest_kept => old_windows.push(name.clone()),
                Some(at) if at == second => {
                    if let Some((_, bucket)) = window_of(name) {
                        let n = value.as_n().ok().and_then(|n| n.parse().ok()).unwrap_or(0);
                        counts.push((bucket, n));
                    }
                }
                _ => {}
            }
        }
        old_windows.sort();
        let own = counts
            .iter()
            .find(|(bucket, _)| bucket == source)
            .map(|(_, n)| *n)
            .ok_or_else(|| corrupt("api key", "no request count"))?;
        item.retain(|name, _| !name.starts_with(RATE_WINDOW_PREFIX));
        let record = decode(item)?;
        if record.status(now) != "active" {
            return Ok(Lookup::Dead { record, own });
        }
        Ok(Lookup::Counted(CountedKey {
            record,
            counts,
            own,
            old_windows,
        }))
    }

    /// Removes counter windows left by idle gaps, at most `MAX_WINDOWS_PRUNED` at a time.
    pub async fn prune_windows(
        &self,
        hash: &KeyHash,
        windows: &[String],
    ) -> Result<(), StorageError> {
        let windows: Vec<&String> = windows.iter().take(MAX_WINDOWS_PRUNED).collect();
        if windows.is_empty() {
            return Ok(());
        }
        let update = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("key_hash", hash_key(hash))
            .condition_expression("attribute_exists(key_hash)");
        let (update, remove) = remove_windows(update, &windows);
        let result = update.update_expression(remove).send().await;
        unless_condition_failed("UpdateItem api key (prune)", result)
    }

    /// Writes `last_used_at = now` and the caller's IP unless a write in the last minute
    /// already did: the condition makes concurrent requests write at most once per
    /// interval. Counter windows of past seconds still on the item go with it.
    pub async fn record_use(
        &self,
        hash: &KeyHash,
        now: Timestamp,
        source_ip: Option<std::net::IpAddr>,
        old_windows: &[String],
    ) -> Result<(), StorageError> {
        let cutoff = now - Duration::seconds(LAST_USED_WRITE_INTERVAL_SECS);
        let current = now.timestamp();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("key_hash", hash_key(hash))
            .condition_expression(
                "attribute_exists(key_hash) AND (attribute_not_exists(last_used_at) OR last_used_at <= :cutoff)",
            )
            .expression_attribute_values(":now", AttributeValue::S(time::format(&now)))
            .expression_attribute_values(":cutoff", AttributeValue::S(time::format(&cutoff)));
        let mut set = vec!["last_used_at = :now"];
        if let Some(ip) = source_ip {
            update = update.expression_attribute_values(":ip", AttributeValue::S(ip.to_string()));
            set.push("last_used_ip = :ip");
        }
        let mut expression = format!("SET {}", set.join(", "));
        let stale: Vec<&String> = old_windows
            .iter()
            .filter(|w| window_second(w) != Some(current))
            .take(MAX_WINDOWS_PRUNED)
            .collect();
        if !stale.is_empty() {
            let (with_names, remove) = remove_windows(update, &stale);
            update = with_names;
            expression.push(' ');
            expression.push_str(&remove);
        }
        let result = update.update_expression(expression).send().await;
        unless_condition_failed("UpdateItem last_used_at", result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        time::parse("2026-11-22T10:00:00.000Z").unwrap()
    }

    fn parse(
        scopes: &[&str],
        expires: Option<&str>,
        ips: &[&str],
    ) -> Result<NewApiKey, InvalidKeyRequest> {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let ips: Vec<String> = ips.iter().map(|s| s.to_string()).collect();
        NewApiKey::parse(
            "acme",
            "Zapier — HubSpot",
            &scopes,
            expires,
            &ips,
            "ops",
            now(),
        )
    }

    #[test]
    fn a_valid_request_parses() {
        let new = parse(
            &["customers:read", "aml:read", "aml:read"],
            Some("2027-01-01T00:00:00Z"),
            &["10.0.0.0/8"],
        )
        .unwrap();
        assert_eq!(
            new.scopes,
            BTreeSet::from([Scope::CustomersRead, Scope::AmlRead])
        );
        assert_eq!(new.expires_at, time::parse("2027-01-01T00:00:00Z"));
        assert_eq!(new.ip_allowlist.to_strings(), ["10.0.0.0/8"]);
    }

    #[test]
    fn rate_limits_default_and_stay_in_range() {
        let new = parse(&["aml:read"], None, &[]).unwrap();
        assert_eq!(new.rate_limit_rps, DEFAULT_RATE_LIMIT_RPS);
        assert_eq!(new.clone().with_rate_limit(1).unwrap().rate_limit_rps, 1);
        assert_eq!(
            new.clone().with_rate_limit(1000).unwrap().rate_limit_rps,
            1000
        );
        for bad in [0, 1001, u32::MAX] {
            assert!(matches!(
                new.clone().with_rate_limit(bad),
                Err(InvalidKeyRequest::RateLimit)
            ));
        }
    }

    #[test]
    fn bad_requests_are_refused_with_the_reason() {
        assert!(matches!(
            parse(&[], None, &[]),
            Err(InvalidKeyRequest::NoScopes)
        ));
        assert!(matches!(
            parse(&["customers:delete"], None, &[]),
            Err(InvalidKeyRequest::Scope(_))
        ));
        assert!(matches!(
            parse(&["aml:read"], Some("tomorrow"), &[]),
            Err(InvalidKeyRequest::ExpirySyntax(_))
        ));
        assert!(matches!(
            parse(&["aml:read"], Some("2026-11-22T10:00:00Z"), &[]),
            Err(InvalidKeyRequest::ExpiryInPast(_))
        ));
        assert!(matches!(
            parse(&["aml:read"], None, &["10.0.0.0/40"]),
            Err(InvalidKeyRequest::Cidr(_))
        ));
        let scopes = vec!["aml:read".to_string()];
        assert!(matches!(
            NewApiKey::parse("bad org", "x", &scopes, None, &[], "ops", now()),
            Err(InvalidKeyRequest::Org(_))
        ));
        assert!(matches!(
            NewApiKey::parse("acme", "  ", &scopes, None, &[], "ops", now()),
            Err(InvalidKeyRequest::Label)
        ));
    }

    #[test]
    fn record_round_trips_through_the_stored_shape() {
        let token = ApiKeyToken::generate(crate::org::Mode::Live).unwrap();
        let record = ApiKeyRecord {
            id: "key_abc".into(),
            org_id: OrgId::parse("acme").unwrap(),
            label: "l".into(),
            scopes: BTreeSet::from([Scope::AmlRead]),
            prefix: token.display_prefix().into(),
            last4: token.last4().into(),
            key_hash: token.hash(),
            created_at: now(),
            created_by: "ops".into(),
            created_by_email: None,
            owned_by: None,
            owned_by_email: None,
            revoked_by: None,
            revocation_reason: None,
            leak: None,
            rolled_from: None,
            rolled_to: None,
            expires_at: Some(now() + Duration::days(1)),
            revoked_at: None,
            ip_allowlist: IpAllowlist::parse(["2001:db8::/32"]).unwrap(),
            last_used_at: Some(now()),
            last_used_ip: Some("203.0.113.9".into()),
            rate_limit_rps: 7,
        };
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(KeyItem::from_record(&record)).unwrap();
        assert!(!item.contains_key("revoked_at"), "absent, not null");
        assert_eq!(decode(item).unwrap(), record);
    }

    #[test]
    fn last_used_is_refreshed_at_most_once_a_minute() {
        let mut record = sample_record();
        record.last_used_at = None;
        assert!(record.last_used_is_stale(now()));
        record.last_used_at = Some(now());
        assert!(!record.last_used_is_stale(now() + Duration::seconds(59)));
        assert!(record.last_used_is_stale(now() + Duration::seconds(60)));
    }

    fn sample_record() -> ApiKeyRecord {
        let token = ApiKeyToken::generate(crate::org::Mode::Live).unwrap();
        ApiKeyRecord {
            id: "key_x".into(),
            org_id: OrgId::parse("acme").unwrap(),
            label: "l".into(),
            scopes: BTreeSet::new(),
            prefix: String::new(),
            last4: String::new(),
            key_hash: token.hash(),
            created_at: now(),
            created_by: "ops".into(),
            created_by_email: None,
            owned_by: None,
            owned_by_email: None,
            revoked_by: None,
            revocation_reason: None,
            leak: None,
            rolled_from: None,
            rolled_to: None,
            expires_at: Some(now() + Duration::seconds(1)),
            revoked_at: None,
            ip_allowlist: IpAllowlist::default(),
            last_used_at: None,
            last_used_ip: None,
            rate_limit_rps: DEFAULT_RATE_LIMIT_RPS,
        }
    }

    #[test]
    fn status_reflects_revocation_and_expiry() {
        let mut record = sample_record();
        assert_eq!(record.status(now()), "active");
        assert_eq!(record.status(now() + Duration::seconds(1)), "expired");
        record.revoked_at = Some(now());
        assert_eq!(record.status(now()), "revoked");
        assert!(record.to_public_json(now()).get("key_hash").is_none());
    }
}
