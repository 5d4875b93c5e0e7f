//! The customers table. One partition per org: customer items (`customer#<uuid v7>`, so the
//! sort key orders by creation) and external-id marker items (`external_id#<id>`).
//! The `ByUpdatedAt` index (partition = org, sort = `updated_at#id`) serves polling.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use crate::customer::Customer;
use crate::org::OrgId;
use crate::storage::{classify, corrupt, StorageError};

pub const BY_UPDATED_AT_INDEX: &str = "ByUpdatedAt";
const CUSTOMER_SK_PREFIX: &str = "customer#";

type Item = HashMap<String, AttributeValue>;

/// One page of a listing; `has_more` comes from reading one item past the page.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerPage {
    pub customers: Vec<Customer>,
    pub has_more: bool,
}

#[derive(Clone, Debug)]
pub struct CustomersTable {
    client: Client,
    name: String,
}

fn decode(mut item: Item) -> Result<Customer, StorageError> {
    for key in ["pk", "sk", "updated_key"] {
        item.remove(key);
    }
    serde_dynamo::from_item(item).map_err(|e| corrupt("customer", e))
}

impl CustomersTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    /// Newest created first: a Query on the org's partition, never a Scan.
    pub async fn list_by_creation(
        &self,
        org: &OrgId,
        limit: usize,
    ) -> Result<CustomerPage, StorageError> {
        let output = self
            .client
            .query()
            .table_name(&self.name)
            .key_condition_expression("pk = :org AND begins_with(sk, :prefix)")
            .expression_attribute_values(":org", AttributeValue::S(org.to_string()))
            .expression_attribute_values(":prefix", AttributeValue::S(CUSTOMER_SK_PREFIX.into()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| classify("Query customers", &e))?;
        let mut customers = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()?;
        let has_more = customers.len() > limit;
        customers.truncate(limit);
        Ok(CustomerPage {
            customers,
            has_more,
        })
    }
}
