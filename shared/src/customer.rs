//! The customer model as the API shows it and the lifecycle enums it carries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CustomerType {
    Individual,
    Business,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KycStatus {
    NotStarted,
    InProgress,
    NeedsReview,
    Verified,
    Rejected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AmlStatus {
    NotScreened,
    Pending,
    Clear,
    PotentialMatch,
    ConfirmedMatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AmlCategory {
    Pep,
    Sanctions,
    AdverseMedia,
    Watchlist,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AddedVia {
    Integration,
    Manual,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmlResult {
    pub status: AmlStatus,
    pub categories: Vec<AmlCategory>,
    #[serde(with = "crate::time::millis_opt", default)]
    pub screened_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: Uuid,
    pub external_id: Option<String>,
    #[serde(rename = "type")]
    pub customer_type: CustomerType,
    pub full_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub date_of_birth: Option<String>,
    pub country: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub kyc_status: KycStatus,
    pub aml: AmlResult,
    pub added_via: AddedVia,
    #[serde(with = "crate::time::millis")]
    pub created_at: Timestamp,
    #[serde(with = "crate::time::millis")]
    pub updated_at: Timestamp,
}

impl Customer {
    /// The API object. The `aml` block is there only for callers holding `aml:read`.
    pub fn to_json(&self, include_aml: bool) -> Value {
        let mut object = serde_json::Map::new();
        object.insert("object".into(), Value::from("customer"));
        if let Ok(Value::Object(fields)) = serde_json::to_value(self) {
            object.extend(fields);
        }
        if include_aml {
            if let Some(Value::Object(aml)) = object.get_mut("aml") {
                aml.remove("screened_at");
            }
        } else {
            object.remove("aml");
        }
        Value::Object(object)
    }
}
