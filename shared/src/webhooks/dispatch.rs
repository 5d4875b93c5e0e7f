//! From table changes to deliveries. The dispatcher takes DynamoDB Streams batches (the
//! deployed event source mapping, or the local stack's poller: the same JSON, the same
//! handler), makes the events of each record, and stores one delivery per subscribed
//! endpoint of the record's org and mode before anything is sent; then it makes each new
//! delivery's first attempt. The retrier (every minute, and the local stack's loop) makes
//! the attempts that come due later; the daily sweep makes `api_key.expiring`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use crate::audit::Audited;
use crate::customers::model::{AmlStatus, Customer, CustomerView, KycStatus};
use crate::customers::table::customer_from_item;
use crate::keys::scope::Scope;
use crate::keys::table::{key_from_item, ApiKeysTable};
use crate::members::role::Permission;
use crate::members::table::{MemberStatus, MembersTable};
use crate::org::{Mode, OrgId};
use crate::storage::StorageError;
use crate::time::{self, Timestamp};
use crate::webhooks::delivery::{Attempt, Delivery, DeliveryStatus, WebhookDeliveriesTable};
use crate::webhooks::endpoint::{Creator, WebhookEndpoint, DISABLE_AFTER_FAILING_SECS};
use crate::webhooks::event::{event_id, without_aml, Event, EventType};
use crate::webhooks::sender::WebhookSender;
use crate::webhooks::table::WebhookEndpointsTable;

/// Waits before each retry, after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub const RETRY_SCHEDULE_SECS: [u64; 7] = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
/// How long a worker holds a delivery it is sending: past one attempt's limit.
pub const LEASE: Duration = Duration::from_secs(30);
/// Kept free at the end of an invocation to record what was sent.
const RECORD_MARGIN: Duration = Duration::from_secs(3);
/// Deliveries one sweep takes at once.
const SWEEP_BATCH: i32 = 25;
/// `api_key.expiring` is sent for keys expiring 7 days ahead; the daily sweep looks at a
/// 2-day window so a late or early run misses none (the event id is per key and expiry,
/// so a key seen twice is delivered once).
pub const EXPIRING_AHEAD_DAYS: i64 = 7;

/// What the webhook workers share: the tables, the sender and their timings.
#[derive(Debug, Clone)]
pub struct Webhooks {
    pub endpoints: WebhookEndpointsTable,
    /// Endpoint creators, to deliver no more than they may now see.
    pub keys: ApiKeysTable,
    pub members: MembersTable,
    pub deliveries: WebhookDeliveriesTable,
    /// Where the platform's own changes to endpoints (disabling one) are recorded.
    pub audit: crate::audit::AuditLog,
    pub sender: WebhookSender,
    /// Opens the endpoints' sealed signing secrets, one delivery at a time.
    pub vault: Option<crate::providers::vault::Vault>,
    pub retry_schedule: Vec<Duration>,
    pub lease: Duration,
    pub disable_after: chrono::Duration,
}

impl Webhooks {
    pub fn new(app: &crate::App) -> Self {
        Self {
            endpoints: app.webhook_endpoints.clone(),
            keys: app.keys.clone(),
            members: app.members.clone(),
            deliveries: app.webhook_deliveries.clone(),
            audit: app.audit.clone(),
            sender: WebhookSender::new(app.webhook_targets.clone()),
            vault: app.vault.clone(),
            retry_schedule: RETRY_SCHEDULE_SECS
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            lease: LEASE,
            disable_after: chrono::Duration::seconds(DISABLE_AFTER_FAILING_SECS),
        }
    }

    /// The same workers, their AWS calls signed as `access_key_id` (`App::signing_as`).
    pub fn signing_as(&self, access_key_id: &str) -> Self {
        Self {
            endpoints: self.endpoints.signing_as(access_key_id),
            keys: self.keys.signing_as(access_key_id),
            members: self.members.signing_as(access_key_id),
            deliveries: self.deliveries.signing_as(access_key_id),
            audit: self.audit.signing_as(access_key_id),
            vault: self.vault.as_ref().map(|v| v.signing_as(access_key_id)),
            ..self.clone()
        }
    }
}

// --- Stream records -------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct StreamBatch {
    #[serde(rename = "Records", default)]
    records: Vec<StreamRecord>,
}

#[derive(Debug, Deserialize)]
struct StreamRecord {
    #[serde(rename = "eventName", default)]
    event_name: String,
    dynamodb: StreamData,
}

#[derive(Debug, Deserialize)]
struct StreamData {
    #[serde(rename = "NewImage", default)]
    new_image: Option<serde_dynamo::Item>,
    #[serde(rename = "OldImage", default)]
    old_image: Option<serde_dynamo::Item>,
    #[serde(rename = "SequenceNumber", default)]
    sequence_number: String,
}

type Image = HashMap<String, AttributeValue>;

fn image(item: Option<serde_dynamo::Item>) -> Option<Image> {
    item.map(Into::into)
}

/// Live or test, and the org, of a data space (`acme`, `acme#test`).
fn space_of(pk: &str) -> Option<(OrgId, Mode)> {
    match pk.strip_suffix("#test") {
        Some(org) => Some((OrgId::parse(org).ok()?, Mode::Test)),
        None => Some((OrgId::parse(pk).ok()?, Mode::Live)),
    }
}

fn is_verified(customer: &Customer) -> bool {
    customer.kyc_status == KycStatus::Verified && customer.aml.status == AmlStatus::Clear
}

/// The fields of `old` that differ in `new`, as they were; `None` when nothing but
/// `updated_at` changed (a write that changed nothing is no event).
fn previous_attributes(old: &Value, new: &Value) -> Option<Value> {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return None;
    };
    let changed: Map<String, Value> = new
        .iter()
        .filter(|(name, value)| old.get(*name) != Some(*value))
        .map(|(name, _)| (name.clone(), old.get(name).cloned().unwrap_or(Value::Null)))
        .collect();
    changed
        .keys()
        .any(|name| name != "updated_at")
        .then_some(Value::Object(changed))
}

/// An event, and where it belongs.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    pub org: OrgId,
    pub mode: Mode,
    pub event: Event,
}

/// The events a stream record stands for: customers created, changed, verified; keys
/// revoked. Anything else (external id markers, the keys' per-second counters, deletes)
/// makes none.
fn events_of(record: StreamRecord, now: Timestamp) -> Result<Vec<Routed>, StorageError> {
    if record.event_name == "REMOVE" {
        return Ok(Vec::new());
    }
    let (Some(new), old) = (
        image(record.dynamodb.new_image),
        image(record.dynamodb.old_image),
    ) else {
        return Ok(Vec::new());
    };
    if new.contains_key("key_hash") {
        return key_events(new, old, now);
    }
    if new.contains_key("hash") && new.contains_key("event") {
        // The audit trail's events are only ever put: an INSERT is a new event.
        if record.event_name != "INSERT" || old.is_some() {
            return Ok(Vec::new());
        }
        return audit_events(&new);
    }
    let Some(stored) = customer_from_item(new) else {
        return Ok(Vec::new());
    };
    let (pk, stored) = stored?;
    let Some((org, mode)) = space_of(&pk) else {
        return Ok(Vec::new());
    };
    let previous = old
        .and_then(customer_from_item)
        .transpose()?
        .map(|(_, s)| s);
    let customer = &stored.customer;
    let object = CustomerView::FULL.render(customer);
    let id = customer.id.to_string();
    let version = stored.version.to_string();
    let mut events = Vec::new();
    let mut push = |kind: EventType, parts: &[&str], previous_attributes: Option<Value>| {
        events.push(Routed {
            org: org.clone(),
            mode,
            event: Event {
                id: event_id(&[&[kind.as_str()], parts].concat()),
                kind,
                created_at: customer.updated_at,
                object: object.clone(),
                previous_attributes,
            },
        });
    };
    match &previous {
        None => push(EventType::CustomerCreated, &[&id], None),
        Some(old) => {
            let before = CustomerView::FULL.render(&old.customer);
            match previous_attributes(&before, &object) {
                Some(changed) => push(EventType::CustomerUpdated, &[&id, &version], Some(changed)),
                None => return Ok(Vec::new()),
            }
        }
    }
    if is_verified(customer)
        && !previous
            .as_ref()
            .is_some_and(|old| is_verified(&old.customer))
    {
        push(EventType::CustomerVerified, &[&id, &version], None);
    }
    let _ = now;
    Ok(events)
}

/// `audit_event.created` for a new event of an org's audit trail: its public form (with
/// its hash), to the org's live endpoints.
fn audit_events(new: &Image) -> Result<Vec<Routed>, StorageError> {
    let text = |name: &str| {
        new.get(name)
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| crate::storage::corrupt("audit event", name))
    };
    let org =
        OrgId::parse(text("org_id")?).map_err(|e| crate::storage::corrupt("audit event", e))?;
    let object = crate::audit::event::public_json(text("event")?, text("hash")?)
        .map_err(|e| crate::storage::corrupt("audit event", e))?;
    let id = object["id"].as_str().unwrap_or_default().to_owned();
    let created_at = object["at"]
        .as_str()
        .and_then(time::parse)
        .ok_or_else(|| crate::storage::corrupt("audit event", "at"))?;
    let kind = EventType::AuditEventCreated;
    Ok(vec![Routed {
        org: org.clone(),
        mode: Mode::Live,
        event: Event {
            id: event_id(&[kind.as_str(), org.as_str(), &id]),
            kind,
            created_at,
            object,
            previous_attributes: None,
        },
    }])
}

fn key_events(new: Image, old: Option<Image>, now: Timestamp) -> Result<Vec<Routed>, StorageError> {
    let revoked_now = new.contains_key("revoked_at")
        && !old
            .as_ref()
            .is_some_and(|old| old.contains_key("revoked_at"));
    if !revoked_now {
        return Ok(Vec::new());
    }
    let key = key_from_item(new)?;
    let kind = EventType::ApiKeyRevoked;
    Ok(vec![Routed {
        org: key.org_id.clone(),
        mode: key.mode(),
        event: Event {
            id: event_id(&[kind.as_str(), &key.id]),
            kind,
            created_at: key.revoked_at.unwrap_or(now),
            object: key.to_public_json(now),
            previous_attributes: None,
        },
    }])
}

// --- Enqueue and attempt ---------------------------------------------------------------

/// What an endpoint's creator may see now, read once per batch: deliveries carry no more
/// than that, whatever the creator could see when the endpoint was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sight {
    customers: bool,
    aml: bool,
    /// The audit trail (`org.audit`): a member's role only; never a key.
    audit: bool,
}

/// An org's endpoints, and their creators' sight, read once per batch.
#[derive(Default)]
struct EndpointCache {
    endpoints: HashMap<OrgId, Vec<WebhookEndpoint>>,
    /// `None`: the creator can no longer act (a revoked or expired key, a deactivated or
    /// removed member).
    creators: HashMap<(OrgId, String), Option<Sight>>,
}

impl EndpointCache {
    async fn of(
        &mut self,
        table: &WebhookEndpointsTable,
        org: &OrgId,
    ) -> Result<Vec<WebhookEndpoint>, StorageError> {
        if !self.endpoints.contains_key(org) {
            let endpoints = table.list(org).await?;
            self.endpoints.insert(org.clone(), endpoints);
        }
        Ok(self.endpoints.get(org).cloned().unwrap_or_default())
    }

    async fn sight(
        &mut self,
        webhooks: &Webhooks,
        endpoint: &WebhookEndpoint,
        now: Timestamp,
    ) -> Result<Option<Sight>, StorageError> {
        let id = match endpoint.binding() {
            Creator::ApiKey { id } | Creator::Member { id, .. } => id.clone(),
        };
        let cache_key = (endpoint.org_id.clone(), id);
        if let Some(known) = self.creators.get(&cache_key) {
            return Ok(*known);
        }
        let sight = match endpoint.binding() {
            Creator::ApiKey { id } => webhooks
                .keys
                .find_by_id(&endpoint.org_id, id)
                .await?
                .filter(|key| key.status(now) == "active")
                .map(|key| Sight {
                    customers: key.scopes.contains(&Scope::CustomersRead),
                    aml: key.scopes.contains(&Scope::AmlRead),
                    audit: false,
                }),
            Creator::Member { id, .. } => webhooks
                .members
                .get(id)
                .await?
                .filter(|m| m.org_id == endpoint.org_id && m.status == MemberStatus::Active)
                .map(|m| Sight {
                    customers: m.role.has(Permission::CustomersRead),
                    aml: m.role.has(Permission::AmlRead),
                    audit: m.role.has(Permission::OrgAudit),
                }),
        };
        self.creators.insert(cache_key, sight);
        Ok(sight)
    }
}

/// A delivery's key.
pub type DeliveryKey = (String, String);

impl Webhooks {
    /// Stores a delivery of `routed` to each endpoint of its org and mode that wants it;
    /// the keys of those that were new.
    async fn enqueue(
        &self,
        routed: &Routed,
        cache: &mut EndpointCache,
    ) -> Result<Vec<DeliveryKey>, StorageError> {
        let now = time::now();
        let mut made = Vec::new();
        for endpoint in cache.of(&self.endpoints, &routed.org).await? {
            if endpoint.mode() != routed.mode || !endpoint.wants(routed.event.kind) {
                continue;
            }
            // Within what its creator may see now: a creator gone disables the endpoint,
            // one who may no longer read customers gets no customer events, and AML only
            // while the creator may still read it.
            let Some(sight) = cache.sight(self, &endpoint, now).await? else {
                self.disable_orphan(&endpoint).await;
                continue;
            };
            if routed.event.kind.carries_customer() && !sight.customers {
                continue;
            }
            if routed.event.kind.carries_audit() && !sight.audit {
                continue;
            }
            let include_aml = endpoint.include_aml && sight.aml;
            if !routed.event.visible(include_aml) {
                continue;
            }
            let payload = routed.event.payload(include_aml).to_string();
            let delivery = Delivery::new(
                &endpoint.endpoint_id,
                &routed.org,
                &routed.event.id,
                routed.event.kind,
                payload,
                now,
            );
            if self.deliveries.enqueue(&delivery).await? {
                made.push((delivery.endpoint_id, delivery.delivery_id));
            }
        }
        Ok(made)
    }

    /// A batch from a stream: `{"batchItemFailures":[{"itemIdentifier": <sequence
    /// number>}]}` naming the first record whose deliveries could not all be stored (the
    /// event source mapping sends it, and those after it, again: storing is idempotent).
    /// Then the first attempt of each new delivery, while time allows.
    pub async fn handle_stream(self: &Arc<Self>, batch: &Value, deadline: Instant) -> Value {
        let batch: StreamBatch = match serde_json::from_value(batch.clone()) {
            Ok(batch) => batch,
            Err(err) => {
                tracing::error!(error = %err, "not a DynamoDB Streams batch");
                return json!({"batchItemFailures": []});
            }
        };
        let mut cache = EndpointCache::default();
        let mut made = Vec::new();
        let mut failed = None;
        for record in batch.records {
            let sequence = record.dynamodb.sequence_number.clone();
            let outcome = async {
                let mut keys = Vec::new();
                for routed in events_of(record, time::now())? {
                    keys.extend(self.enqueue(&routed, &mut cache).await?);
                }
                Ok::<_, StorageError>(keys)
            }
            .await;
            match outcome {
                Ok(keys) => made.extend(keys),
                Err(StorageError::Corrupt(detail)) => {
                    // A record that can never decode would block the shard forever.
                    tracing::error!(error = %detail, sequence = %sequence, "stream record skipped");
                }
                Err(err) => {
                    tracing::warn!(error = %err, sequence = %sequence, "deliveries not stored; the batch resumes here");
                    failed = Some(sequence);
                    break;
                }
            }
        }
        self.attempt_all(made, deadline).await;
        match failed {
            Some(sequence) => json!({"batchItemFailures": [{"itemIdentifier": sequence}]}),
            None => json!({"batchItemFailures": []}),
        }
    }

    /// Attempts each delivery at once, those that can finish before `deadline`; the rest
    /// wait for the retrier.
    async fn attempt_all(self: &Arc<Self>, keys: Vec<DeliveryKey>, deadline: Instant) -> usize {
        let by = deadline.checked_sub(RECORD_MARGIN).unwrap_or(deadline);
        if Instant::now() + self.sender.timeout > by {
            return 0;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (endpoint_id, delivery_id) in keys {
            let this = self.clone();
            tasks.spawn(async move { this.attempt(&endpoint_id, &delivery_id).await });
        }
        let mut attempted = 0;
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(Some(_))) => attempted += 1,
                Ok(Ok(None)) => {}
                Ok(Err(err)) => tracing::warn!(error = %err, "webhook attempt not recorded"),
                Err(err) => tracing::error!(error = %err, "webhook attempt task failed"),
            }
        }
        attempted
    }

    /// One attempt at a due delivery (if this worker gets its lease): sent, recorded, the
    /// next one scheduled or the delivery finished, and the endpoint's health noted. The
    /// attempt made, or `None` when there was nothing to do.
    pub async fn attempt(
        &self,
        endpoint_id: &str,
        delivery_id: &str,
    ) -> Result<Option<Attempt>, StorageError> {
        let now = time::now();
        let Some(mut delivery) = self
            .deliveries
            .claim(endpoint_id, delivery_id, now, self.lease)
            .await?
        else {
            return Ok(None);
        };
        let token = delivery.lease_token.clone().unwrap_or_default();
        let endpoint = self.endpoints.get(&delivery.org_id, endpoint_id).await?;
        let endpoint = match endpoint {
            Some(endpoint) if endpoint.enabled => endpoint,
            gone => {
                let reason = if gone.is_none() {
                    "the endpoint was deleted"
                } else {
                    "the endpoint is disabled"
                };
                self.drop_delivery(&mut delivery, &token, reason).await?;
                return Ok(None);
            }
        };
        // What the endpoint's binding may see now, at the time of sending: a retry hours
        // later, after a demotion, carries no more than the demoted principal may see, and
        // a re-send after the endpoint was re-pointed carries only what whoever re-pointed
        // it may see (the stored body is trimmed here, or not sent).
        let sight = EndpointCache::default().sight(self, &endpoint, now).await?;
        let include_aml = endpoint.include_aml && sight.is_some_and(|s| s.aml);
        let refusal = match sight {
            None => Some("the endpoint's creator can no longer act"),
            Some(sight) if delivery.event_type.carries_customer() && !sight.customers => {
                Some("the endpoint's creator may no longer read customers")
            }
            Some(sight) if delivery.event_type.carries_audit() && !sight.audit => {
                Some("the endpoint's binding may no longer read the audit trail")
            }
            Some(_) if !endpoint.events.contains(&delivery.event_type) => {
                Some("the endpoint no longer takes this event type")
            }
            Some(_) if delivery.event_type.states_aml() && !include_aml => {
                Some("the endpoint no longer carries AML results")
            }
            Some(_) => None,
        };
        if let Some(reason) = refusal {
            self.drop_delivery(&mut delivery, &token, reason).await?;
            if sight.is_none() {
                self.disable_orphan(&endpoint).await;
            }
            return Ok(None);
        }
        let body = if include_aml {
            delivery.payload.clone()
        } else {
            without_aml(&delivery.payload)
        };
        // The secrets, opened for this attempt only (and wiped when it is done). KMS out of
        // reach leaves the delivery to its lease and the next sweep; a secret that will not
        // open (altered, or moved from another endpoint's row) can never sign: dropped.
        let mut secrets = Vec::new();
        for stored in endpoint.signing_secrets(now) {
            match stored
                .open(self.vault.as_ref(), &endpoint.org_id, &endpoint.endpoint_id)
                .await
            {
                Ok(secret) => secrets.push(secret),
                Err(crate::providers::vault::VaultError::Unavailable(detail)) => {
                    return Err(StorageError::Unavailable(format!(
                        "the endpoint's signing secret could not be opened now: {detail}"
                    )));
                }
                Err(err) => {
                    tracing::error!(endpoint_id = %endpoint.endpoint_id, error = %err, "webhook signing secret refused");
                    let reason = "the endpoint's signing secret could not be opened";
                    self.drop_delivery(&mut delivery, &token, reason).await?;
                    return Ok(None);
                }
            }
        }
        let mut attempt = self
            .sender
            .send(&endpoint.url, &delivery.delivery_id, &secrets, &body, now)
            .await;
        drop(secrets);
        attempt.resend = std::mem::take(&mut delivery.resend_requested);
        let succeeded = attempt.succeeded();
        let gone = attempt.status_code == Some(410);
        delivery.add_attempt(attempt.clone());
        if succeeded {
            delivery.finish(DeliveryStatus::Succeeded);
        } else if attempt.resend {
            // A re-send is one attempt, outside the schedule.
            delivery.finish(DeliveryStatus::Failed);
        } else {
            let wait = self.retry_schedule.get(delivery.failures as usize).copied();
            delivery.failures += 1;
            match wait {
                Some(wait) if !gone => delivery.schedule(
                    time::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX),
                ),
                _ => delivery.finish(DeliveryStatus::Failed),
            }
        }
        if !self.deliveries.settle(&delivery, &token).await? {
            tracing::warn!(delivery_id = %delivery.delivery_id, "lease lost before the attempt was recorded; it will be sent again");
        }
        self.note_health(&endpoint, succeeded, gone).await;
        Ok(Some(attempt))
    }

    /// Ends a claimed delivery unsent, with why (a re-send asked for goes with it).
    async fn drop_delivery(
        &self,
        delivery: &mut Delivery,
        token: &str,
        reason: &str,
    ) -> Result<(), StorageError> {
        delivery.dropped_reason = Some(reason.to_owned());
        delivery.resend_requested = false;
        delivery.finish(DeliveryStatus::Dropped);
        self.deliveries.settle(delivery, token).await?;
        Ok(())
    }

    /// Applies `change` to the endpoint as stored (it says whether it changed anything),
    /// retried when another edit lands in between; the endpoint as stored after, if it
    /// changed. Failures are logged: an endpoint's bookkeeping never fails a delivery.
    async fn edit_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        what: &str,
        change: impl Fn(&mut WebhookEndpoint, Timestamp) -> bool,
    ) -> Option<WebhookEndpoint> {
        for _ in 0..3 {
            let Ok(Some(read)) = self
                .endpoints
                .get(&endpoint.org_id, &endpoint.endpoint_id)
                .await
            else {
                return None;
            };
            let mut current = read.clone();
            let now = time::now();
            if !change(&mut current, now) {
                return None;
            }
            current.updated_at = now.max(current.updated_at);
            // The platform acted: a disabling is on the record with its reason (a failure
            // clock started or cleared changes nothing the trail records, so writes none).
            let author = crate::audit::Author {
                actor: crate::audit::Actor::Platform {
                    id: "webhook_delivery".into(),
                    reason: current
                        .disabled_reason
                        .clone()
                        .unwrap_or_else(|| format!("the endpoint's {what}")),
                },
                origin: crate::audit::Origin::default(),
            };
            let recorded = read.audit_change("webhook_endpoint.updated", &current);
            match self
                .endpoints
                .replace(&self.audit, &author, &mut current, recorded)
                .await
            {
                Ok(true) => {
                    if !current.enabled && endpoint.enabled {
                        tracing::warn!(endpoint_id = %current.endpoint_id, reason = what, "webhook endpoint disabled");
                    }
                    return Some(current);
                }
                Ok(false) => continue,
                Err(err) => {
                    tracing::warn!(error = %err, what, "webhook endpoint not updated");
                    return None;
                }
            }
        }
        None
    }

    /// Disables an endpoint whose creator can no longer act, the reason recorded (once:
    /// an endpoint disabled already is left as it is).
    async fn disable_orphan(&self, endpoint: &WebhookEndpoint) {
        self.edit_endpoint(endpoint, "its creator can no longer act", |current, now| {
            if !current.enabled {
                return false;
            }
            current.enabled = false;
            current.disabled_at = Some(now);
            current.disabled_reason = Some(match &current.created_by {
                Creator::ApiKey { id } => format!(
                    "The API key that made it ({id}) was revoked or expired: nothing is delivered on its behalf. Delete this endpoint, or make a new one."
                ),
                Creator::Member { email, .. } => format!(
                    "The member who made it ({email}) was deactivated: nothing is delivered on their behalf. Delete this endpoint, or make a new one."
                ),
            });
            true
        })
        .await;
    }

    /// The endpoint's failure clock: cleared by a success, started by a first failure;
    /// after `disable_after` of nothing but failures (or a 410 Gone) it is disabled, the
    /// reason recorded.
    async fn note_health(&self, endpoint: &WebhookEndpoint, succeeded: bool, gone: bool) {
        let disable_after = self.disable_after;
        self.edit_endpoint(endpoint, "its health", |current, now| {
            if succeeded {
                return current.failing_since.take().is_some();
            }
            if gone {
                current.enabled = false;
                current.disabled_at = Some(now);
                current.disabled_reason =
                    Some("The receiver answered 410 Gone: it asked for no more deliveries.".into());
                return true;
            }
            match current.failing_since {
                None => {
                    current.failing_since = Some(now);
                    true
                }
                Some(since) if now - since >= disable_after && current.enabled => {
                    current.enabled = false;
                    current.disabled_at = Some(now);
                    current.disabled_reason = Some(format!(
                        "Every delivery since {} failed: disabled after {} days. Fix the receiver, then enable it again.",
                        time::format(&since),
                        disable_after.num_days()
                    ));
                    true
                }
                Some(_) => false,
            }
        })
        .await;
    }

    /// One pass over what is due: each attempted at once. How many were attempted.
    pub async fn sweep_once(self: &Arc<Self>, deadline: Instant) -> Result<usize, StorageError> {
        let keys = self.deliveries.due(time::now(), SWEEP_BATCH).await?;
        Ok(self.attempt_all(keys, deadline).await)
    }

    /// The retrier: sweeps, `poll` apart, until one more attempt could outlast `deadline`.
    pub async fn sweep_until(self: &Arc<Self>, deadline: Instant, poll: Duration) -> usize {
        self.sweep_until_observed(deadline, poll, |_| {}).await
    }

    /// As `sweep_until`, telling `idle` when each sweep that found nothing due began (the
    /// local stack's workers report it, so tests can wait for an idle retrier).
    pub async fn sweep_until_observed(
        self: &Arc<Self>,
        deadline: Instant,
        poll: Duration,
        mut idle: impl FnMut(Instant),
    ) -> usize {
        let mut attempted = 0;
        while Instant::now() + self.sender.timeout + RECORD_MARGIN < deadline {
            let began = Instant::now();
            match self.sweep_once(deadline).await {
                Ok(0) => {
                    idle(began);
                    tokio::time::sleep(poll).await
                }
                Ok(n) => attempted += n,
                Err(err) => {
                    tracing::warn!(error = %err, "webhook sweep failed");
                    tokio::time::sleep(poll).await;
                }
            }
        }
        attempted
    }

    /// The daily `api_key.expiring`: each live key expiring within 6-8 days gets one event
    /// (per key and expiry), to its org's endpoints of its mode.
    pub async fn expiring(
        self: &Arc<Self>,
        keys: &ApiKeysTable,
        deadline: Instant,
    ) -> Result<usize, StorageError> {
        let now = time::now();
        let from = now + chrono::Duration::days(EXPIRING_AHEAD_DAYS - 1);
        let to = now + chrono::Duration::days(EXPIRING_AHEAD_DAYS + 1);
        let kind = EventType::ApiKeyExpiring;
        let mut cache = EndpointCache::default();
        let mut made = Vec::new();
        let mut noticed = Vec::new();
        for key in keys.expiring_between(from, to).await? {
            let Some(expires_at) = key.expires_at else {
                continue;
            };
            let routed = Routed {
                org: key.org_id.clone(),
                mode: key.mode(),
                event: Event {
                    id: event_id(&[kind.as_str(), &key.id, &time::format(&expires_at)]),
                    kind,
                    created_at: now,
                    object: key.to_public_json(now),
                    previous_attributes: None,
                },
            };
            made.extend(self.enqueue(&routed, &mut cache).await?);
            noticed.push((key, expires_at));
        }
        let count = made.len();
        self.attempt_all(made, deadline).await;
        // Then on each org's audit trail, once per key and expiry (a repeated run writes
        // nothing more; a run that fails here is run again, its deliveries idempotent).
        for (key, expires_at) in &noticed {
            keys.record_expiry_notice(&self.audit, key, *expires_at)
                .await?;
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_attributes_name_what_changed_and_ignore_a_bare_touch() {
        let old =
            json!({"id": "c", "full_name": "Jane", "kyc_status": "PENDING", "updated_at": "1"});
        let new =
            json!({"id": "c", "full_name": "Jane Doe", "kyc_status": "PENDING", "updated_at": "2"});
        assert_eq!(
            previous_attributes(&old, &new),
            Some(json!({"full_name": "Jane", "updated_at": "1"}))
        );
        let touched =
            json!({"id": "c", "full_name": "Jane", "kyc_status": "PENDING", "updated_at": "2"});
        assert_eq!(previous_attributes(&old, &touched), None);
        let added = json!({"id": "c", "full_name": "Jane", "kyc_status": "PENDING", "updated_at": "2", "email": "j@x"});
        assert_eq!(
            previous_attributes(&old, &added),
            Some(json!({"updated_at": "1", "email": null}))
        );
    }

    #[test]
    fn data_spaces_name_their_org_and_mode() {
        assert_eq!(
            space_of("acme"),
            Some((OrgId::parse("acme").unwrap(), Mode::Live))
        );
        assert_eq!(
            space_of("acme#test"),
            Some((OrgId::parse("acme").unwrap(), Mode::Test))
        );
        assert_eq!(space_of("acme#other"), None);
        assert_eq!(space_of(""), None);
    }
}
