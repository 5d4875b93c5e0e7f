//! The provider keys table: partition `org_id`, sort `provider_key_id` (`pk_…`). One item
//! per key holds what the API shows, the sealed secret (`vault::Sealed`: the encrypted data
//! key, the nonce and the ciphertext; never the secret or the data key in clear), and the
//! key's daily call counts as `calls_<YYYY-MM-DD>` / `errors_<YYYY-MM-DD>` attributes, so
//! that a call's `usage_count`, `last_used_at` and day counts move in one `UpdateItem`.
//! A key used every day for ten years stays under a tenth of DynamoDB's item limit.
//!
//! The member API's reads project the public attributes only: a listing never carries the
//! sealed secret or the counts. Only the provider client reads the sealed form.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::NaiveDate;
use serde_json::{json, Value};

use crate::audit::{AuditLog, Audited, Author, Change, Target, TargetKind};
use crate::org::OrgId;
use crate::providers::kind::KeyType;
use crate::providers::vault::Sealed;
use crate::storage::{classify, condition_held, corrupt, StorageError, TransactFailure};
use crate::time::{self, Timestamp};

pub const PROVIDER_KEYS_TABLE_ENV: &str = "PROVIDER_KEYS_TABLE";
pub const PROVIDER_KEY_ID_PREFIX: &str = "pk_";

type Item = HashMap<String, AttributeValue>;

/// The attributes the member API reads (never the sealed secret, never the counts).
const PUBLIC_ATTRS: &[&str] = &[
    "org_id",
    "provider_key_id",
    "key_type",
    "label",
    "masked_key",
    "enabled",
    "usage_count",
    "last_used_at",
    "created_at",
    "created_by_id",
    "created_by_email",
    "rotated_at",
    "updated_at",
    "version",
];
/// And the sealed secret, for the client.
const SEALED_ATTRS: &[&str] = &[
    "secret_scheme",
    "kms_key_id",
    "data_key",
    "nonce",
    "ciphertext",
];

pub fn new_provider_key_id() -> Result<String, getrandom::Error> {
    Ok(format!(
        "{PROVIDER_KEY_ID_PREFIX}{}",
        crate::keys::token::random_base62(24)?
    ))
}

/// Whether `text` could be a provider key id (anything else is a 404 without a read).
pub fn is_provider_key_id(text: &str) -> bool {
    text.strip_prefix(PROVIDER_KEY_ID_PREFIX)
        .is_some_and(|rest| {
            !rest.is_empty() && rest.len() <= 40 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// The member who made a key (an operator's tool names itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creator {
    pub id: String,
    pub email: Option<String>,
}

/// A provider key as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderKey {
    pub org_id: OrgId,
    pub id: String,
    pub key_type: KeyType,
    pub label: String,
    pub masked_key: String,
    pub enabled: bool,
    pub usage_count: u64,
    pub last_used_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub created_by: Creator,
    pub rotated_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    /// Bumped by every change of label, state or secret (not by calls).
    pub version: u64,
}

impl Audited for ProviderKey {
    /// What the audit trail records of a key: the secret only as its mask.
    fn audit_view(&self) -> Value {
        json!({
            "key_type": self.key_type.code(),
            "provider": self.key_type.provider(),
            "label": self.label,
            "masked_key": self.masked_key,
            "enabled": self.enabled,
            "rotated_at": self.rotated_at.as_ref().map(time::format),
        })
    }

    fn audit_target(&self) -> Target {
        Target {
            kind: TargetKind::ProviderKey,
            id: self.id.clone(),
        }
    }
}

impl ProviderKey {
    /// The contract's object.
    pub fn to_json(&self) -> Value {
        json!({
            "object": "provider_key",
            "id": self.id,
            "key_type": self.key_type.code(),
            "provider": self.key_type.provider(),
            "label": self.label,
            "masked_key": self.masked_key,
            "enabled": self.enabled,
            "usage_count": self.usage_count,
            "last_used_at": self.last_used_at.as_ref().map(time::format),
            "created_at": time::format(&self.created_at),
            "created_by": {"id": self.created_by.id, "email": self.created_by.email},
            "rotated_at": self.rotated_at.as_ref().map(time::format),
        })
    }
}

/// One day of a key's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaySummary {
    pub date: NaiveDate,
    pub calls: u64,
    pub errors: u64,
}

impl DaySummary {
    pub fn to_json(&self) -> Value {
        json!({
            "object": "provider_key_call_summary",
            "date": self.date.format("%Y-%m-%d").to_string(),
            "calls": self.calls,
            "errors": self.errors,
        })
    }
}

fn calls_attr(date: NaiveDate) -> String {
    format!("calls_{}", date.format("%Y-%m-%d"))
}

fn errors_attr(date: NaiveDate) -> String {
    format!("errors_{}", date.format("%Y-%m-%d"))
}

fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn n(number: impl ToString) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

fn b(bytes: &[u8]) -> AttributeValue {
    AttributeValue::B(Blob::new(bytes.to_vec()))
}

fn ts(at: &Timestamp) -> AttributeValue {
    s(time::format(at))
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StorageError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt("provider key", format!("{name} missing")))
}

fn get_opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &Item, name: &str) -> Result<u64, StorageError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| corrupt("provider key", format!("{name} missing")))
}

fn get_opt_n(item: &Item, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|text| text.parse().ok())
        .unwrap_or(0)
}

fn get_b<'a>(item: &'a Item, name: &str) -> Result<&'a [u8], StorageError> {
    item.get(name)
        .and_then(|v| v.as_b().ok())
        .map(|blob| blob.as_ref())
        .ok_or_else(|| corrupt("provider key", format!("{name} missing")))
}

fn get_ts(item: &Item, name: &str) -> Result<Timestamp, StorageError> {
    time::parse(get_s(item, name)?).ok_or_else(|| corrupt("provider key", name))
}

fn get_opt_ts(item: &Item, name: &str) -> Option<Timestamp> {
    get_opt_s(item, name).and_then(time::parse)
}

fn decode(item: &Item) -> Result<ProviderKey, StorageError> {
    Ok(ProviderKey {
        org_id: OrgId::parse(get_s(item, "org_id")?).map_err(|e| corrupt("provider key", e))?,
        id: get_s(item, "provider_key_id")?.to_owned(),
        key_type: KeyType::from_code(get_s(item, "key_type")?)
            .ok_or_else(|| corrupt("provider key", "key_type"))?,
        label: get_s(item, "label")?.to_owned(),
        masked_key: get_s(item, "masked_key")?.to_owned(),
        enabled: item
            .get("enabled")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .ok_or_else(|| corrupt("provider key", "enabled"))?,
        usage_count: get_opt_n(item, "usage_count"),
        last_used_at: get_opt_ts(item, "last_used_at"),
        created_at: get_ts(item, "created_at")?,
        created_by: Creator {
            id: get_s(item, "created_by_id")?.to_owned(),
            email: get_opt_s(item, "created_by_email").map(str::to_owned),
        },
        rotated_at: get_opt_ts(item, "rotated_at"),
        updated_at: get_ts(item, "updated_at")?,
        version: get_n(item, "version")?,
    })
}

fn decode_sealed(item: &Item) -> Result<Sealed, StorageError> {
    Ok(Sealed {
        scheme: u32::try_from(get_n(item, "secret_scheme")?)
            .map_err(|e| corrupt("provider key", e))?,
        kms_key_id: get_s(item, "kms_key_id")?.to_owned(),
        encrypted_data_key: get_b(item, "data_key")?.to_vec(),
        nonce: get_b(item, "nonce")?.to_vec(),
        ciphertext: get_b(item, "ciphertext")?.to_vec(),
    })
}

fn sealed_values(sealed: &Sealed) -> [(&'static str, AttributeValue); 5] {
    [
        ("secret_scheme", n(sealed.scheme)),
        ("kms_key_id", s(sealed.kms_key_id.clone())),
        ("data_key", b(&sealed.encrypted_data_key)),
        ("nonce", b(&sealed.nonce)),
        ("ciphertext", b(&sealed.ciphertext)),
    ]
}

/// A projection of `attrs`, every name behind a placeholder (some are reserved words).
fn projection(attrs: &[&str]) -> (String, HashMap<String, String>) {
    let names: HashMap<String, String> = attrs
        .iter()
        .enumerate()
        .map(|(i, name)| (format!("#p{i}"), (*name).to_owned()))
        .collect();
    let expression = (0..attrs.len())
        .map(|i| format!("#p{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    (expression, names)
}

/// A change of label and state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edit {
    pub label: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Clone, Debug)]
pub struct ProviderKeysTable {
    client: Client,
    name: String,
}

impl ProviderKeysTable {
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

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stores a new key with its sealed secret, and its `provider_key.created` event.
    pub async fn create(
        &self,
        audit: &AuditLog,
        author: &Author,
        key: &ProviderKey,
        sealed: &Sealed,
    ) -> Result<(), StorageError> {
        let mut item: Item = HashMap::from([
            ("org_id".to_owned(), s(key.org_id.as_str())),
            ("provider_key_id".to_owned(), s(key.id.clone())),
            ("key_type".to_owned(), s(key.key_type.code())),
            ("label".to_owned(), s(key.label.clone())),
            ("masked_key".to_owned(), s(key.masked_key.clone())),
            ("enabled".to_owned(), AttributeValue::Bool(key.enabled)),
            ("usage_count".to_owned(), n(key.usage_count)),
            ("created_at".to_owned(), ts(&key.created_at)),
            ("created_by_id".to_owned(), s(key.created_by.id.clone())),
            ("updated_at".to_owned(), ts(&key.updated_at)),
            ("version".to_owned(), n(key.version)),
        ]);
        if let Some(email) = &key.created_by.email {
            item.insert("created_by_email".to_owned(), s(email.clone()));
        }
        for (name, value) in sealed_values(sealed) {
            item.insert(name.to_owned(), value);
        }
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(provider_key_id)")
            .build()
            .map_err(|e| StorageError::Other(format!("Put provider key: {e}")))?;
        let change = key.audit_created("provider_key.created");
        match audit
            .commit(
                &key.org_id,
                author,
                &[change],
                vec![TransactWriteItem::builder().put(put).build()],
                "TransactWriteItems create provider key",
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(TransactFailure::Conditions(_)) => Err(StorageError::Other(
                "PutItem provider key: the id was taken".into(),
            )),
            Err(failure) => Err(failure.into_storage("TransactWriteItems provider key")),
        }
    }

    /// The org's keys, oldest first.
    pub async fn list(&self, org: &OrgId) -> Result<Vec<ProviderKey>, StorageError> {
        let (expression, names) = projection(PUBLIC_ATTRS);
        let items: Vec<_> = self
            .client
            .query()
            .table_name(&self.name)
            .consistent_read(true)
            .key_condition_expression("org_id = :org")
            .expression_attribute_values(":org", s(org.as_str()))
            .projection_expression(expression)
            .set_expression_attribute_names(Some(names))
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        let mut keys = items
            .into_iter()
            .map(|item| decode(&item.map_err(|e| classify("Query provider keys", &e))?))
            .collect::<Result<Vec<_>, _>>()?;
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys)
    }

    async fn get_item(
        &self,
        org: &OrgId,
        id: &str,
        attrs: Option<&[&str]>,
    ) -> Result<Option<Item>, StorageError> {
        let mut request = self
            .client
            .get_item()
            .table_name(&self.name)
            .consistent_read(true)
            .key("org_id", s(org.as_str()))
            .key("provider_key_id", s(id));
        if let Some(attrs) = attrs {
            let (expression, names) = projection(attrs);
            request = request
                .projection_expression(expression)
                .set_expression_attribute_names(Some(names));
        }
        let out = request
            .send()
            .await
            .map_err(|e| classify("GetItem provider key", &e))?;
        Ok(out.item)
    }

    pub async fn get(&self, org: &OrgId, id: &str) -> Result<Option<ProviderKey>, StorageError> {
        self.get_item(org, id, Some(PUBLIC_ATTRS))
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    /// The key with its sealed secret, for the provider client.
    pub async fn get_sealed(
        &self,
        org: &OrgId,
        id: &str,
    ) -> Result<Option<(ProviderKey, Sealed)>, StorageError> {
        let attrs: Vec<&str> = PUBLIC_ATTRS.iter().chain(SEALED_ATTRS).copied().collect();
        let Some(item) = self.get_item(org, id, Some(&attrs)).await? else {
            return Ok(None);
        };
        Ok(Some((decode(&item)?, decode_sealed(&item)?)))
    }

    /// The key's calls on each day from `since` to `until`, both included (a day without
    /// calls is a zero row); `None` when there is no such key.
    pub async fn summaries(
        &self,
        org: &OrgId,
        id: &str,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Result<Option<Vec<DaySummary>>, StorageError> {
        let Some(item) = self.get_item(org, id, None).await? else {
            return Ok(None);
        };
        Ok(Some(
            since
                .iter_days()
                .take_while(|date| *date <= until)
                .map(|date| DaySummary {
                    date,
                    calls: get_opt_n(&item, &calls_attr(date)),
                    errors: get_opt_n(&item, &errors_attr(date)),
                })
                .collect(),
        ))
    }

    /// Applies `edit` over the version it was read at; `None` when the key changed (or
    /// vanished) in between.
    pub async fn edit(
        &self,
        audit: &AuditLog,
        author: &Author,
        key: &ProviderKey,
        edit: &Edit,
        now: Timestamp,
    ) -> Result<Option<ProviderKey>, StorageError> {
        let mut sets = vec!["updated_at = :now", "version = version + :one"];
        let mut request = self.update_over(key, now);
        let mut after = key.clone();
        if let Some(label) = &edit.label {
            sets.push("#label = :label");
            request = request
                .expression_attribute_names("#label", "label")
                .expression_attribute_values(":label", s(label.clone()));
            after.label = label.clone();
        }
        if let Some(enabled) = edit.enabled {
            sets.push("enabled = :enabled");
            request =
                request.expression_attribute_values(":enabled", AttributeValue::Bool(enabled));
            after.enabled = enabled;
        }
        let change = key.audit_change("provider_key.updated", &after);
        if change.is_empty() {
            // Nothing to change: the key as it is, no write, no event.
            return Ok(Some(key.clone()));
        }
        self.write_over(
            audit,
            author,
            key,
            change,
            request.update_expression(format!("SET {}", sets.join(", "))),
        )
        .await
    }

    /// Replaces the sealed secret (and its mask) over the version it was read at; the id,
    /// the counts and the history stay. `None` when the key changed in between.
    pub async fn rotate(
        &self,
        audit: &AuditLog,
        author: &Author,
        key: &ProviderKey,
        sealed: &Sealed,
        masked_key: &str,
        now: Timestamp,
    ) -> Result<Option<ProviderKey>, StorageError> {
        let mut after = key.clone();
        after.masked_key = masked_key.to_owned();
        after.rotated_at = Some(now);
        let change = key.audit_change("provider_key.rotated", &after);
        let mut request = self
            .update_over(key, now)
            .expression_attribute_values(":masked", s(masked_key));
        let mut sets = vec![
            "updated_at = :now".to_owned(),
            "rotated_at = :now".to_owned(),
            "masked_key = :masked".to_owned(),
            "version = version + :one".to_owned(),
        ];
        for (name, value) in sealed_values(sealed) {
            sets.push(format!("{name} = :{name}"));
            request = request.expression_attribute_values(format!(":{name}"), value);
        }
        self.write_over(
            audit,
            author,
            key,
            change,
            request.update_expression(format!("SET {}", sets.join(", "))),
        )
        .await
    }

    /// An update of `key` that holds only if it is still at the version it was read at,
    /// with `:now` and `:one` bound for the caller's SET.
    fn update_over(
        &self,
        key: &ProviderKey,
        now: Timestamp,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder()
            .table_name(&self.name)
            .key("org_id", s(key.org_id.as_str()))
            .key("provider_key_id", s(key.id.clone()))
            .condition_expression("attribute_exists(provider_key_id) AND version = :v")
            .expression_attribute_values(":now", ts(&now))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":v", n(key.version))
    }

    /// Commits `update` with `change`'s event; the key as stored afterwards, or `None` when
    /// it changed (or vanished) since it was read.
    async fn write_over(
        &self,
        audit: &AuditLog,
        author: &Author,
        key: &ProviderKey,
        change: Change,
        update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    ) -> Result<Option<ProviderKey>, StorageError> {
        let update = update
            .build()
            .map_err(|e| StorageError::Other(format!("Update provider key: {e}")))?;
        match audit
            .commit(
                &key.org_id,
                author,
                &[change],
                vec![TransactWriteItem::builder().update(update).build()],
                "TransactWriteItems provider key",
            )
            .await
        {
            Ok(_) => self
                .get(&key.org_id, &key.id)
                .await?
                .map(Some)
                .ok_or_else(|| corrupt("provider key", "vanished once changed")),
            Err(TransactFailure::Conditions(_)) => Ok(None),
            Err(failure) => Err(failure.into_storage("TransactWriteItems provider key")),
        }
    }

    /// Counts one call made with the key: `usage_count`, `last_used_at` and the day's
    /// `{calls, errors}`, in one atomic write. The key as it now is; `None` when it is gone.
    pub async fn record_call(
        &self,
        org: &OrgId,
        id: &str,
        at: Timestamp,
        failed: bool,
    ) -> Result<Option<ProviderKey>, StorageError> {
        let date = at.date_naive();
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("org_id", s(org.as_str()))
            .key("provider_key_id", s(id))
            .update_expression(
                "ADD usage_count :one, #calls :one, #errors :failed SET last_used_at = :at",
            )
            .condition_expression("attribute_exists(provider_key_id)")
            .expression_attribute_names("#calls", calls_attr(date))
            .expression_attribute_names("#errors", errors_attr(date))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":failed", n(u8::from(failed)))
            .expression_attribute_values(":at", ts(&at))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        condition_held("UpdateItem provider key call", result)?
            .and_then(|out| out.attributes)
            .as_ref()
            .map(decode)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_prefix_and_a_bounded_alphanumeric_tail() {
        let id = new_provider_key_id().unwrap();
        assert!(is_provider_key_id(&id), "{id}");
        for bad in [
            "",
            "pk_",
            "pk_a-b",
            "ak_abc",
            "PK_abc",
            &format!("pk_{}", "a".repeat(41)),
        ] {
            assert!(!is_provider_key_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn day_attributes_are_named_by_the_utc_date() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        assert_eq!(calls_attr(date), "calls_2026-12-04");
        assert_eq!(errors_attr(date), "errors_2026-12-04");
    }
}
