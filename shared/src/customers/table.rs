//! The customers table. One partition per org holds customer items (`customer#<uuid v7>`,
//! so the sort key orders by creation) and external-id marker items (`external_id#<id>`,
//! naming the customer). A customer and its marker are always written in one transaction,
//! so neither exists without the other and an external id has one owner under concurrency.
//! The `ByUpdatedAt` index (partition = org, sort = `updated_at#id`) serves polling.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use uuid::Uuid;

use crate::customers::cursor::Position;
use crate::customers::input::{CustomerInput, Field};
use crate::customers::model::{AddedVia, Customer};
use crate::error::{ApiError, SERVICE_UNAVAILABLE_RETRY_AFTER_SECS};
use crate::org::OrgId;
use crate::storage::{classify, corrupt, transact_write, StorageError, TransactFailure};
use crate::time::{self, Timestamp};

pub const BY_UPDATED_AT_INDEX: &str = "ByUpdatedAt";
const CUSTOMER_SK_PREFIX: &str = "customer#";
const MARKER_SK_PREFIX: &str = "external_id#";
/// Read-modify-write rounds before a contended write gives up with a 503.
const MAX_WRITE_ATTEMPTS: u32 = 12;

type Item = HashMap<String, AttributeValue>;

/// The stamp for a write of a customer last stamped `previous`: the clock now, read just
/// before the write is sent, and strictly later than `previous`, so `updated_at` never goes
/// backwards for a poller even if clocks disagree by a little.
pub fn stamp_after(previous: Timestamp) -> Timestamp {
    let now = time::now();
    if now > previous {
        now
    } else {
        previous + chrono::Duration::milliseconds(1)
    }
}

/// One page of a listing; `has_more` comes from reading one item past the page.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerPage {
    pub customers: Vec<Customer>,
    pub has_more: bool,
}

/// A customer as read, with the version its next write must match.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCustomer {
    pub customer: Customer,
    pub version: u64,
}

/// How a conditional write failed.
#[derive(Debug)]
pub enum WriteError {
    /// The external id belongs to another customer of the org.
    ExternalIdTaken,
    /// The customer changed since it was read, or a concurrent transaction got in the way:
    /// read again and retry.
    Contended,
    Storage(StorageError),
}

/// What a read-modify-write did.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Created(Customer),
    Updated(Customer),
    Unchanged(Customer),
}

impl Change {
    pub fn customer(&self) -> &Customer {
        match self {
            Change::Created(c) | Change::Updated(c) | Change::Unchanged(c) => c,
        }
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn customer_sk(id: &Uuid) -> String {
    format!("{CUSTOMER_SK_PREFIX}{id}")
}

fn marker_sk(external_id: &str) -> String {
    format!("{MARKER_SK_PREFIX}{external_id}")
}

fn updated_key(updated_at: &Timestamp, id: &Uuid) -> String {
    format!("{}#{id}", time::format(updated_at))
}

fn encode(org: &OrgId, customer: &Customer, version: u64) -> Result<Item, StorageError> {
    let mut item: Item = serde_dynamo::to_item(customer).map_err(|e| corrupt("customer", e))?;
    item.insert("pk".into(), s(org.as_str()));
    item.insert("sk".into(), s(customer_sk(&customer.id)));
    item.insert(
        "updated_key".into(),
        s(updated_key(&customer.updated_at, &customer.id)),
    );
    item.insert("version".into(), AttributeValue::N(version.to_string()));
    Ok(item)
}

/// The customer of a stored item (a stream image, say) and the data space (`pk`) it is
/// in; `None` for the table's other items (external id markers).
pub fn customer_from_item(item: Item) -> Option<Result<(String, StoredCustomer), StorageError>> {
    let sk = item.get("sk")?.as_s().ok()?;
    if !sk.starts_with(CUSTOMER_SK_PREFIX) {
        return None;
    }
    let pk = item.get("pk")?.as_s().ok()?.clone();
    Some(decode(item).map(|stored| (pk, stored)))
}

fn decode(mut item: Item) -> Result<StoredCustomer, StorageError> {
    let version = item
        .remove("version")
        .and_then(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
        .ok_or_else(|| corrupt("customer", "no version"))?;
    for key in ["pk", "sk", "updated_key"] {
        item.remove(key);
    }
    let customer = serde_dynamo::from_item(item).map_err(|e| corrupt("customer", e))?;
    Ok(StoredCustomer { customer, version })
}

fn marker_item(org: &OrgId, external_id: &str, customer_id: &Uuid) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(org.as_str())),
        ("sk".to_owned(), s(marker_sk(external_id))),
        ("customer_id".to_owned(), s(customer_id.to_string())),
    ])
}

fn contended_too_long() -> ApiError {
    ApiError::ServiceUnavailable {
        retry_after_secs: SERVICE_UNAVAILABLE_RETRY_AFTER_SECS,
    }
}

async fn back_off(attempt: u32) {
    // Jitter from the clock's nanoseconds is plenty to spread contending writers.
    let jitter = u64::from(time::now().timestamp_subsec_nanos() % 7);
    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt) + jitter)).await;
}

#[derive(Clone, Debug)]
pub struct CustomersTable {
    client: Client,
    name: String,
}

impl CustomersTable {
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

    /// A strongly consistent read of one item of the org's partition.
    async fn get_item(
        &self,
        org: &OrgId,
        sk: String,
        operation: &str,
    ) -> Result<Option<Item>, StorageError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .key("pk", s(org.as_str()))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(operation, &e))?;
        Ok(output.item)
    }

    /// A strongly consistent read of one customer of the org.
    pub async fn get(
        &self,
        org: &OrgId,
        id: &Uuid,
    ) -> Result<Option<StoredCustomer>, StorageError> {
        self.get_item(org, customer_sk(id), "GetItem customer")
            .await?
            .map(decode)
            .transpose()
    }

    /// The customer holding `external_id` in the org, from its marker.
    pub async fn find_by_external_id(
        &self,
        org: &OrgId,
        external_id: &str,
    ) -> Result<Option<Uuid>, StorageError> {
        self.get_item(org, marker_sk(external_id), "GetItem marker")
            .await?
            .map(|item| {
                item.get("customer_id")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|id| Uuid::parse_str(id).ok())
                    .ok_or_else(|| corrupt("marker", "bad customer_id"))
            })
            .transpose()
    }

    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        marker_put_index: Option<usize>,
    ) -> Result<(), WriteError> {
        // One attempt per call: a retry is ours, re-reading and re-stamping (the SDK would
        // resend the same item with a stamp growing stale). Throttled on the table or an
        // index is a 503, which no amount of re-reading here would fix.
        match transact_write(&self.client, "TransactWriteItems customer", items).await {
            Ok(()) => Ok(()),
            Err(TransactFailure::Conditions(failed))
                if marker_put_index.is_some_and(|i| failed.contains(&i)) =>
            {
                Err(WriteError::ExternalIdTaken)
            }
            Err(TransactFailure::Conditions(_)) | Err(TransactFailure::Contended) => {
                Err(WriteError::Contended)
            }
            Err(TransactFailure::Storage(e)) => Err(WriteError::Storage(e)),
        }
    }

    fn put(&self, item: Item, condition: &str) -> Result<TransactWriteItem, StorageError> {
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression(condition)
            .build()
            .map_err(|e| StorageError::Other(format!("Put: {e}")))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The put that claims `external_id` for `customer_id`: it fails if anyone holds it.
    fn claim_marker(
        &self,
        org: &OrgId,
        external_id: &str,
        customer_id: &Uuid,
    ) -> Result<TransactWriteItem, WriteError> {
        self.put(
            marker_item(org, external_id, customer_id),
            "attribute_not_exists(sk)",
        )
        .map_err(WriteError::Storage)
    }

    /// Writes a new customer and, if it has one, the marker of its external id.
    pub async fn insert(&self, org: &OrgId, customer: &Customer) -> Result<(), WriteError> {
        let mut items = vec![self
            .put(
                encode(org, customer, 1).map_err(WriteError::Storage)?,
                "attribute_not_exists(sk)",
            )
            .map_err(WriteError::Storage)?];
        let mut marker_index = None;
        if let Some(external_id) = &customer.external_id {
            marker_index = Some(items.len());
            items.push(self.claim_marker(org, external_id, &customer.id)?);
        }
        self.transact(items, marker_index).await
    }

    /// Replaces `old` with `new` if nobody wrote in between, moving the external-id marker
    /// when the external id changed (the old one is freed in the same transaction).
    pub async fn replace(
        &self,
        org: &OrgId,
        old: &StoredCustomer,
        new: &Customer,
    ) -> Result<(), WriteError> {
        let item = encode(org, new, old.version + 1).map_err(WriteError::Storage)?;
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(old.version.to_string()))
            .build()
            .map_err(|e| WriteError::Storage(StorageError::Other(format!("Put: {e}"))))?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        let mut marker_index = None;
        if old.customer.external_id != new.external_id {
            if let Some(previous) = &old.customer.external_id {
                let delete = Delete::builder()
                    .table_name(&self.name)
                    .key("pk", s(org.as_str()))
                    .key("sk", s(marker_sk(previous)))
                    .condition_expression("customer_id = :id")
                    .expression_attribute_values(":id", s(new.id.to_string()))
                    .build()
                    .map_err(|e| {
                        WriteError::Storage(StorageError::Other(format!("Delete: {e}")))
                    })?;
                items.push(TransactWriteItem::builder().delete(delete).build());
            }
            if let Some(next) = &new.external_id {
                marker_index = Some(items.len());
                items.push(self.claim_marker(org, next, &new.id)?);
            }
        }
        self.transact(items, marker_index).await
    }

    /// `POST /v1/customers`: create, or update the customer holding the body's external id.
    /// Never check-then-write: the marker's conditional put decides who creates. Every write
    /// attempt takes its own clock reading, so a retried write is never stamped in the past.
    /// `reserved`: the id a new customer takes (an Idempotency-Key's reservation), so that
    /// running a request again after an unknown outcome finds its customer instead of
    /// making a second one.
    pub async fn upsert(
        &self,
        org: &OrgId,
        input: &CustomerInput,
        reserved: Option<Uuid>,
    ) -> Result<Change, ApiError> {
        let create = || match reserved {
            Some(id) => Customer::create_with_id(input, AddedVia::Integration, id),
            None => Customer::create(input, AddedVia::Integration, time::now()),
        };
        let external_id = match &input.external_id {
            Field::Value(id) => id.clone(),
            _ => {
                // The same customer, id and all, on every attempt: if an attempt whose
                // answer was lost landed, the next finds it in place.
                let customer = create()?;
                for attempt in 0..MAX_WRITE_ATTEMPTS {
                    match self.insert(org, &customer).await {
                        Ok(()) => return Ok(Change::Created(customer)),
                        Err(WriteError::ExternalIdTaken | WriteError::Contended) => {
                            return match self.get(org, &customer.id).await? {
                                Some(stored) => Ok(Change::Created(stored.customer)),
                                None => Err(contended_too_long()),
                            };
                        }
                        Err(WriteError::Storage(StorageError::Unavailable(_))) => {
                            back_off(attempt).await
                        }
                        Err(WriteError::Storage(e)) => return Err(e.into()),
                    }
                }
                return Err(contended_too_long());
            }
        };
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            match self.find_by_external_id(org, &external_id).await? {
                None => {
                    let customer = create()?;
                    match self.insert(org, &customer).await {
                        Ok(()) => return Ok(Change::Created(customer)),
                        Err(WriteError::Storage(StorageError::Unavailable(_))) => {}
                        Err(WriteError::Storage(e)) => return Err(e.into()),
                        // Someone created it first: update theirs.
                        Err(WriteError::ExternalIdTaken | WriteError::Contended) => {}
                    }
                }
                Some(id) => {
                    let Some(stored) = self.get(org, &id).await? else {
                        // The marker moved between the two reads: look again.
                        back_off(attempt).await;
                        continue;
                    };
                    if stored.customer.external_id.as_deref() != Some(external_id.as_str()) {
                        back_off(attempt).await;
                        continue;
                    }
                    let mut customer = stored.customer.clone();
                    if !customer.apply(input, stamp_after(stored.customer.updated_at)) {
                        return Ok(Change::Unchanged(customer));
                    }
                    match self.replace(org, &stored, &customer).await {
                        Ok(()) => return Ok(Change::Updated(customer)),
                        Err(WriteError::Storage(StorageError::Unavailable(_))) => {}
                        Err(WriteError::Storage(e)) => return Err(e.into()),
                        Err(WriteError::ExternalIdTaken | WriteError::Contended) => {}
                    }
                }
            }
            back_off(attempt).await;
        }
        Err(contended_too_long())
    }

    /// Read-modify-write of one customer. `change` edits it, given the stamp this attempt
    /// writes (see `stamp_after`), and says whether anything changed; `Ok(None)` when the
    /// org has no such customer.
    pub async fn update<F>(
        &self,
        org: &OrgId,
        id: &Uuid,
        mut change: F,
    ) -> Result<Option<Change>, ApiError>
    where
        F: FnMut(&mut Customer, Timestamp) -> Result<bool, ApiError>,
    {
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            let Some(stored) = self.get(org, id).await? else {
                return Ok(None);
            };
            let mut customer = stored.customer.clone();
            if !change(&mut customer, stamp_after(stored.customer.updated_at))? {
                return Ok(Some(Change::Unchanged(customer)));
            }
            match self.replace(org, &stored, &customer).await {
                Ok(()) => return Ok(Some(Change::Updated(customer))),
                Err(WriteError::ExternalIdTaken) => {
                    return Err(ApiError::Conflict {
                        message: "Another customer of this org already has this external_id."
                            .into(),
                        param: Some("external_id".into()),
                    })
                }
                Err(WriteError::Storage(StorageError::Unavailable(_)))
                | Err(WriteError::Contended) => back_off(attempt).await,
                Err(WriteError::Storage(e)) => return Err(e.into()),
            }
        }
        Err(contended_too_long())
    }

    /// Newest created first: a Query on the org's partition, never a Scan.
    pub async fn list_by_creation(
        &self,
        org: &OrgId,
        limit: usize,
        after: Option<&Uuid>,
    ) -> Result<CustomerPage, StorageError> {
        let query = self
            .client
            .query()
            .table_name(&self.name)
            .key_condition_expression("pk = :org AND begins_with(sk, :prefix)")
            .expression_attribute_values(":org", s(org.as_str()))
            .expression_attribute_values(":prefix", s(CUSTOMER_SK_PREFIX))
            .scan_index_forward(false);
        let start = after.map(|id| {
            HashMap::from([
                ("pk".to_owned(), s(org.as_str())),
                ("sk".to_owned(), s(customer_sk(id))),
            ])
        });
        let items = read_pages(query, start, limit + 1, "Query customers").await?;
        page(items, limit)
    }

    /// `updated_at >= since`, oldest change first: a Query on the `ByUpdatedAt` index.
    pub async fn list_updated_since(
        &self,
        org: &OrgId,
        since: &Timestamp,
        limit: usize,
        after: Option<(&Timestamp, &Uuid)>,
    ) -> Result<CustomerPage, StorageError> {
        let query = self
            .client
            .query()
            .table_name(&self.name)
            .index_name(BY_UPDATED_AT_INDEX)
            .key_condition_expression("pk = :org AND updated_key >= :since")
            .expression_attribute_values(":org", s(org.as_str()))
            .expression_attribute_values(":since", s(time::format(since)))
            .scan_index_forward(true);
        let start = after.map(|(updated_at, id)| {
            HashMap::from([
                ("pk".to_owned(), s(org.as_str())),
                ("sk".to_owned(), s(customer_sk(id))),
                ("updated_key".to_owned(), s(updated_key(updated_at, id))),
            ])
        });
        let items = read_pages(query, start, limit + 1, "Query customers by update").await?;
        page(items, limit)
    }
}

/// Up to `wanted` items of a Query, from `start` on. One Query returns at most 1 MB, so a
/// page of large items takes several: keep going from `LastEvaluatedKey` until `wanted`
/// items are read or the partition ends. That is what makes `has_more` exact.
async fn read_pages(
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    mut start: Option<Item>,
    wanted: usize,
    operation: &str,
) -> Result<Vec<Item>, StorageError> {
    let mut items = Vec::with_capacity(wanted);
    loop {
        let missing = wanted - items.len();
        let output = query
            .clone()
            .limit(i32::try_from(missing).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| classify(operation, &e))?;
        items.extend(output.items.unwrap_or_default());
        match output.last_evaluated_key {
            Some(key) if items.len() < wanted && !key.is_empty() => start = Some(key),
            _ => return Ok(items),
        }
    }
}

fn page(items: Vec<Item>, limit: usize) -> Result<CustomerPage, StorageError> {
    let mut customers = items
        .into_iter()
        .map(|item| decode(item).map(|stored| stored.customer))
        .collect::<Result<Vec<_>, _>>()?;
    let has_more = customers.len() > limit;
    customers.truncate(limit);
    Ok(CustomerPage {
        customers,
        has_more,
    })
}

/// Where the next page starts, for the cursor.
pub fn position_after(customer: &Customer, by_update: bool) -> Position {
    if by_update {
        Position::Updated {
            updated_at: customer.updated_at,
            id: customer.id,
        }
    } else {
        Position::Created { id: customer.id }
    }
}
