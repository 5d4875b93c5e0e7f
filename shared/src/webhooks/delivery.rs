//! Deliveries: one item per (event, endpoint), written before anything is sent, so a
//! crash between the stream record and a 2xx never loses an event. Partition
//! `endpoint_id`, sort `delivery_id` (`msg_…`, the `webhook-id` every attempt carries,
//! derived from the event and the endpoint, so producing an event twice delivers it once).
//! A pending delivery carries `due = "due"` and `next_attempt_at`: the sparse `Due` index
//! is the queue the retrier reads. Whoever sends first takes a lease on it (a conditional
//! update), so two workers never send one attempt at once; a worker that dies holding a
//! lease only delays the attempt until the lease runs out.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::org::OrgId;
use crate::storage::{classify, condition_held, corrupt, StorageError};
use crate::time::{self, Timestamp};
use crate::webhooks::event::EventType;

pub const WEBHOOK_DELIVERIES_TABLE_ENV: &str = "WEBHOOK_DELIVERIES_TABLE";
pub const DUE_INDEX: &str = "Due";
const DUE: &str = "due";
/// Deliveries are kept 30 days (TTL), then go.
pub const DELIVERY_RETENTION_SECS: i64 = 30 * 24 * 60 * 60;
/// The most attempts kept on one delivery (re-sends add more; the oldest go first).
const MAX_ATTEMPTS_KEPT: usize = 50;

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A receiver answered 2xx.
    Succeeded,
    /// Every scheduled attempt failed.
    Failed,
    /// Not sent: its endpoint was deleted or disabled first.
    Dropped,
}

/// One try at delivering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: Timestamp,
    /// The receiver's HTTP status, if it answered.
    #[serde(default)]
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// What went wrong, in a line: a refused target, a timeout, an excerpt of the answer.
    #[serde(default)]
    pub error: Option<String>,
    /// Whether a member asked for this one (a re-send).
    #[serde(default)]
    pub resend: bool,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status_code
            .is_some_and(|code| (200..300).contains(&code))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub endpoint_id: String,
    pub delivery_id: String,
    pub org_id: OrgId,
    pub event_id: String,
    pub event_type: EventType,
    /// The exact body every attempt sends.
    pub payload: String,
    pub status: DeliveryStatus,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// Failed attempts in the current schedule (a re-send starts none over: it is one more).
    #[serde(default)]
    pub failures: u32,
    pub created_at: Timestamp,
    /// Epoch milliseconds of the next attempt, while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<i64>,
    /// `"due"` while pending: the `Due` index's partition. Absent attributes, not NULLs,
    /// for what is unset: the index is sparse, and the lease's condition reads absence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_reason: Option<String>,
    /// A member asked for one more attempt (a re-send): one attempt, outside the schedule.
    #[serde(default)]
    pub resend_requested: bool,
    pub expires_at_epoch: i64,
}

impl Delivery {
    /// A delivery of `payload` to `endpoint_id`, due now.
    pub fn new(
        endpoint_id: &str,
        org: &OrgId,
        event_id: &str,
        event_type: EventType,
        payload: String,
        now: Timestamp,
    ) -> Self {
        Self {
            endpoint_id: endpoint_id.to_owned(),
            delivery_id: delivery_id(event_id, endpoint_id),
            org_id: org.clone(),
            event_id: event_id.to_owned(),
            event_type,
            payload,
            status: DeliveryStatus::Pending,
            attempts: Vec::new(),
            failures: 0,
            created_at: now,
            next_attempt_at: Some(now.timestamp_millis()),
            due: Some(DUE.to_owned()),
            lease_until: None,
            lease_token: None,
            dropped_reason: None,
            resend_requested: false,
            expires_at_epoch: now.timestamp() + DELIVERY_RETENTION_SECS,
        }
    }

    pub fn add_attempt(&mut self, attempt: Attempt) {
        self.attempts.push(attempt);
        if self.attempts.len() > MAX_ATTEMPTS_KEPT {
            let extra = self.attempts.len() - MAX_ATTEMPTS_KEPT;
            self.attempts.drain(..extra);
        }
    }

    /// Waits for an attempt at `at`.
    pub fn schedule(&mut self, at: Timestamp) {
        self.status = DeliveryStatus::Pending;
        self.next_attempt_at = Some(at.timestamp_millis());
        self.due = Some(DUE.to_owned());
    }

    /// Done: no more attempts (`status` says how it ended).
    pub fn finish(&mut self, status: DeliveryStatus) {
        self.status = status;
        self.next_attempt_at = None;
        self.due = None;
    }

    /// The API object: the delivery and its attempts, never the payload's secrets (it has
    /// none) but also not the payload itself (customer data stays in the customer API).
    pub fn to_json(&self) -> Value {
        json!({
            "object": "webhook_delivery",
            "id": self.delivery_id,
            "endpoint_id": self.endpoint_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "status": self.status,
            "created_at": time::format(&self.created_at),
            "next_attempt_at": self.next_attempt_at
                .and_then(chrono::DateTime::from_timestamp_millis)
                .as_ref()
                .map(time::format),
            "dropped_reason": self.dropped_reason,
            "attempts": self.attempts.iter().map(|a| json!({
                "at": time::format(&a.at),
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
                "resend": a.resend,
            })).collect::<Vec<_>>(),
        })
    }
}

/// `msg_…`: the same event to the same endpoint is the same message.
pub fn delivery_id(event_id: &str, endpoint_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{event_id}\u{1f}{endpoint_id}").as_bytes());
    format!("msg_{}", hex::encode(&digest[..16]))
}

pub fn is_delivery_id(text: &str) -> bool {
    text.strip_prefix("msg_")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn encode(delivery: &Delivery) -> Result<Item, StorageError> {
    serde_dynamo::to_item(delivery).map_err(|e| corrupt("webhook delivery", e))
}

fn decode(item: Item) -> Result<Delivery, StorageError> {
    serde_dynamo::from_item(item).map_err(|e| corrupt("webhook delivery", e))
}

fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn n(number: impl ToString) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

/// A page of deliveries.
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    pub last_key: Option<String>,
}

#[derive(Clone, Debug)]
pub struct WebhookDeliveriesTable {
    client: Client,
    name: String,
}

impl WebhookDeliveriesTable {
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

    /// Stores a new delivery; `false` when it was already there (the event was produced
    /// before: nothing to do).
    pub async fn enqueue(&self, delivery: &Delivery) -> Result<bool, StorageError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(encode(delivery)?))
            .condition_expression("attribute_not_exists(delivery_id)")
            .send()
            .await;
        Ok(condition_held("PutItem webhook delivery", result)?.is_some())
    }

    pub async fn get(
        &self,
        endpoint_id: &str,
        delivery_id: &str,
    ) -> Result<Option<Delivery>, StorageError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .consistent_read(true)
            .key("endpoint_id", s(endpoint_id))
            .key("delivery_id", s(delivery_id))
            .send()
            .await
            .map_err(|e| classify("GetItem webhook delivery", &e))?;
        out.item.map(decode).transpose()
    }

    /// Takes the lease on a delivery that is due and not leased; `None` when it is not
    /// (someone else has it, it is done, or not due yet).
    pub async fn claim(
        &self,
        endpoint_id: &str,
        delivery_id: &str,
        now: Timestamp,
        lease: std::time::Duration,
    ) -> Result<Option<Delivery>, StorageError> {
        let now_ms = now.timestamp_millis();
        let token = uuid::Uuid::new_v4().to_string();
        let until = now_ms + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("endpoint_id", s(endpoint_id))
            .key("delivery_id", s(delivery_id))
            .update_expression("SET lease_until = :until, lease_token = :token")
            .condition_expression(
                "#status = :pending AND next_attempt_at <= :now \
                 AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":token", s(&token))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        condition_held("UpdateItem claim webhook delivery", result)?
            .and_then(|out| out.attributes)
            .map(decode)
            .transpose()
    }

    /// Stores `delivery` as its lease holder left it (the lease released); `false` when the
    /// lease was lost in between (it ran out and another worker took it).
    pub async fn settle(&self, delivery: &Delivery, token: &str) -> Result<bool, StorageError> {
        let mut delivery = delivery.clone();
        delivery.lease_until = None;
        delivery.lease_token = None;
        let result = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(encode(&delivery)?))
            .condition_expression("lease_token = :token")
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        Ok(condition_held("PutItem settle webhook delivery", result)?.is_some())
    }

    /// Makes a finished delivery due again now (a member's re-send); the updated delivery,
    /// or `None` when there is no such delivery or it is pending already.
    pub async fn resend(
        &self,
        endpoint_id: &str,
        delivery_id: &str,
        now: Timestamp,
    ) -> Result<Option<Delivery>, StorageError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("endpoint_id", s(endpoint_id))
            .key("delivery_id", s(delivery_id))
            .update_expression(
                "SET #status = :pending, next_attempt_at = :now, due = :due, resend_requested = :yes \
                 REMOVE dropped_reason",
            )
            .condition_expression("attribute_exists(delivery_id) AND #status <> :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .expression_attribute_values(":due", s(DUE))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        condition_held("UpdateItem resend webhook delivery", result)?
            .and_then(|out| out.attributes)
            .map(decode)
            .transpose()
    }

    /// The keys (endpoint id, delivery id) of deliveries due by `now`, oldest due first
    /// (at most `limit`). The index holds keys only: the claim reads the item itself.
    pub async fn due(
        &self,
        now: Timestamp,
        limit: i32,
    ) -> Result<Vec<(String, String)>, StorageError> {
        let out = self
            .client
            .query()
            .table_name(&self.name)
            .index_name(DUE_INDEX)
            .key_condition_expression("due = :due AND next_attempt_at <= :now")
            .expression_attribute_values(":due", s(DUE))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .limit(limit)
            .send()
            .await
            .map_err(|e| classify("Query due webhook deliveries", &e))?;
        let key = |item: &Item, name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .ok_or_else(|| corrupt("webhook delivery index", format!("no {name}")))
        };
        out.items
            .unwrap_or_default()
            .iter()
            .map(|item| Ok((key(item, "endpoint_id")?, key(item, "delivery_id")?)))
            .collect()
    }

    /// An endpoint's deliveries, newest first (delivery ids are not ordered by time, so a
    /// page is read whole and sorted: an endpoint keeps 30 days of them).
    pub async fn list(&self, endpoint_id: &str) -> Result<Vec<Delivery>, StorageError> {
        let items: Vec<_> = self
            .client
            .query()
            .table_name(&self.name)
            .key_condition_expression("endpoint_id = :id")
            .expression_attribute_values(":id", s(endpoint_id))
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        let mut deliveries = items
            .into_iter()
            .map(|item| decode(item.map_err(|e| classify("Query webhook deliveries", &e))?))
            .collect::<Result<Vec<_>, _>>()?;
        deliveries
            .sort_by(|a, b| (b.created_at, &b.delivery_id).cmp(&(a.created_at, &a.delivery_id)));
        Ok(deliveries)
    }
}
