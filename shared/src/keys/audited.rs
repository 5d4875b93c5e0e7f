//! The changes people, the operator tool and the platform make to keys, each committed in one
//! transaction with its audit event (`audit::AuditLog::commit`): a key is never created,
//! edited, rolled, revoked or has its leak dismissed without the event that says who did it.
//! (`ApiKeysTable::issue` and `revoke` write without one: the tests' and the bench's
//! fixtures, never a product path.)

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use serde_json::{json, Value};

use crate::audit::{AuditLog, Audited, Author, Change, Target};
use crate::keys::leak::RevocationReason;
use crate::keys::table::{
    hash_key, ApiKeyRecord, ApiKeysTable, IssuedKey, KeyEdit, NewApiKey, DEFAULT_RATE_LIMIT_RPS,
};
use crate::storage::{StorageError, TransactFailure};
use crate::time::{self, Timestamp};

impl Audited for ApiKeyRecord {
    /// What the audit trail records of a key: its settings and state, the key itself only
    /// as its mask (prefix…last 4), never its hash.
    fn audit_view(&self) -> Value {
        let ts = |t: &Option<Timestamp>| t.as_ref().map(time::format);
        let allowlist = self.ip_allowlist.to_strings();
        json!({
            "key": format!("{}…{}", self.prefix, self.last4),
            "label": self.label,
            "scopes": self.scopes,
            "mode": self.mode().as_str(),
            "expires_at": ts(&self.expires_at),
            "ip_allowlist": (!allowlist.is_empty()).then_some(allowlist),
            "rate_limit": self.rate_limit_rps,
            "owned_by": self.owned_by,
            "rolled_from": self.rolled_from,
            "rolled_to": self.rolled_to,
            "revoked_at": ts(&self.revoked_at),
            "revocation_reason": self.revocation_reason.map(RevocationReason::as_str),
            "leak_url": self.leak.as_ref().and_then(|l| l.url.clone()),
            "leak_reported_at": self.leak.as_ref().map(|l| time::format(&l.reported_at)),
            "leak_dismissed_at": self.leak.as_ref().and_then(|l| l.dismissed_at.as_ref().map(time::format)),
        })
    }

    fn audit_target(&self) -> Target {
        Target::api_key(&self.id)
    }
}

impl ApiKeysTable {
    /// Makes a key and stores it with its `api_key.created` event (the operator tool, the
    /// local stack's first key).
    pub async fn issue_audited(
        &self,
        audit: &AuditLog,
        author: &Author,
        new: NewApiKey,
        now: Timestamp,
    ) -> Result<IssuedKey, StorageError> {
        let issued = Self::prepare(new, now)?;
        audit
            .commit(
                &issued.record.org_id,
                author,
                &[issued.record.audit_created("api_key.created")],
                vec![self.put_new_item(&issued.record)?],
                "TransactWriteItems create key",
            )
            .await
            .map_err(|f| f.into_storage("TransactWriteItems create key"))?;
        Ok(issued)
    }

    /// Revokes a key already read (reason `requested`, by `by`), with its `api_key.revoked`
    /// event; a key already revoked, or revoked meanwhile, is answered as stored, with no
    /// event (nothing changed).
    pub async fn revoke_audited(
        &self,
        audit: &AuditLog,
        author: &Author,
        record: &ApiKeyRecord,
        by: &str,
        now: Timestamp,
    ) -> Result<ApiKeyRecord, StorageError> {
        if record.revoked_at.is_some() {
            return Ok(record.clone());
        }
        let mut after = record.clone();
        after.revoked_at = Some(now);
        after.revoked_by = Some(by.to_owned());
        after.revocation_reason = Some(RevocationReason::Requested);
        let item = self.revoke_item(record, now, by, RevocationReason::Requested)?;
        let outcome = audit
            .commit(
                &record.org_id,
                author,
                &[record.audit_change("api_key.revoked", &after)],
                vec![item],
                "TransactWriteItems revoke key",
            )
            .await;
        match outcome {
            Ok(_) | Err(TransactFailure::Conditions(_)) => self
                .find_by_hash(&record.key_hash)
                .await?
                .ok_or_else(|| crate::storage::corrupt("api key", "vanished while revoked")),
            Err(failure) => Err(failure.into_storage("TransactWriteItems revoke key")),
        }
    }

    /// Applies a member's edit to a live key that has not been rolled, with its
    /// `api_key.updated` event: each `Some` field is set (`ip_allowlist` empty removes the
    /// list); `expires_at` only moves earlier. The fields it changes must still be as read.
    /// `Ok(None)` when the key was revoked, rolled or expired, or those fields changed, in
    /// the meantime; an edit that changes nothing writes nothing.
    pub async fn edit_audited(
        &self,
        audit: &AuditLog,
        author: &Author,
        record: &ApiKeyRecord,
        edit: &KeyEdit,
        now: Timestamp,
    ) -> Result<Option<ApiKeyRecord>, StorageError> {
        let mut after = record.clone();
        if let Some(label) = &edit.label {
            after.label = label.clone();
        }
        if let Some(allowlist) = &edit.ip_allowlist {
            after.ip_allowlist = allowlist.clone();
        }
        if let Some(rps) = edit.rate_limit_rps {
            after.rate_limit_rps = rps;
        }
        if let Some(at) = edit.expires_at {
            after.expires_at = Some(at);
        }
        let change = record.audit_change("api_key.updated", &after);
        if change.is_empty() {
            return Ok(Some(record.clone()));
        }
        let item = self.edit_item(record, &after, now)?;
        match audit
            .commit(
                &record.org_id,
                author,
                &[change],
                vec![item],
                "TransactWriteItems edit key",
            )
            .await
        {
            Ok(_) => self.find_by_hash(&record.key_hash).await,
            Err(TransactFailure::Conditions(_)) => Ok(None),
            Err(failure) => Err(failure.into_storage("TransactWriteItems edit key")),
        }
    }

    /// The update that makes `record` (as read) `after`: only its label, allowlist, rate
    /// limit and expiry, each on condition that it is still as read.
    fn edit_item(
        &self,
        record: &ApiKeyRecord,
        after: &ApiKeyRecord,
        now: Timestamp,
    ) -> Result<TransactWriteItem, StorageError> {
        let mut update = Update::builder()
            .table_name(self.table_name())
            .key("key_hash", hash_key(&record.key_hash))
            .expression_attribute_values(":now", AttributeValue::S(time::format(&now)));
        let mut condition = vec![
            "attribute_exists(key_hash)".to_owned(),
            "attribute_not_exists(revoked_at)".to_owned(),
            "attribute_not_exists(rolled_to)".to_owned(),
            "(attribute_not_exists(expires_at) OR expires_at > :now)".to_owned(),
        ];
        let mut set = Vec::new();
        let mut remove = Vec::new();
        let list = |items: Vec<String>| {
            AttributeValue::L(items.into_iter().map(AttributeValue::S).collect())
        };
        if after.label != record.label {
            update = update
                .expression_attribute_values(":label", AttributeValue::S(after.label.clone()))
                .expression_attribute_values(":old_label", AttributeValue::S(record.label.clone()));
            set.push("label = :label");
            condition.push("label = :old_label".to_owned());
        }
        if after.ip_allowlist != record.ip_allowlist {
            let new = after.ip_allowlist.to_strings();
            if new.is_empty() {
                remove.push("ip_allowlist");
            } else {
                update = update.expression_attribute_values(":ips", list(new));
                set.push("ip_allowlist = :ips");
            }
            let old = record.ip_allowlist.to_strings();
            if old.is_empty() {
                condition.push("attribute_not_exists(ip_allowlist)".to_owned());
            } else {
                update = update.expression_attribute_values(":old_ips", list(old));
                condition.push("ip_allowlist = :old_ips".to_owned());
            }
        }
        if after.rate_limit_rps != record.rate_limit_rps {
            update = update
                .expression_attribute_values(
                    ":rps",
                    AttributeValue::N(after.rate_limit_rps.to_string()),
                )
                .expression_attribute_values(
                    ":old_rps",
                    AttributeValue::N(record.rate_limit_rps.to_string()),
                );
            set.push("rate_limit = :rps");
            // Keys made before rate limits have none stored and get the default.
            condition.push(if record.rate_limit_rps == DEFAULT_RATE_LIMIT_RPS {
                "(rate_limit = :old_rps OR attribute_not_exists(rate_limit))".to_owned()
            } else {
                "rate_limit = :old_rps".to_owned()
            });
        }
        if after.expires_at != record.expires_at {
            if let Some(at) = after.expires_at {
                update = update
                    .expression_attribute_values(":exp", AttributeValue::S(time::format(&at)));
                set.push("expires_at = :exp");
            }
            match record.expires_at {
                None => condition.push("attribute_not_exists(expires_at)".to_owned()),
                Some(old) => {
                    update = update.expression_attribute_values(
                        ":old_exp",
                        AttributeValue::S(time::format(&old)),
                    );
                    condition.push("expires_at = :old_exp".to_owned());
                }
            }
        }
        let mut expression = String::new();
        if !set.is_empty() {
            expression.push_str(&format!("SET {}", set.join(", ")));
        }
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let update = update
            .update_expression(expression.trim())
            .condition_expression(condition.join(" AND "))
            .build()
            .map_err(|e| StorageError::Other(format!("Update api key settings: {e}")))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The platform's notice that `record` expires at `expires_at` (the daily
    /// `api_key.expiring` sweep), with its `api_key.expiry_notified` event, once per key and
    /// expiry: the key remembers the expiry it was noticed for (`expiry_notified_for`), so a
    /// repeated sweep writes nothing. `true` when this call recorded it.
    pub async fn record_expiry_notice(
        &self,
        audit: &AuditLog,
        record: &ApiKeyRecord,
        expires_at: Timestamp,
    ) -> Result<bool, StorageError> {
        let at = time::format(&expires_at);
        let update = Update::builder()
            .table_name(self.table_name())
            .key("key_hash", hash_key(&record.key_hash))
            .update_expression("SET expiry_notified_for = :at")
            .condition_expression(
                "attribute_exists(key_hash) AND (attribute_not_exists(expiry_notified_for) OR expiry_notified_for <> :at)",
            )
            .expression_attribute_values(":at", AttributeValue::S(at.clone()))
            .build()
            .map_err(|e| StorageError::Other(format!("Update expiry notice: {e}")))?;
        let author = Author {
            actor: crate::audit::Actor::Platform {
                id: "key_expiry".into(),
                reason: format!(
                    "the key expires at {at}: its org's endpoints that take api_key.expiring are told a week ahead"
                ),
            },
            origin: crate::audit::Origin::default(),
        };
        let notice = Change::noted(
            "api_key.expiry_notified",
            record.audit_target(),
            json!({"expires_at": at}),
        );
        match audit
            .commit(
                &record.org_id,
                &author,
                &[notice],
                vec![TransactWriteItem::builder().update(update).build()],
                "TransactWriteItems expiry notice",
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(TransactFailure::Conditions(_)) => Ok(false),
            Err(failure) => Err(failure.into_storage("TransactWriteItems expiry notice")),
        }
    }

    /// An administrator's dismissal of the leak banner for `record`, with its
    /// `api_key.leak_dismissed` event. `Ok(None)` when the key was never reported;
    /// dismissing twice keeps the first dismissal (and writes no second event).
    pub async fn dismiss_leak_audited(
        &self,
        audit: &AuditLog,
        author: &Author,
        record: &ApiKeyRecord,
        by: &str,
        now: Timestamp,
    ) -> Result<Option<ApiKeyRecord>, StorageError> {
        let Some(leak) = &record.leak else {
            return Ok(None);
        };
        if leak.dismissed_at.is_some() {
            return Ok(Some(record.clone()));
        }
        let mut after = record.clone();
        if let Some(leak) = after.leak.as_mut() {
            leak.dismissed_at = Some(now);
            leak.dismissed_by = Some(by.to_owned());
        }
        let update = Update::builder()
            .table_name(self.table_name())
            .key("key_hash", hash_key(&record.key_hash))
            .update_expression("SET leak_dismissed_at = :now, leak_dismissed_by = :by")
            .condition_expression(
                "attribute_exists(leaked_at) AND attribute_not_exists(leak_dismissed_at)",
            )
            .expression_attribute_values(":now", AttributeValue::S(time::format(&now)))
            .expression_attribute_values(":by", AttributeValue::S(by.to_owned()))
            .build()
            .map_err(|e| StorageError::Other(format!("Update dismiss leak: {e}")))?;
        let outcome = audit
            .commit(
                &record.org_id,
                author,
                &[record.audit_change("api_key.leak_dismissed", &after)],
                vec![TransactWriteItem::builder().update(update).build()],
                "TransactWriteItems dismiss leak",
            )
            .await;
        match outcome {
            // Dismissed by someone else in between: theirs stays.
            Ok(_) | Err(TransactFailure::Conditions(_)) => {
                self.find_by_hash(&record.key_hash).await
            }
            Err(failure) => Err(failure.into_storage("TransactWriteItems dismiss leak")),
        }
    }
}
