//! Keys reported as leaked: why a key was revoked, the leak a secret scanner reported (where
//! it was found, when), and the writes that record them. A leak revokes a live key and is
//! noted on a dead one, once: a repeated report finds it noted and changes nothing.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem, Update};
use serde_json::{json, Value};

use crate::audit::{Actor, AuditLog, Audited, Author, Origin};
use crate::keys::table::{decode_without_windows, hash_key, ApiKeyRecord, ApiKeysTable};
use crate::keys::token::KeyHash;
use crate::request_log::record::RequestRecord;
use crate::request_log::table::RequestLogTable;
use crate::storage::{classify, StorageError, TransactFailure};
use crate::time::{self, Timestamp};

/// What `revoked_by` holds for a key a secret scanner reported (the API shows the object
/// `{"type":"secret_scanning","source","url"}` instead).
pub const SECRET_SCANNING: &str = "secret_scanning";
/// Keys one BatchGetItem may name.
const BATCH_GET_KEYS: usize = 100;
/// Rounds of BatchGetItem for what DynamoDB leaves unprocessed, and of a leak's write when
/// another write to the key wins the race.
const RETRIES: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    /// A member or the operator revoked it.
    Requested,
    /// Its owner was deactivated without a transfer.
    MemberDeactivated,
    /// A secret scanner found it in public.
    Leaked,
}

impl RevocationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Requested => "requested",
            RevocationReason::MemberDeactivated => "member_deactivated",
            RevocationReason::Leaked => "leaked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Requested, Self::MemberDeactivated, Self::Leaked]
            .into_iter()
            .find(|why| why.as_str() == text)
    }
}

/// A scanner's report that the key is public.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// The scanner (`github`).
    pub source: String,
    /// Where it was found, as the scanner said (a public URL), when it said.
    pub url: Option<String>,
    pub reported_at: Timestamp,
    /// An administrator's dismissal of the page's banner.
    pub dismissed_at: Option<Timestamp>,
    pub dismissed_by: Option<String>,
}

impl Leak {
    pub fn to_json(&self) -> Value {
        json!({
            "source": self.source,
            "url": self.url,
            "reported_at": time::format(&self.reported_at),
            "dismissed_at": self.dismissed_at.as_ref().map(time::format),
            "dismissed_by": self.dismissed_by,
        })
    }
}

impl ApiKeyRecord {
    /// `revoked_by` as the API shows it: who revoked the key, or, for a leaked key, the
    /// scanner's report.
    pub fn revoked_by_json(&self) -> Value {
        match (&self.revocation_reason, &self.leak) {
            (Some(RevocationReason::Leaked), Some(leak)) => json!({
                "type": SECRET_SCANNING,
                "source": leak.source,
                "url": leak.url,
            }),
            _ => json!(self.revoked_by),
        }
    }
}

/// What recording a leak did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// This report revoked the live key (or noted the leak on a dead one), with its log line.
    Now(ApiKeyRecord),
    /// An earlier report already had: nothing written.
    Already(ApiKeyRecord),
    /// The key is gone.
    Missing,
}

impl ApiKeysTable {
    /// The keys with these hashes, read strongly consistently (BatchGetItem, 100 at a time),
    /// by hash; hashes of no key are absent.
    pub async fn find_by_hashes(
        &self,
        hashes: &[KeyHash],
    ) -> Result<HashMap<KeyHash, ApiKeyRecord>, StorageError> {
        let mut found = HashMap::new();
        let mut unique: Vec<&KeyHash> = Vec::new();
        for hash in hashes {
            if !unique.contains(&hash) {
                unique.push(hash);
            }
        }
        for chunk in unique.chunks(BATCH_GET_KEYS) {
            let keys = chunk
                .iter()
                .map(|hash| HashMap::from([("key_hash".to_owned(), hash_key(hash))]))
                .collect();
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|e| StorageError::Other(format!("BatchGetItem api keys: {e}")))?;
            for attempt in 0..=RETRIES {
                let output = self
                    .client()
                    .batch_get_item()
                    .request_items(self.table_name(), request)
                    .send()
                    .await
                    .map_err(|e| classify("BatchGetItem api keys", &e))?;
                for item in output
                    .responses
                    .and_then(|mut tables| tables.remove(self.table_name()))
                    .unwrap_or_default()
                {
                    let record = decode_without_windows(item)?;
                    found.insert(record.key_hash.clone(), record);
                }
                match output
                    .unprocessed_keys
                    .and_then(|mut left| left.remove(self.table_name()))
                {
                    Some(left) if !left.keys.is_empty() => {
                        if attempt == RETRIES {
                            return Err(StorageError::Unavailable(
                                "BatchGetItem api keys: keys left unprocessed".into(),
                            ));
                        }
                        request = left;
                        tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                    }
                    _ => break,
                }
            }
        }
        Ok(found)
    }

    /// Records that `record`'s key was found in public at `url` by `source`: a live key is
    /// revoked (reason `leaked`), a dead one keeps its revocation and gets the leak noted,
    /// and `line` goes into the key's request log in the same transaction. Only the first
    /// report writes anything; a concurrent one finds the first's result.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_leak(
        &self,
        audit: &AuditLog,
        origin: &Origin,
        request_log: &RequestLogTable,
        mut record: ApiKeyRecord,
        source: &str,
        url: Option<&str>,
        now: Timestamp,
        line: &RequestRecord,
    ) -> Result<Recorded, StorageError> {
        // The platform acted, on the scanner's word: the event says which and where.
        let author = Author {
            actor: Actor::Platform {
                id: SECRET_SCANNING.to_owned(),
                reason: match url {
                    Some(url) => {
                        format!("{source} secret scanning found the key in public at {url}")
                    }
                    None => format!("{source} secret scanning found the key in public"),
                },
            },
            origin: origin.clone(),
        };
        for attempt in 0..=RETRIES {
            if record.leak.is_some() {
                return Ok(Recorded::Already(record));
            }
            let items = vec![
                self.leak_update(&record, source, url, now)?,
                request_log.put_item(line)?,
            ];
            let mut after = record.clone();
            after.leak = Some(Leak {
                source: source.to_owned(),
                url: url.map(str::to_owned),
                reported_at: now,
                dismissed_at: None,
                dismissed_by: None,
            });
            let action = if record.revoked_at.is_none() {
                after.revoked_at = Some(now);
                after.revoked_by = Some(SECRET_SCANNING.to_owned());
                after.revocation_reason = Some(RevocationReason::Leaked);
                "api_key.revoked"
            } else {
                "api_key.leak_recorded"
            };
            let change = record.audit_change(action, &after);
            let outcome = audit
                .commit(
                    &record.org_id,
                    &author,
                    &[change],
                    items,
                    "TransactWriteItems leak",
                )
                .await;
            match outcome.map(drop) {
                Ok(()) => {
                    return self
                        .find_by_hash(&record.key_hash)
                        .await?
                        .map_or(Ok(Recorded::Missing), |stored| Ok(Recorded::Now(stored)));
                }
                // Revoked, reported or rolled meanwhile, or another write in flight: look again.
                Err(failure @ (TransactFailure::Conditions(_) | TransactFailure::Contended)) => {
                    if failure == TransactFailure::Contended {
                        // Another transaction on the key is in flight: let it finish.
                        tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
                    }
                    match self.find_by_hash(&record.key_hash).await? {
                        Some(stored) => record = stored,
                        None => return Ok(Recorded::Missing),
                    }
                }
                Err(TransactFailure::Storage(err)) => return Err(err),
            }
        }
        Err(StorageError::Unavailable(
            "the key kept changing while its leak was recorded".into(),
        ))
    }

    /// The update that records the leak on `record` as read: revoking it if it was live.
    fn leak_update(
        &self,
        record: &ApiKeyRecord,
        source: &str,
        url: Option<&str>,
        now: Timestamp,
    ) -> Result<TransactWriteItem, StorageError> {
        let mut update = Update::builder()
            .table_name(self.table_name())
            .key("key_hash", hash_key(&record.key_hash))
            .expression_attribute_values(":now", AttributeValue::S(time::format(&now)))
            .expression_attribute_values(":source", AttributeValue::S(source.to_owned()));
        let mut set = vec!["leaked_at = :now", "leak_source = :source"];
        if let Some(url) = url {
            update = update.expression_attribute_values(":url", AttributeValue::S(url.to_owned()));
            set.push("leak_url = :url");
        }
        let condition = if record.revoked_at.is_none() {
            update = update
                .expression_attribute_values(":by", AttributeValue::S(SECRET_SCANNING.to_owned()))
                .expression_attribute_values(
                    ":why",
                    AttributeValue::S(RevocationReason::Leaked.as_str().to_owned()),
                );
            set.extend([
                "revoked_at = :now",
                "revoked_by = :by",
                "revocation_reason = :why",
            ]);
            "attribute_exists(key_hash) AND attribute_not_exists(leaked_at) \
             AND attribute_not_exists(revoked_at)"
        } else {
            "attribute_exists(key_hash) AND attribute_not_exists(leaked_at) \
             AND attribute_exists(revoked_at)"
        };
        let update = update
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression(condition)
            .build()
            .map_err(|e| StorageError::Other(format!("Update api key leak: {e}")))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_nothing_else_parses() {
        for why in [
            RevocationReason::Requested,
            RevocationReason::MemberDeactivated,
            RevocationReason::Leaked,
        ] {
            assert_eq!(RevocationReason::parse(why.as_str()), Some(why));
        }
        assert_eq!(RevocationReason::parse("Leaked"), None);
        assert_eq!(RevocationReason::parse(""), None);
    }
}
