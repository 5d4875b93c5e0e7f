//! The webhook endpoints table: partition `org_id`, sort `endpoint_id`; one more item per
//! org (`endpoint_id = "#count"`) counts its endpoints of each mode (`count` live,
//! `count_test` test), moved in the same transaction as each create and delete, so "at most
//! 20 per org and mode" holds under concurrent creates, and test mode never uses up live.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;

use crate::audit::{AuditLog, Audited, Author, Change};
use crate::org::{Mode, OrgId};
use crate::storage::{classify, corrupt, StorageError, TransactFailure};
use crate::webhooks::endpoint::{WebhookEndpoint, ENDPOINT_ID_PREFIX, MAX_ENDPOINTS_PER_ORG};

pub const WEBHOOK_ENDPOINTS_TABLE_ENV: &str = "WEBHOOK_ENDPOINTS_TABLE";
const COUNT_SK: &str = "#count";

type Item = HashMap<String, AttributeValue>;

/// Why an endpoint was not created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateError {
    /// The org has its 20 endpoints.
    Full,
    Contended,
    Storage(StorageError),
}

fn encode(endpoint: &WebhookEndpoint) -> Result<Item, StorageError> {
    serde_dynamo::to_item(endpoint).map_err(|e| corrupt("webhook endpoint", e))
}

fn decode(item: Item) -> Result<WebhookEndpoint, StorageError> {
    serde_dynamo::from_item(item).map_err(|e| corrupt("webhook endpoint", e))
}

fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn n(number: impl ToString) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

/// The attribute of the count item that counts `mode`'s endpoints.
fn count_attribute(mode: Mode) -> &'static str {
    match mode {
        Mode::Live => "count",
        Mode::Test => "count_test",
    }
}

fn storage(failure: TransactFailure, operation: &str) -> StorageError {
    match failure {
        TransactFailure::Storage(e) => e,
        other => StorageError::Other(format!("{operation}: {other:?}")),
    }
}

#[derive(Clone, Debug)]
pub struct WebhookEndpointsTable {
    client: Client,
    name: String,
}

impl WebhookEndpointsTable {
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

    fn count_key(&self, org: &OrgId) -> Item {
        HashMap::from([
            ("org_id".to_owned(), s(org.as_str())),
            ("endpoint_id".to_owned(), s(COUNT_SK)),
        ])
    }

    /// Stores a new endpoint, if the org has room for it in its mode, with its
    /// `webhook_endpoint.created` event by `author`.
    pub async fn create(
        &self,
        audit: &AuditLog,
        author: &Author,
        endpoint: &WebhookEndpoint,
    ) -> Result<(), CreateError> {
        let count = Update::builder()
            .table_name(&self.name)
            .set_key(Some(self.count_key(&endpoint.org_id)))
            .update_expression("SET #count = if_not_exists(#count, :zero) + :one")
            .condition_expression("attribute_not_exists(#count) OR #count < :max")
            .expression_attribute_names("#count", count_attribute(endpoint.mode()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(MAX_ENDPOINTS_PER_ORG))
            .build()
            .map_err(|e| CreateError::Storage(StorageError::Other(e.to_string())))?;
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(encode(endpoint).map_err(CreateError::Storage)?))
            .condition_expression("attribute_not_exists(endpoint_id)")
            .build()
            .map_err(|e| CreateError::Storage(StorageError::Other(e.to_string())))?;
        let items = vec![
            TransactWriteItem::builder().update(count).build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        let created = endpoint.audit_created("webhook_endpoint.created");
        for attempt in 0..5u64 {
            match audit
                .commit(
                    &endpoint.org_id,
                    author,
                    std::slice::from_ref(&created),
                    items.clone(),
                    "TransactWriteItems webhook endpoint",
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(TransactFailure::Conditions(failed)) if failed.contains(&0) => {
                    return Err(CreateError::Full)
                }
                Err(TransactFailure::Contended) => {
                    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 30;
                    tokio::time::sleep(std::time::Duration::from_millis(
                        15 * (attempt + 1) + jitter,
                    ))
                    .await;
                }
                Err(other) => {
                    return Err(CreateError::Storage(storage(
                        other,
                        "TransactWriteItems webhook endpoint",
                    )))
                }
            }
        }
        Err(CreateError::Contended)
    }

    /// Every endpoint of the org (both modes), oldest first.
    pub async fn list(&self, org: &OrgId) -> Result<Vec<WebhookEndpoint>, StorageError> {
        let items: Vec<_> = self
            .client
            .query()
            .table_name(&self.name)
            .consistent_read(true)
            .key_condition_expression("org_id = :org AND begins_with(endpoint_id, :prefix)")
            .expression_attribute_values(":org", s(org.as_str()))
            .expression_attribute_values(":prefix", s(ENDPOINT_ID_PREFIX))
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        let mut endpoints = items
            .into_iter()
            .map(|item| decode(item.map_err(|e| classify("Query webhook endpoints", &e))?))
            .collect::<Result<Vec<_>, _>>()?;
        endpoints
            .sort_by(|a, b| (a.created_at, &a.endpoint_id).cmp(&(b.created_at, &b.endpoint_id)));
        Ok(endpoints)
    }

    pub async fn get(
        &self,
        org: &OrgId,
        endpoint_id: &str,
    ) -> Result<Option<WebhookEndpoint>, StorageError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .consistent_read(true)
            .key("org_id", s(org.as_str()))
            .key("endpoint_id", s(endpoint_id))
            .send()
            .await
            .map_err(|e| classify("GetItem webhook endpoint", &e))?;
        out.item.map(decode).transpose()
    }

    /// Stores `endpoint` over the version it was read at (its `version` is bumped), with
    /// `change`'s event by `author` when it changed what the trail records (bookkeeping
    /// alone, a failure clock, writes none); `false` when someone changed or deleted it in
    /// between.
    pub async fn replace(
        &self,
        audit: &AuditLog,
        author: &Author,
        endpoint: &mut WebhookEndpoint,
        change: Change,
    ) -> Result<bool, StorageError> {
        let read_at = endpoint.version;
        endpoint.version = read_at + 1;
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(encode(endpoint)?))
            .condition_expression("attribute_exists(endpoint_id) AND #v = :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", n(read_at))
            .build()
            .map_err(|e| StorageError::Other(e.to_string()))?;
        let changes: &[Change] = if change.is_empty() {
            &[]
        } else {
            std::slice::from_ref(&change)
        };
        let written = match audit
            .commit(
                &endpoint.org_id,
                author,
                changes,
                vec![TransactWriteItem::builder().put(put).build()],
                "TransactWriteItems replace webhook endpoint",
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(TransactFailure::Conditions(_)) => Ok(false),
            Err(other) => Err(storage(
                other,
                "TransactWriteItems replace webhook endpoint",
            )),
        };
        if !matches!(written, Ok(true)) {
            endpoint.version = read_at;
        }
        written
    }

    /// Deletes the endpoint (as read) and gives its place in its mode back, with its
    /// `webhook_endpoint.deleted` event by `author`; `false` when there was none.
    pub async fn delete(
        &self,
        audit: &AuditLog,
        author: &Author,
        endpoint: &WebhookEndpoint,
    ) -> Result<bool, StorageError> {
        let (org, endpoint_id, mode) = (
            &endpoint.org_id,
            endpoint.endpoint_id.as_str(),
            endpoint.mode(),
        );
        let deleted = endpoint.audit_removed("webhook_endpoint.deleted");
        let delete = Delete::builder()
            .table_name(&self.name)
            .key("org_id", s(org.as_str()))
            .key("endpoint_id", s(endpoint_id))
            .condition_expression("attribute_exists(endpoint_id)")
            .build()
            .map_err(|e| StorageError::Other(e.to_string()))?;
        let count = Update::builder()
            .table_name(&self.name)
            .set_key(Some(self.count_key(org)))
            .update_expression("SET #count = #count - :one")
            .condition_expression("#count > :zero")
            .expression_attribute_names("#count", count_attribute(mode))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(|e| StorageError::Other(e.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        for attempt in 0..5u64 {
            match audit
                .commit(
                    org,
                    author,
                    std::slice::from_ref(&deleted),
                    items.clone(),
                    "TransactWriteItems delete webhook endpoint",
                )
                .await
            {
                Ok(_) => return Ok(true),
                Err(TransactFailure::Conditions(failed)) if failed.contains(&0) => {
                    return Ok(false)
                }
                Err(TransactFailure::Conditions(_)) => {
                    // The count is off (never below zero): delete without it.
                    tracing::error!(org = %org, "webhook endpoint count was already zero");
                    let alone = vec![items[0].clone()];
                    return match audit
                        .commit(
                            org,
                            author,
                            std::slice::from_ref(&deleted),
                            alone,
                            "TransactWriteItems delete webhook endpoint",
                        )
                        .await
                    {
                        Ok(_) => Ok(true),
                        Err(TransactFailure::Conditions(_)) => Ok(false),
                        Err(other) => {
                            Err(storage(other, "TransactWriteItems delete webhook endpoint"))
                        }
                    };
                }
                Err(TransactFailure::Contended) => {
                    tokio::time::sleep(std::time::Duration::from_millis(15 * (attempt + 1))).await;
                }
                Err(TransactFailure::Storage(e)) => return Err(e),
            }
        }
        Err(StorageError::Unavailable(
            "TransactWriteItems delete webhook endpoint: contended".into(),
        ))
    }
}
