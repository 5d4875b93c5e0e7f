//! The customer model as the API shows it and the lifecycle enums it carries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::customers::input::{CustomerInput, Field};
use crate::error::ApiError;
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

/// The wire names (`NOT_STARTED`, `POTENTIAL_MATCH`, `ADVERSE_MEDIA`…) for messages and CLI
/// arguments, from the same serde attributes the API uses.
macro_rules! wire_names {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match serde_json::to_value(self) {
                    Ok(Value::String(name)) => f.write_str(&name),
                    _ => write!(f, "{self:?}"),
                }
            }
        }

        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                serde_json::from_value(Value::String(s.to_owned())).map_err(|_| format!("unknown value {s:?}"))
            }
        }
    )*};
}

wire_names!(CustomerType, KycStatus, AmlStatus, AmlCategory, AddedVia);

impl Customer {
    /// A new customer from a create body. `full_name` is required; ingesting triggers no KYC.
    pub fn create(
        input: &CustomerInput,
        added_via: AddedVia,
        now: Timestamp,
    ) -> Result<Self, ApiError> {
        let Field::Value(full_name) = &input.full_name else {
            return Err(ApiError::invalid_param(
                "full_name",
                "full_name is required.",
            ));
        };
        let mut customer = Customer {
            id: Uuid::now_v7(),
            external_id: None,
            customer_type: CustomerType::Individual,
            full_name: full_name.clone(),
            email: None,
            phone: None,
            date_of_birth: None,
            country: None,
            metadata: BTreeMap::new(),
            kyc_status: KycStatus::NotStarted,
            aml: AmlResult {
                status: AmlStatus::NotScreened,
                categories: Vec::new(),
                screened_at: None,
            },
            added_via,
            created_at: now,
            updated_at: now,
        };
        customer.apply(input, now);
        customer.updated_at = now;
        Ok(customer)
    }

    /// Applies the fields the input names (`null` clears). Returns whether anything changed;
    /// `updated_at` moves only then, so a no-op upsert leaves it alone.
    pub fn apply(&mut self, input: &CustomerInput, now: Timestamp) -> bool {
        fn set<T: Clone + PartialEq>(slot: &mut Option<T>, field: &Field<T>) -> bool {
            let new = match field {
                Field::Absent => return false,
                Field::Null => None,
                Field::Value(v) => Some(v.clone()),
            };
            let changed = *slot != new;
            *slot = new;
            changed
        }
        let mut changed = false;
        changed |= set(&mut self.external_id, &input.external_id);
        changed |= set(&mut self.email, &input.email);
        changed |= set(&mut self.phone, &input.phone);
        changed |= set(&mut self.date_of_birth, &input.date_of_birth);
        changed |= set(&mut self.country, &input.country);
        if let Field::Value(t) = input.customer_type {
            changed |= self.customer_type != t;
            self.customer_type = t;
        }
        if let Field::Value(name) = &input.full_name {
            changed |= self.full_name != *name;
            self.full_name = name.clone();
        }
        match &input.metadata {
            Field::Absent => {}
            Field::Null => {
                changed |= !self.metadata.is_empty();
                self.metadata.clear();
            }
            Field::Value(m) => {
                changed |= self.metadata != *m;
                self.metadata = m.clone();
            }
        }
        if changed {
            self.updated_at = now;
        }
        changed
    }

    /// `GET /v1/customers/{id}/aml`.
    pub fn aml_json(&self) -> Value {
        serde_json::json!({
            "object": "aml_result",
            "customer_id": self.id,
            "status": self.aml.status,
            "categories": self.aml.categories,
            "screened_at": self.aml.screened_at.as_ref().map(crate::time::format),
            "updated_at": crate::time::format(&self.updated_at),
        })
    }
}
