//! The idempotency table: one record per (org, Idempotency-Key). An IN_PROGRESS record is
//! taken by a conditional put; COMPLETED holds the response to replay. DynamoDB TTL deletes
//! records a while after `expires_at_epoch`; expiry is also checked here because TTL lags.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;

use crate::idempotency::record::{
    IdempotencyKey, StoredResponse, IDEMPOTENCY_TTL_SECS, IN_PROGRESS_LOCK_SECS,
};
use crate::org::OrgId;
use crate::storage::{classify, corrupt, service_code, unless_condition_failed, StorageError};
use crate::time::{self, Timestamp};

const IN_PROGRESS: &str = "IN_PROGRESS";
const COMPLETED: &str = "COMPLETED";

/// What `begin` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The key is ours: execute, then `complete` or `release` under this lease.
    Started(Lease),
    /// The same request completed before: answer with this.
    Replay(StoredResponse),
    /// The same request is still running elsewhere.
    InProgress,
    /// The key was used for a different request.
    Reused,
}

/// What the request that took a key holds. Completing or releasing the record is
/// conditional on the token it wrote, so a late owner never overwrites the record of one
/// that took over. `reserved` is the id a new resource of this request takes: the one
/// the caller proposed, or, when this request took over an earlier run of the same request
/// whose outcome is unknown, the one that run reserved — so running again makes the same
/// customer instead of a second one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    token: String,
    pub reserved: String,
}

#[derive(Clone, Debug)]
pub struct IdempotencyTable {
    client: Client,
    name: String,
}

fn pk(org: &OrgId, key: &IdempotencyKey) -> AttributeValue {
    // Org ids cannot contain '#', so the first '#' always separates the two.
    AttributeValue::S(format!("{org}#{}", key.as_str()))
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn read_existing(
    item: &HashMap<String, AttributeValue>,
    fingerprint: &str,
) -> Result<Begin, StorageError> {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    };
    if text("fingerprint") != Some(fingerprint) {
        return Ok(Begin::Reused);
    }
    match text("status") {
        Some(IN_PROGRESS) => Ok(Begin::InProgress),
        Some(COMPLETED) => {
            let response = text("stored_response")
                .ok_or_else(|| corrupt("idempotency record", "no response"))?;
            let stored =
                serde_json::from_str(response).map_err(|e| corrupt("idempotency record", e))?;
            Ok(Begin::Replay(stored))
        }
        _ => Err(corrupt("idempotency record", "unknown status")),
    }
}

impl IdempotencyTable {
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

    /// Takes the key for this request, or says why not. The put succeeds when there is no
    /// record, when it has expired, or when an in-progress holder outlived or released its
    /// lock. `reserve` is the id this request proposes for what it creates.
    pub async fn begin(
        &self,
        org: &OrgId,
        key: &IdempotencyKey,
        fingerprint: &str,
        now: Timestamp,
        reserve: &str,
    ) -> Result<Begin, StorageError> {
        let now_ms = now.timestamp_millis();
        let token = uuid::Uuid::new_v4().to_string();
        let result = self
            .client
            .put_item()
            .table_name(&self.name)
            .item("pk", pk(org, key))
            .item("status", s(IN_PROGRESS))
            .item("fingerprint", s(fingerprint))
            .item("lock_token", s(&token))
            .item("reserved", s(reserve))
            .item("created_at", s(&time::format(&now)))
            .item("locked_until_ms", n(now_ms + IN_PROGRESS_LOCK_SECS * 1000))
            .item(
                "expires_at_epoch",
                n(now.timestamp() + IDEMPOTENCY_TTL_SECS),
            )
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at_epoch <= :now_s \
                 OR (#status = :in_progress AND locked_until_ms <= :now_ms)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now_s", n(now.timestamp()))
            .expression_attribute_values(":now_ms", n(now_ms))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(output) => {
                let mut lease = Lease {
                    token,
                    reserved: reserve.to_owned(),
                };
                if let Some(earlier) = output.attributes.as_ref().and_then(|old| {
                    let text = |name: &str| old.get(name).and_then(|v| v.as_s().ok());
                    let same_run = text("status").map(String::as_str) == Some(IN_PROGRESS)
                        && text("fingerprint").map(String::as_str) == Some(fingerprint);
                    text("reserved").filter(|_| same_run).cloned()
                }) {
                    self.keep_reserved(org, key, &lease, &earlier).await?;
                    lease.reserved = earlier;
                }
                return Ok(Begin::Started(lease));
            }
            Err(err) if service_code(&err) == Some("ConditionalCheckFailedException") => err,
            Err(err) => return Err(classify("PutItem idempotency", &err)),
        };
        let returned = err.as_service_error().and_then(|e| match e {
            aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => c.item().cloned(),
            _ => None,
        });
        // DynamoDB returns the record that failed the condition (ALL_OLD): no read is
        // needed, and none is granted. A failure without it would be a record that vanished
        // in between: the client retries.
        let item = returned.ok_or_else(|| {
            StorageError::Unavailable("idempotency record vanished; retry".into())
        })?;
        read_existing(&item, fingerprint)
    }

    /// Carries the id an earlier run of the same request reserved over to our record.
    async fn keep_reserved(
        &self,
        org: &OrgId,
        key: &IdempotencyKey,
        lease: &Lease,
        reserved: &str,
    ) -> Result<(), StorageError> {
        self.client
            .update_item()
            .table_name(&self.name)
            .key("pk", pk(org, key))
            .update_expression("SET reserved = :reserved")
            .condition_expression("lock_token = :token")
            .expression_attribute_values(":reserved", s(reserved))
            .expression_attribute_values(":token", s(&lease.token))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("UpdateItem idempotency reserved", &e))
    }

    /// Stores the response of a request that ran. If our lock was taken over meanwhile, the
    /// newer holder's record stands.
    pub async fn complete(
        &self,
        org: &OrgId,
        key: &IdempotencyKey,
        lease: &Lease,
        response: &StoredResponse,
    ) -> Result<(), StorageError> {
        let response =
            serde_json::to_string(response).map_err(|e| corrupt("idempotency response", e))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("pk", pk(org, key))
            .update_expression(
                "SET #status = :completed, stored_response = :response \
                 REMOVE locked_until_ms, lock_token",
            )
            .condition_expression("#status = :in_progress AND lock_token = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":completed", s(COMPLETED))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":token", s(&lease.token))
            .expression_attribute_values(":response", s(&response))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if service_code(&e) == Some("ConditionalCheckFailedException") => {
                tracing::warn!("idempotency lock was taken over before completion");
                Ok(())
            }
            Err(e) => Err(classify("UpdateItem idempotency", &e)),
        }
    }

    /// Lets the key go after a 5xx (or a 400 found while running), so the client's retry
    /// runs again at once: the lock lapses now. The record keeps its reserved id, so if a
    /// write of this run landed after all (a timeout leaves that unknown), running again
    /// finds it rather than making another.
    pub async fn release(
        &self,
        org: &OrgId,
        key: &IdempotencyKey,
        lease: &Lease,
    ) -> Result<(), StorageError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("pk", pk(org, key))
            .update_expression("SET locked_until_ms = :lapsed")
            .condition_expression("#status = :in_progress AND lock_token = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":token", s(&lease.token))
            .expression_attribute_values(":lapsed", n(0))
            .send()
            .await;
        unless_condition_failed("UpdateItem idempotency release", result)
    }
}

impl IdempotencyTable {
    /// What becomes of a record once its request has its answer: a 5xx must run again on
    /// retry and a 400 is validation (found while running), so both release the key; any
    /// other answer is stored to be replayed. The write happened either way, so a failure
    /// to store only leaves the record in progress until its lock lapses (logged, never the
    /// client's error). Storing must finish by `by`.
    pub async fn settle(
        &self,
        org: &OrgId,
        key: &IdempotencyKey,
        lease: &Lease,
        response: &lambda_http::Response<lambda_http::Body>,
        by: tokio::time::Instant,
    ) {
        let status = response.status();
        if status.is_server_error() || status == lambda_http::http::StatusCode::BAD_REQUEST {
            if let Err(err) = self.release(org, key, lease).await {
                tracing::error!(error = %err, "could not release an idempotency key");
            }
            return;
        }
        let stored = crate::idempotency::record::StoredResponse::capture(response);
        match tokio::time::timeout_at(by, self.complete(org, key, lease, &stored)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "could not store an idempotent response"),
            Err(_) => tracing::error!("ran out of time storing an idempotent response"),
        }
    }
}
