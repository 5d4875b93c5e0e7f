//! The members table: one item per member, keyed by the pool user's `sub`, with the
//! `ByOrg` index for listing; and one counter item per org (`org#<org>`, outside the index)
//! holding how many active administrators it has, so "the last administrator can't be
//! demoted or deactivated" holds under concurrent requests (every change of an
//! administrator's role or status moves the counter in the same transaction).
//!
//! A member item also holds the hashes of the keys the member answers for (`key_hashes`, a
//! string set added to in the transaction that creates each key), so a demotion trims, and a
//! deactivation revokes, exactly those keys without an eventually consistent index read.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::audit::{AuditLog, Audited, Author, Change, Target, TargetKind};
use crate::members::role::Role;
use crate::org::OrgId;
use crate::storage::{classify, corrupt, transact_write, StorageError, TransactFailure};
use crate::time::{self, Timestamp};

pub const MEMBERS_TABLE_ENV: &str = "MEMBERS_TABLE";
pub const BY_ORG_INDEX: &str = "ByOrg";
/// A member id is the pool's `sub` (a UUID); anything longer names no member.
pub const MAX_MEMBER_ID_CHARS: usize = 128;
const KEY_HASHES: &str = "key_hashes";
const ADMINISTRATORS: &str = "administrators";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    Active,
    Deactivated,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Active => "active",
            MemberStatus::Deactivated => "deactivated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The pool user's `sub`.
    pub id: String,
    pub org_id: OrgId,
    pub email: String,
    pub role: Role,
    pub status: MemberStatus,
    pub created_at: Timestamp,
    /// The member who invited this one (`operator` for icadmin).
    pub invited_by: Option<String>,
    pub deactivated_at: Option<Timestamp>,
    /// Hex SHA-256 of the keys this member answers for (created, rolled or transferred).
    pub key_hashes: BTreeSet<String>,
}

impl Audited for Member {
    /// What the audit trail records of a member.
    fn audit_view(&self) -> Value {
        json!({
            "email": self.email,
            "role": self.role.as_str(),
            "status": self.status.as_str(),
            "deactivated_at": self.deactivated_at.as_ref().map(time::format),
        })
    }

    fn audit_target(&self) -> Target {
        Target {
            kind: TargetKind::Member,
            id: self.id.clone(),
        }
    }
}

impl Member {
    pub fn is_active(&self) -> bool {
        self.status == MemberStatus::Active
    }

    /// The API object: never the key hashes.
    pub fn to_json(&self) -> Value {
        json!({
            "object": "member",
            "id": self.id,
            "email": self.email,
            "role": self.role,
            "status": self.status.as_str(),
            "permissions": self.role.permissions(),
            "created_at": time::format(&self.created_at),
            "invited_by": self.invited_by,
            "deactivated_at": self.deactivated_at.as_ref().map(time::format),
        })
    }
}

/// A change of a member's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    Role(Role),
    /// Deactivation at `at`; `moved_keys` (hex hashes) leave the member's set for an heir's.
    Deactivate {
        at: Timestamp,
        moved_keys: Vec<String>,
    },
}

/// Why a change of members did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    #[error("no such member in this org")]
    NotFound,
    #[error("a member with this id already exists")]
    Exists,
    #[error("the org's last active administrator can't be demoted or deactivated")]
    LastAdministrator,
    #[error("the member is deactivated")]
    Deactivated,
    /// The member (or an heir) changed since it was read: read again and retry.
    #[error("the member changed meanwhile")]
    Contended,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

#[derive(Debug, Serialize, Deserialize)]
struct MemberItem {
    member_id: String,
    org_id: OrgId,
    email: String,
    role: Role,
    status: MemberStatus,
    created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    invited_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deactivated_at: Option<String>,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn counter_id(org: &OrgId) -> String {
    format!("org#{org}")
}

fn decode(mut item: HashMap<String, AttributeValue>) -> Result<Member, StorageError> {
    let key_hashes = match item.remove(KEY_HASHES) {
        Some(AttributeValue::Ss(set)) => set.into_iter().collect(),
        Some(_) => return Err(corrupt("member", "key_hashes is not a string set")),
        None => BTreeSet::new(),
    };
    let item: MemberItem = serde_dynamo::from_item(item).map_err(|e| corrupt("member", e))?;
    let ts = |t: &str| time::parse(t).ok_or_else(|| corrupt("member", "bad timestamp"));
    Ok(Member {
        created_at: ts(&item.created_at)?,
        deactivated_at: item.deactivated_at.as_deref().map(ts).transpose()?,
        id: item.member_id,
        org_id: item.org_id,
        email: item.email,
        role: item.role,
        status: item.status,
        invited_by: item.invited_by,
        key_hashes,
    })
}

fn built<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<T, StorageError> {
    result.map_err(|e| StorageError::Other(format!("building a write: {e}")))
}

#[derive(Clone, Debug)]
pub struct MembersTable {
    client: Client,
    name: String,
}

impl MembersTable {
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

    /// The member session's one read: strongly consistent, so a role change or a
    /// deactivation acts on the very next request.
    pub async fn get(&self, id: &str) -> Result<Option<Member>, StorageError> {
        // Not a member id (the org counters' items, or what no key attribute can hold).
        if id.is_empty() || id.len() > MAX_MEMBER_ID_CHARS || id.starts_with("org#") {
            return Ok(None);
        }
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .key("member_id", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem member", &e))?;
        output.item.map(decode).transpose()
    }

    /// The member, if it is `org`'s (another org's member is as unknown as none).
    pub async fn get_in(&self, org: &OrgId, id: &str) -> Result<Member, MemberError> {
        match self.get(id).await? {
            Some(member) if &member.org_id == org => Ok(member),
            _ => Err(MemberError::NotFound),
        }
    }

    /// Every member of the org (deactivated ones too), by email.
    pub async fn list(&self, org: &OrgId) -> Result<Vec<Member>, StorageError> {
        let items: Vec<_> = self
            .client
            .query()
            .table_name(&self.name)
            .index_name(BY_ORG_INDEX)
            .key_condition_expression("org_id = :org")
            .expression_attribute_values(":org", s(org.as_str()))
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        let mut members = items
            .into_iter()
            .map(|item| decode(item.map_err(|e| classify("Query members", &e))?))
            .collect::<Result<Vec<_>, _>>()?;
        members.sort_by(|a, b| (&a.email, &a.id).cmp(&(&b.email, &b.id)));
        Ok(members)
    }

    fn counter_update(&self, org: &OrgId, delta: i64) -> Result<TransactWriteItem, StorageError> {
        let mut update = Update::builder()
            .table_name(&self.name)
            .key("member_id", s(counter_id(org)))
            .update_expression("ADD #admins :delta")
            .expression_attribute_names("#admins", ADMINISTRATORS)
            .expression_attribute_values(":delta", n(delta));
        if delta < 0 {
            // Never below one: this is what keeps the last administrator.
            update = update
                .condition_expression("#admins > :one")
                .expression_attribute_values(":one", n(1));
        }
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }

    /// Adds a member (an administrator also counts towards the org's administrators), with
    /// no audit event: the tests' and the bench's fixture (the product adds members with
    /// `add_audited`).
    pub async fn add(&self, member: &Member) -> Result<(), MemberError> {
        let items = self.add_items(member)?;
        match transact_write(&self.client, "TransactWriteItems add member", items).await {
            Ok(()) => Ok(()),
            Err(failure) => Err(Self::add_failed(failure)),
        }
    }

    /// Adds a member with its `member.invited` event, as `author`.
    pub async fn add_audited(
        &self,
        audit: &AuditLog,
        author: &Author,
        member: &Member,
    ) -> Result<(), MemberError> {
        let items = self.add_items(member)?;
        let change = member.audit_created("member.invited");
        match audit
            .commit(
                &member.org_id,
                author,
                &[change],
                items,
                "TransactWriteItems add member",
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(failure) => Err(Self::add_failed(failure)),
        }
    }

    fn add_failed(failure: TransactFailure) -> MemberError {
        match failure {
            TransactFailure::Conditions(_) => MemberError::Exists,
            TransactFailure::Contended => {
                MemberError::Storage(StorageError::Unavailable("add member: contended".into()))
            }
            TransactFailure::Storage(e) => e.into(),
        }
    }

    fn add_items(&self, member: &Member) -> Result<Vec<TransactWriteItem>, MemberError> {
        let item = serde_dynamo::to_item(MemberItem {
            member_id: member.id.clone(),
            org_id: member.org_id.clone(),
            email: member.email.clone(),
            role: member.role,
            status: member.status,
            created_at: time::format(&member.created_at),
            invited_by: member.invited_by.clone(),
            deactivated_at: member.deactivated_at.as_ref().map(time::format),
        })
        .map_err(|e| corrupt("member", e))?;
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(member_id)");
        let mut items = vec![TransactWriteItem::builder()
            .put(built(put.build())?)
            .build()];
        if member.role == Role::Administrator && member.is_active() {
            items.push(self.counter_update(&member.org_id, 1)?);
        }
        Ok(items)
    }

    /// The update of `member` that holds only while its role and status are what was read:
    /// what a key's creation puts in its transaction, so a key is never made under a role
    /// its creator no longer has. `add_key` joins the key's hash to the member's keys.
    pub fn unchanged_with_key(
        &self,
        member: &Member,
        add_key: &str,
    ) -> Result<TransactWriteItem, StorageError> {
        let update = Update::builder()
            .table_name(&self.name)
            .key("member_id", s(&member.id))
            .update_expression("ADD #keys :key")
            .condition_expression("#role = :role AND #status = :active AND org_id = :org")
            .expression_attribute_names("#keys", KEY_HASHES)
            .expression_attribute_names("#role", "role")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":key", AttributeValue::Ss(vec![add_key.to_owned()]))
            .expression_attribute_values(":role", s(member.role.as_str()))
            .expression_attribute_values(":active", s(MemberStatus::Active.as_str()))
            .expression_attribute_values(":org", s(member.org_id.as_str()));
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }

    /// One attempt at `change` to `member` as read, with `extra` items (their keys' updates)
    /// and the audit events `events` in the same transaction, by `author`: it holds only
    /// while the member's role, status and set of keys are what was read (`Contended`
    /// otherwise: read again and retry), and the org's last active administrator stays one
    /// (`LastAdministrator`).
    pub async fn apply(
        &self,
        audit: &AuditLog,
        author: &Author,
        member: &Member,
        change: &MemberChange,
        extra: Vec<TransactWriteItem>,
        events: &[Change],
    ) -> Result<(), MemberError> {
        let mut update = Update::builder()
            .table_name(&self.name)
            .key("member_id", s(&member.id))
            .expression_attribute_names("#role", "role")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":role", s(member.role.as_str()))
            .expression_attribute_values(":active", s(MemberStatus::Active.as_str()))
            .expression_attribute_values(":org", s(member.org_id.as_str()));
        let keys_as_read = if member.key_hashes.is_empty() {
            "attribute_not_exists(#keys)"
        } else {
            update = update.expression_attribute_values(
                ":count",
                AttributeValue::N(member.key_hashes.len().to_string()),
            );
            "size(#keys) = :count"
        };
        update = update
            .expression_attribute_names("#keys", KEY_HASHES)
            .condition_expression(format!(
                "#role = :role AND #status = :active AND org_id = :org AND {keys_as_read}"
            ));
        let (expression, admins_delta) = match change {
            MemberChange::Role(role) => {
                update = update.expression_attribute_values(":new", s(role.as_str()));
                let delta = match (
                    member.role == Role::Administrator,
                    *role == Role::Administrator,
                ) {
                    (true, false) => -1,
                    (false, true) => 1,
                    _ => 0,
                };
                ("SET #role = :new".to_owned(), delta)
            }
            MemberChange::Deactivate { at, moved_keys } => {
                update = update
                    .expression_attribute_values(
                        ":deactivated",
                        s(MemberStatus::Deactivated.as_str()),
                    )
                    .expression_attribute_values(":now", s(time::format(at)));
                let mut expression = "SET #status = :deactivated, deactivated_at = :now".to_owned();
                if !moved_keys.is_empty() {
                    update = update.expression_attribute_values(
                        ":moved",
                        AttributeValue::Ss(moved_keys.clone()),
                    );
                    expression.push_str(" DELETE #keys :moved");
                }
                let delta = if member.role == Role::Administrator {
                    -1
                } else {
                    0
                };
                (expression, delta)
            }
        };
        let mut items = vec![TransactWriteItem::builder()
            .update(built(update.update_expression(expression).build())?)
            .build()];
        let counter_index = (admins_delta != 0).then_some(items.len());
        if admins_delta != 0 {
            items.push(self.counter_update(&member.org_id, admins_delta)?);
        }
        items.extend(extra);
        match audit
            .commit(
                &member.org_id,
                author,
                events,
                items,
                "TransactWriteItems member change",
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(TransactFailure::Conditions(failed))
                if counter_index.is_some_and(|i| failed.contains(&i)) =>
            {
                Err(MemberError::LastAdministrator)
            }
            Err(TransactFailure::Conditions(_)) | Err(TransactFailure::Contended) => {
                Err(MemberError::Contended)
            }
            Err(TransactFailure::Storage(e)) => Err(e.into()),
        }
    }

    /// The update, for a transaction, that gives `heir` the keys `hashes`, on condition that
    /// the heir still has the role and status they were read with.
    pub fn receive_keys_item(
        &self,
        heir: &Member,
        hashes: &[String],
    ) -> Result<TransactWriteItem, StorageError> {
        let update = Update::builder()
            .table_name(&self.name)
            .key("member_id", s(&heir.id))
            .update_expression("ADD #keys :keys")
            .condition_expression("#role = :role AND #status = :active AND org_id = :org")
            .expression_attribute_names("#keys", KEY_HASHES)
            .expression_attribute_names("#role", "role")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":keys", AttributeValue::Ss(hashes.to_vec()))
            .expression_attribute_values(":role", s(heir.role.as_str()))
            .expression_attribute_values(":active", s(MemberStatus::Active.as_str()))
            .expression_attribute_values(":org", s(heir.org_id.as_str()));
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_decode_with_their_key_set_and_never_show_it() {
        let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(MemberItem {
            member_id: "m1".into(),
            org_id: OrgId::parse("acme").unwrap(),
            email: "a@acme.test".into(),
            role: Role::Developer,
            status: MemberStatus::Active,
            created_at: "2026-11-23T10:00:00.000Z".into(),
            invited_by: None,
            deactivated_at: None,
        })
        .unwrap();
        item.insert(
            KEY_HASHES.into(),
            AttributeValue::Ss(vec!["ab".into(), "cd".into()]),
        );
        let member = decode(item.clone()).unwrap();
        assert_eq!(member.role, Role::Developer);
        assert_eq!(member.key_hashes.len(), 2);
        let shown = member.to_json();
        assert!(shown.get("key_hashes").is_none());
        assert_eq!(
            shown["permissions"],
            json!(["org.api-keys", "customers.read", "customers.write"])
        );
        item.insert(KEY_HASHES.into(), AttributeValue::S("ab".into()));
        assert!(decode(item).is_err());
    }
}
