//! The request log table: one partition per key (`<org>#<key id>`), records sorted by
//! time (`<at>#<request id>`), each gone 90 days after its request (DynamoDB TTL).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;

use crate::org::OrgId;
use crate::request_log::record::{RequestRecord, REQUEST_LOG_TTL_DAYS};
use crate::storage::{classify, corrupt, StorageError};
use crate::time::{self, Timestamp};

pub const REQUEST_LOG_TABLE_ENV: &str = "REQUEST_LOG_TABLE";
/// BatchWriteItem's own limit.
const BATCH_ITEMS: usize = 25;
/// Retries of what a throttled batch leaves unprocessed: about 12 s in all, well inside the
/// writer's 60 s timeout (after which Lambda retries the whole event).
const UNPROCESSED_RETRIES: u32 = 8;
const MAX_BACKOFF_MILLIS: u64 = 3_000;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn pk(org: &str, key_id: &str) -> String {
    format!("{org}#{key_id}")
}

/// What a reader of a key's log asks for (the member API's filters and cursor).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// At or after.
    pub since: Option<Timestamp>,
    /// Before.
    pub until: Option<Timestamp>,
    /// Older than the record at this position (a cursor: the previous page's last `sk`).
    pub before_position: Option<String>,
    /// Statuses from..=to: one code (`403`), or a class (`4xx` is 400..=499).
    pub status: Option<(u16, u16)>,
    pub customer_id: Option<String>,
}

#[derive(Clone, Debug)]
pub struct RequestLogTable {
    client: Client,
    name: String,
}

impl RequestLogTable {
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

    fn item(record: &RequestRecord) -> Result<HashMap<String, AttributeValue>, StorageError> {
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(record).map_err(|e| corrupt("request record", e))?;
        item.insert("pk".into(), s(pk(&record.org, &record.key_id)));
        item.insert(
            "sk".into(),
            s(format!("{}#{}", time::format(&record.at), record.id)),
        );
        let expires = record.at.timestamp() + REQUEST_LOG_TTL_DAYS * 24 * 60 * 60;
        item.insert(
            "expires_at_epoch".into(),
            AttributeValue::N(expires.to_string()),
        );
        Ok(item)
    }

    /// The put of one record, for a transaction (a leak's revocation writes its line with it).
    pub fn put_item(
        &self,
        record: &RequestRecord,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StorageError> {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.name)
            .set_item(Some(Self::item(record)?))
            .build()
            .map_err(|e| StorageError::Other(format!("Put request record: {e}")))?;
        Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .put(put)
            .build())
    }

    /// Stores `records` in batches, retrying what DynamoDB leaves unprocessed. A record
    /// given twice is stored once (a batch naming one item twice is refused whole).
    pub async fn put_all(&self, records: &[RequestRecord]) -> Result<(), StorageError> {
        let mut seen = std::collections::HashSet::new();
        let records: Vec<&RequestRecord> = records
            .iter()
            .filter(|r| seen.insert((r.org.clone(), r.key_id.clone(), r.at, r.id.clone())))
            .collect();
        for chunk in records.chunks(BATCH_ITEMS) {
            let mut requests = chunk
                .iter()
                .map(|r| {
                    let put = PutRequest::builder()
                        .set_item(Some(Self::item(r)?))
                        .build()
                        .map_err(|e| StorageError::Other(format!("PutRequest: {e}")))?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<Vec<_>, StorageError>>()?;
            for attempt in 0..=UNPROCESSED_RETRIES {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.name, requests)
                    .send()
                    .await
                    .map_err(|e| classify("BatchWriteItem request log", &e))?;
                requests = output
                    .unprocessed_items
                    .and_then(|mut left| left.remove(&self.name))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt == UNPROCESSED_RETRIES {
                    return Err(StorageError::Unavailable(
                        "BatchWriteItem request log: items left unprocessed".into(),
                    ));
                }
                let backoff = (50u64 << attempt).min(MAX_BACKOFF_MILLIS);
                tokio::time::sleep(std::time::Duration::from_millis(backoff)).await;
            }
        }
        Ok(())
    }

    /// A key's requests, newest first, from `since` on (inclusive), at most `limit`.
    pub async fn for_key(
        &self,
        org: &OrgId,
        key_id: &str,
        since: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<RequestRecord>, StorageError> {
        let filter = RequestFilter {
            since,
            ..RequestFilter::default()
        };
        Ok(self.page_for_key(org, key_id, &filter, limit).await?.0)
    }

    /// One page of a key's requests, newest first, and the position of its last record
    /// when more follow.
    pub async fn page_for_key(
        &self,
        org: &OrgId,
        key_id: &str,
        filter: &RequestFilter,
        limit: usize,
    ) -> Result<(Vec<RequestRecord>, Option<String>), StorageError> {
        // Sort keys are `<at>#<request id>` with `at` fixed-width: strings order as times.
        // "0" sorts before every time (an empty string is no key value).
        let low = filter
            .since
            .as_ref()
            .map(time::format)
            .unwrap_or_else(|| "0".to_owned());
        let mut high = filter
            .until
            .as_ref()
            .map(time::format)
            .unwrap_or_else(|| "~".to_owned());
        if let Some(position) = &filter.before_position {
            if *position < high {
                high = position.clone();
            }
        }
        if low > high {
            // An empty window (since after until): nothing to read.
            return Ok((Vec::new(), None));
        }
        let mut query = self
            .client
            .query()
            .table_name(&self.name)
            .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
            .expression_attribute_values(":pk", s(pk(org.as_str(), key_id)))
            .expression_attribute_values(":low", s(low))
            .expression_attribute_values(":high", s(high.clone()))
            .scan_index_forward(false);
        let mut filters = Vec::new();
        if let Some((from, to)) = filter.status {
            query = query
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status_from", AttributeValue::N(from.to_string()))
                .expression_attribute_values(":status_to", AttributeValue::N(to.to_string()));
            filters.push("#status BETWEEN :status_from AND :status_to");
        }
        if let Some(customer) = &filter.customer_id {
            query = query.expression_attribute_values(":customer", s(customer.clone()));
            filters.push("contains(customer_ids, :customer)");
        }
        if !filters.is_empty() {
            query = query.filter_expression(filters.join(" AND "));
        }
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = query
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query request log", &e))?;
            items.extend(
                output
                    .items
                    .unwrap_or_default()
                    .into_iter()
                    // BETWEEN includes its bounds: the cursor's own record was on the last page.
                    .filter(|item| item.get("sk").and_then(|v| v.as_s().ok()) != Some(&high)),
            );
            match output.last_evaluated_key {
                Some(key) if items.len() <= limit && !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        let has_more = items.len() > limit;
        items.truncate(limit);
        let next = if has_more {
            items
                .last()
                .and_then(|item| item.get("sk"))
                .and_then(|v| v.as_s().ok())
                .cloned()
        } else {
            None
        };
        let records = items
            .into_iter()
            .map(|mut item| {
                for name in ["pk", "sk", "expires_at_epoch"] {
                    item.remove(name);
                }
                serde_dynamo::from_item(item).map_err(|e| corrupt("request record", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((records, next))
    }
}
