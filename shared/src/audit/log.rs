//! The two tables of the trail. `AuditEventsTable` holds the events (partition: the org;
//! sort: `<at>#<seq>`, so time ranges are key conditions and order is chain order), written
//! only by `PutItem` on condition that the item does not exist: no function's policy grants
//! `UpdateItem` or `DeleteItem` on it (`make iam` proves that). `AuditHeadsTable` holds each
//! org's chain head (last seq, hash and time), which every event moves in the transaction of
//! the change it records: a change without its event, or an event without its change, can't
//! be committed, and two changes at once can't both take the same place in the chain.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use serde_json::Value;

use crate::audit::event::{
    chain, hash_after, public_json, Author, ChainedEvent, Change, GENESIS_HASH, RETENTION_DAYS,
};
use crate::org::OrgId;
use crate::storage::{classify, corrupt, transact_write, StorageError, TransactFailure};
use crate::time::{self, Timestamp};

pub const AUDIT_EVENTS_TABLE_ENV: &str = "AUDIT_EVENTS_TABLE";
pub const AUDIT_HEADS_TABLE_ENV: &str = "AUDIT_HEADS_TABLE";

/// Tries of a change whose chain head moved under it (another change of the same org got
/// there first): each re-reads the head and chains again. Many members of one org changing
/// things in the same instant all get through.
const HEAD_RETRIES: u32 = 40;

/// The chain's head as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
    pub at: Option<Timestamp>,
}

impl Head {
    fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
            at: None,
        }
    }
}

/// A stored event, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub sort_key: String,
    pub seq: Option<u64>,
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub target_id: Option<String>,
    pub body: String,
    pub hash: String,
}

impl StoredEvent {
    pub fn public_json(&self) -> Result<Value, StorageError> {
        public_json(&self.body, &self.hash).map_err(|e| corrupt("audit event", e))
    }
}

#[derive(Clone, Debug)]
pub struct AuditLog {
    client: Client,
    events: String,
    heads: String,
}

/// The sort key of an event: its time (fixed-width RFC 3339, milliseconds) and sequence.
pub fn sort_key(at: &Timestamp, seq: u64) -> String {
    format!("{}#{seq:012}", time::format(at))
}

/// What a listing asks for: newest first, after `cursor` (a sort key it gave out).
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub cursor: Option<String>,
}

/// Pages of 1 MB one listing request reads at most while its filters match nothing: past
/// that it answers what it found with a cursor (`has_more`), never a timeout.
const MAX_PAGES_PER_LISTING: usize = 16;

impl AuditLog {
    pub fn new(client: Client, events: impl Into<String>, heads: impl Into<String>) -> Self {
        Self {
            client,
            events: events.into(),
            heads: heads.into(),
        }
    }

    pub fn signing_as(&self, access_key_id: &str) -> Self {
        Self {
            client: crate::sdk::dynamodb_signing_as(&self.client, access_key_id),
            events: self.events.clone(),
            heads: self.heads.clone(),
        }
    }

    /// The org's chain head, strongly consistent (the start when it has no events yet).
    pub async fn head(&self, org: &OrgId) -> Result<Head, StorageError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.heads)
            .key("org_id", AttributeValue::S(org.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem audit head", &e))?;
        let Some(item) = output.item else {
            return Ok(Head::genesis());
        };
        let seq = item
            .get("seq")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| corrupt("audit head", "seq"))?;
        let hash = item
            .get("hash")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| corrupt("audit head", "hash"))?;
        let at = item
            .get("at")
            .and_then(|v| v.as_s().ok())
            .and_then(|t| time::parse(t));
        Ok(Head { seq, hash, at })
    }

    /// Commits `items` (the change) with an event for each of `changes`, chained after the
    /// org's head, as one transaction. A failed condition of the change is the caller's
    /// (`Conditions` with the indices of `items` that failed); a head that moved meanwhile
    /// is ours: the head is read again and the events chained again. Returns the events as
    /// committed.
    pub async fn commit(
        &self,
        org: &OrgId,
        author: &Author,
        changes: &[Change],
        items: Vec<TransactWriteItem>,
        operation: &str,
    ) -> Result<Vec<ChainedEvent>, TransactFailure> {
        let change_items = items.len();
        let mut attempt = 0;
        loop {
            let head = self.head(org).await.map_err(TransactFailure::Storage)?;
            let events = self
                .chained(org, author, changes, &head)
                .map_err(TransactFailure::Storage)?;
            let mut all = items.clone();
            for event in &events {
                all.push(self.put_item(event).map_err(TransactFailure::Storage)?);
            }
            if let Some(last) = events.last() {
                all.push(
                    self.head_item(org, &head, last)
                        .map_err(TransactFailure::Storage)?,
                );
            }
            match transact_write(&self.client, operation, all).await {
                Ok(()) => return Ok(events),
                Err(TransactFailure::Conditions(failed))
                    if failed.iter().any(|i| *i < change_items) =>
                {
                    return Err(TransactFailure::Conditions(
                        failed.into_iter().filter(|i| *i < change_items).collect(),
                    ))
                }
                Err(TransactFailure::Conditions(_) | TransactFailure::Contended)
                    if attempt < HEAD_RETRIES =>
                {
                    attempt += 1;
                    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 25;
                    let back_off = 5 * u64::from(attempt.min(8));
                    tokio::time::sleep(std::time::Duration::from_millis(back_off + jitter)).await;
                }
                Err(TransactFailure::Conditions(_)) => return Err(TransactFailure::Contended),
                Err(other) => return Err(other),
            }
        }
    }

    /// One event that goes with no write of its own (a reveal, a check, a re-send), in its
    /// own transaction.
    pub async fn record(
        &self,
        org: &OrgId,
        author: &Author,
        change: Change,
        operation: &str,
    ) -> Result<(), TransactFailure> {
        self.commit(org, author, &[change], Vec::new(), operation)
            .await
            .map(drop)
    }

    /// `changes` chained after `head`. Times never go back along a chain: an event takes
    /// the later of the clock and its predecessor's time, so chain order is time order.
    fn chained(
        &self,
        org: &OrgId,
        author: &Author,
        changes: &[Change],
        head: &Head,
    ) -> Result<Vec<ChainedEvent>, StorageError> {
        let now = time::now();
        let mut prev = (head.seq, head.hash.clone(), head.at);
        let mut events = Vec::with_capacity(changes.len());
        for change in changes {
            let at = prev.2.map_or(now, |before| before.max(now));
            let event = chain(org, author, change, (prev.0, &prev.1, prev.2), at)
                .map_err(StorageError::Other)?;
            prev = (event.seq, event.hash.clone(), Some(event.at));
            events.push(event);
        }
        Ok(events)
    }

    fn put_item(&self, event: &ChainedEvent) -> Result<TransactWriteItem, StorageError> {
        let expires = event.at.timestamp() + RETENTION_DAYS * 86_400;
        let item = HashMap::from([
            (
                "org_id".to_owned(),
                AttributeValue::S(event.org.to_string()),
            ),
            (
                "sk".to_owned(),
                AttributeValue::S(sort_key(&event.at, event.seq)),
            ),
            ("seq".to_owned(), AttributeValue::N(event.seq.to_string())),
            (
                "actor_id".to_owned(),
                AttributeValue::S(event.actor_id.clone()),
            ),
            ("action".to_owned(), AttributeValue::S(event.action.clone())),
            (
                "target_id".to_owned(),
                AttributeValue::S(event.target_id.clone()),
            ),
            ("event".to_owned(), AttributeValue::S(event.body.clone())),
            ("hash".to_owned(), AttributeValue::S(event.hash.clone())),
            (
                "expires_at_epoch".to_owned(),
                AttributeValue::N(expires.to_string()),
            ),
        ]);
        let put = Put::builder()
            .table_name(&self.events)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(org_id)")
            .build()
            .map_err(|e| StorageError::Other(format!("Put audit event: {e}")))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The head moved from `head` to `last`, on condition that it is still `head`.
    fn head_item(
        &self,
        org: &OrgId,
        head: &Head,
        last: &ChainedEvent,
    ) -> Result<TransactWriteItem, StorageError> {
        let mut update = Update::builder()
            .table_name(&self.heads)
            .key("org_id", AttributeValue::S(org.to_string()))
            .update_expression("SET seq = :seq, #hash = :hash, #at = :at")
            .expression_attribute_names("#hash", "hash")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":seq", AttributeValue::N(last.seq.to_string()))
            .expression_attribute_values(":hash", AttributeValue::S(last.hash.clone()))
            .expression_attribute_values(":at", AttributeValue::S(time::format(&last.at)));
        update = if head.seq == 0 {
            update.condition_expression("attribute_not_exists(org_id)")
        } else {
            update
                .condition_expression("seq = :was")
                .expression_attribute_values(":was", AttributeValue::N(head.seq.to_string()))
        };
        let update = update
            .build()
            .map_err(|e| StorageError::Other(format!("Update audit head: {e}")))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// One page of the org's events, newest first, and the cursor after it.
    pub async fn list(
        &self,
        org: &OrgId,
        query: &EventQuery,
        limit: usize,
    ) -> Result<(Vec<StoredEvent>, Option<String>), StorageError> {
        // Key values can't be empty: "0" sorts before every time.
        let low = query
            .since
            .map_or_else(|| "0".to_owned(), |at| format!("{}#", time::format(&at)));
        // `until` is exclusive: the last millisecond before it, any sequence.
        let high = query.until.map_or_else(
            || "~".to_owned(),
            |at| {
                format!(
                    "{}#~",
                    time::format(&(at - chrono::Duration::milliseconds(1)))
                )
            },
        );
        let mut filters = Vec::new();
        let mut names = HashMap::new();
        let mut values = HashMap::from([
            (":org".to_owned(), AttributeValue::S(org.to_string())),
            (":low".to_owned(), AttributeValue::S(low)),
            (":high".to_owned(), AttributeValue::S(high)),
        ]);
        for (name, value) in [
            ("actor_id", &query.actor),
            ("action", &query.action),
            ("target_id", &query.target),
        ] {
            if let Some(value) = value {
                // Named, not written: `action` is one of DynamoDB's reserved words.
                filters.push(format!("#{name} = :{name}"));
                names.insert(format!("#{name}"), name.to_owned());
                values.insert(format!(":{name}"), AttributeValue::S(value.clone()));
            }
        }
        let mut start = query.cursor.as_ref().map(|sk| {
            HashMap::from([
                ("org_id".to_owned(), AttributeValue::S(org.to_string())),
                ("sk".to_owned(), AttributeValue::S(sk.clone())),
            ])
        });
        let mut found = Vec::new();
        for _ in 0..MAX_PAGES_PER_LISTING {
            let mut request = self
                .client
                .query()
                .table_name(&self.events)
                .key_condition_expression("org_id = :org AND sk BETWEEN :low AND :high")
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take())
                .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX).max(50));
            if !filters.is_empty() {
                request = request
                    .filter_expression(filters.join(" AND "))
                    .set_expression_attribute_names(Some(names.clone()));
            }
            let output = request
                .send()
                .await
                .map_err(|e| classify("Query audit events", &e))?;
            for item in output.items.unwrap_or_default() {
                found.push(decode(item)?);
                if found.len() > limit {
                    found.truncate(limit);
                    let next = found.last().map(|e| e.sort_key.clone());
                    return Ok((found, next));
                }
            }
            match output.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok((found, None)),
            }
        }
        // Read as far as one request may: carry on from where the reading stopped.
        let next = start
            .as_ref()
            .and_then(|key| key.get("sk"))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok((found, next))
    }

    /// Every event of the org, oldest first (for `verify`).
    pub async fn all(&self, org: &OrgId) -> Result<Vec<StoredEvent>, StorageError> {
        let items: Vec<_> = self
            .client
            .query()
            .table_name(&self.events)
            .key_condition_expression("org_id = :org")
            .expression_attribute_values(":org", AttributeValue::S(org.to_string()))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        items
            .into_iter()
            .map(|item| decode(item.map_err(|e| classify("Query audit events", &e))?))
            .collect()
    }

    /// Re-computes the org's chain from its stored events and head; names the first break.
    pub async fn verify(&self, org: &OrgId, now: Timestamp) -> Result<Verdict, StorageError> {
        let head = self.head(org).await?;
        let events = self.all(org).await?;
        Ok(verdict(org, &head, &events, now))
    }
}

fn decode(item: HashMap<String, AttributeValue>) -> Result<StoredEvent, StorageError> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    Ok(StoredEvent {
        sort_key: text("sk").ok_or_else(|| corrupt("audit event", "sk"))?,
        seq: item
            .get("seq")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok()),
        actor_id: text("actor_id"),
        action: text("action"),
        target_id: text("target_id"),
        body: text("event").unwrap_or_default(),
        hash: text("hash").unwrap_or_default(),
    })
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub events: usize,
    pub head_seq: u64,
    /// The first place the chain does not hold, if any.
    pub first_break: Option<Break>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The sequence number where the chain stops holding.
    pub seq: u64,
    /// The event's id there, when there is an event to name.
    pub id: Option<String>,
    pub why: String,
}

impl Verdict {
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "ok": self.first_break.is_none(),
            "events": self.events,
            "head_seq": self.head_seq,
            "first_break": self.first_break.as_ref().map(|b| serde_json::json!({
                "seq": b.seq, "id": b.id, "why": b.why,
            })),
        })
    }
}

/// The chain's verdict over `events` (oldest first) and `head`. Events before the first
/// stored one may be missing only where the table's TTL has removed them: the first stored
/// event's predecessor must be past the retention period.
pub fn verdict(org: &OrgId, head: &Head, events: &[StoredEvent], now: Timestamp) -> Verdict {
    let retention = chrono::Duration::days(RETENTION_DAYS);
    let expired = |at: Option<Timestamp>| at.is_some_and(|at| at + retention <= now);
    // Events past their retention may be gone, in any order (TTL promises none): the chain
    // is checked from the first event still within it. Events past the head were committed
    // while this ran: later than what is verified.
    let events: Vec<&StoredEvent> = events
        .iter()
        .filter(|e| {
            let at = e.sort_key.split('#').next().and_then(time::parse);
            !expired(at) && e.seq.is_none_or(|seq| seq <= head.seq)
        })
        .collect();
    let broken = |seq: u64, id: Option<String>, why: String| Verdict {
        events: events.len(),
        head_seq: head.seq,
        first_break: Some(Break { seq, id, why }),
    };
    let mut prev: Option<(u64, String)> = None;
    for stored in events.iter().copied() {
        let body: Value = match serde_json::from_str(&stored.body) {
            Ok(body) => body,
            Err(_) => {
                return broken(
                    stored.seq.unwrap_or(0),
                    None,
                    format!("the event at {} is not JSON", stored.sort_key),
                )
            }
        };
        let id = body["id"].as_str().map(str::to_owned);
        let seq = body["seq"].as_u64().unwrap_or(0);
        let at = body["at"].as_str().and_then(time::parse);
        let hash = hash_after(body["prev_hash"].as_str().unwrap_or(""), &stored.body);
        if hash != stored.hash {
            return broken(seq, id, "its hash does not match its contents".into());
        }
        // The item's own attributes must say what the hashed body says (the listing's
        // filters read them).
        let same = |attr: &Option<String>, value: &Value| attr.as_deref() == value.as_str();
        let sort_key_matches = at.is_some_and(|at| sort_key(&at, seq) == stored.sort_key);
        if stored.seq != Some(seq)
            || !sort_key_matches
            || !same(&stored.actor_id, &body["actor"]["id"])
            || !same(&stored.action, &body["action"])
            || !same(&stored.target_id, &body["target"]["id"])
            || body["org"].as_str() != Some(org.as_str())
        {
            return broken(
                seq,
                id,
                "its stored attributes differ from its hashed contents".into(),
            );
        }
        match &prev {
            Some((prev_seq, prev_hash)) => {
                if seq != prev_seq + 1 {
                    return broken(
                        prev_seq + 1,
                        None,
                        format!(
                            "events {} to {} are missing",
                            prev_seq + 1,
                            seq.saturating_sub(1)
                        ),
                    );
                }
                if body["prev_hash"].as_str() != Some(prev_hash.as_str()) {
                    return broken(
                        seq,
                        id,
                        "its prev_hash is not its predecessor's hash".into(),
                    );
                }
            }
            None if seq == 1 => {
                if body["prev_hash"].as_str() != Some(GENESIS_HASH) {
                    return broken(seq, id, "the first event does not start the chain".into());
                }
            }
            None => {
                // Its predecessor may have expired; only if it was old enough to.
                if !expired(body["prev_at"].as_str().and_then(time::parse)) {
                    return broken(
                        seq.saturating_sub(1),
                        None,
                        format!(
                            "events before {seq} are missing and were not old enough to expire"
                        ),
                    );
                }
            }
        }
        prev = Some((seq, stored.hash.clone()));
    }
    match prev {
        // Every event expired (an org quiet for longer than the retention) is no break.
        None if head.seq != 0 && !expired(head.at) => broken(
            1,
            None,
            format!("the head is at {} but no event is stored", head.seq),
        ),
        Some((seq, hash)) if seq != head.seq || hash != head.hash => broken(
            seq,
            None,
            format!(
                "the head is at {} but the stored events end at {seq}{}",
                head.seq,
                if seq == head.seq {
                    " with another hash"
                } else {
                    ""
                }
            ),
        ),
        _ => Verdict {
            events: events.len(),
            head_seq: head.seq,
            first_break: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::audit::{Author, Change, Target};

    /// A chain of `n` events for `acme`, `days_apart` days apart, ending `ends_days_ago`
    /// days before `now`; and the head after it.
    fn chain_of(
        n: u64,
        days_apart: i64,
        ends_days_ago: i64,
        now: Timestamp,
    ) -> (Vec<StoredEvent>, Head) {
        let org = OrgId::parse("acme").unwrap();
        let author = Author::operator("ops");
        let change = Change::noted(
            "api_key.created",
            Target::api_key("key_1"),
            json!({"label": "x"}),
        );
        let mut head = Head::genesis();
        let mut stored = Vec::new();
        for i in 0..n {
            let back = ends_days_ago + days_apart * i64::try_from(n - 1 - i).unwrap();
            let at = now - chrono::Duration::days(back);
            let event = chain(&org, &author, &change, (head.seq, &head.hash, head.at), at).unwrap();
            stored.push(StoredEvent {
                sort_key: sort_key(&event.at, event.seq),
                seq: Some(event.seq),
                actor_id: Some(event.actor_id.clone()),
                action: Some(event.action.clone()),
                target_id: Some(event.target_id.clone()),
                body: event.body.clone(),
                hash: event.hash.clone(),
            });
            head = Head {
                seq: event.seq,
                hash: event.hash,
                at: Some(event.at),
            };
        }
        (stored, head)
    }

    fn acme() -> OrgId {
        OrgId::parse("acme").unwrap()
    }

    #[test]
    fn a_whole_chain_holds_and_a_gap_or_an_edit_does_not() {
        let now = time::now();
        let (events, head) = chain_of(5, 1, 0, now);
        let verdict = verdict(&acme(), &head, &events, now);
        assert_eq!((verdict.first_break, verdict.events), (None, 5));
        let mut gap = events.clone();
        gap.remove(2);
        assert_eq!(verdict_seq(&gap, &head, now), Some(3));
        let mut edited = events.clone();
        edited[1].body = edited[1].body.replace("\"x\"", "\"y\"");
        assert_eq!(verdict_seq(&edited, &head, now), Some(2));
        assert_eq!(
            verdict_seq(&events[..4], &head, now),
            Some(4),
            "a truncated end"
        );
    }

    fn verdict_seq(events: &[StoredEvent], head: &Head, now: Timestamp) -> Option<u64> {
        verdict(&acme(), head, events, now)
            .first_break
            .map(|b| b.seq)
    }

    #[test]
    fn expired_events_may_be_gone_in_any_order_and_all_of_them() {
        let now = time::now();
        // Ten events a hundred days apart: the oldest six are past 400 days.
        let (events, head) = chain_of(10, 100, 0, now);
        // TTL removed the fourth before the first three: the rest still holds.
        let mut out_of_order = events.clone();
        out_of_order.remove(3);
        assert_eq!(verdict_seq(&out_of_order, &head, now), None);
        // All of the expired ones gone.
        assert_eq!(verdict_seq(&events[6..], &head, now), None);
        // But a recent one gone is a break.
        let mut recent = events.clone();
        recent.remove(8);
        assert_eq!(verdict_seq(&recent, &head, now), Some(9));
        // A quiet org whose every event expired: no events, no break.
        let (old, old_head) = chain_of(3, 1, 500, now);
        assert_eq!(verdict_seq(&[], &old_head, now), None);
        assert_eq!(verdict_seq(&old[..1], &old_head, now), None);
        // A head with nothing behind it that is not that old: a break.
        let (_, young_head) = chain_of(3, 1, 10, now);
        assert_eq!(verdict_seq(&[], &young_head, now), Some(1));
    }

    #[test]
    fn an_event_committed_while_verifying_is_not_a_break() {
        let now = time::now();
        let (events, head) = chain_of(4, 0, 0, now);
        let earlier_head = Head {
            seq: 3,
            hash: events[2].hash.clone(),
            at: head.at,
        };
        assert_eq!(verdict_seq(&events, &earlier_head, now), None);
        let verdict = verdict(&acme(), &earlier_head, &events, now);
        assert_eq!(verdict.events, 3, "what the head covers");
    }
}
