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

/// What a caller may see of a customer. With `customers:read`, the whole object, and its
/// `aml` block only with `aml:read` too. A write answered to a key without `customers:read`
/// carries only what identifies the record: writing never becomes a way to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerView {
    pub read: bool,
    pub aml: bool,
}

/// The fields a write-only caller is answered with.
pub const WRITE_ONLY_FIELDS: &[&str] = &["object", "id", "external_id", "created_at", "updated_at"];

impl CustomerView {
    /// Everything: the operator tool's view.
    pub const FULL: CustomerView = CustomerView {
        read: true,
        aml: true,
    };

    /// The API object of `customer` as this view shows it.
    pub fn render(self, customer: &Customer) -> Value {
        let mut object = serde_json::Map::new();
        object.insert("object".into(), Value::from("customer"));
        if let Ok(Value::Object(fields)) = serde_json::to_value(customer) {
            object.extend(fields);
        }
        if let Some(Value::Object(aml)) = object.get_mut("aml") {
            aml.remove("screened_at");
        }
        let mut value = Value::Object(object);
        self.restrict(&mut value);
        value
    }

    /// Removes from a rendered customer object (a stored idempotent response, say) what
    /// this view may not see. Returns whether anything was removed; anything that is not a
    /// customer object is left alone.
    pub fn restrict(self, value: &mut Value) -> bool {
        let Some(object) = value.as_object_mut() else {
            return false;
        };
        if object.get("object").and_then(Value::as_str) != Some("customer") {
            return false;
        }
        let before = object.len();
        if !self.read {
            object.retain(|name, _| WRITE_ONLY_FIELDS.contains(&name.as_str()));
        } else if !self.aml {
            object.remove("aml");
        }
        object.len() != before
    }
}

/// A UUID v7 whose time part is `created_at`: one clock reading for both, so newest-first
/// by id and by `created_at` are the same order.
pub fn id_created_at(created_at: Timestamp) -> Uuid {
    let millis = u64::try_from(created_at.timestamp_millis()).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        millis / 1000,
        u32::try_from(millis % 1000).unwrap_or(0) * 1_000_000,
    );
    Uuid::new_v7(ts)
}

/// The `created_at` a UUID v7 carries (`None` for another version).
pub fn created_at_of(id: &Uuid) -> Option<Timestamp> {
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    let millis = i64::try_from(secs).ok()? * 1000 + i64::from(nanos / 1_000_000);
    chrono::DateTime::from_timestamp_millis(millis)
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
        Self::create_as(input, added_via, id_created_at(now), now)
    }

    /// A new customer with a given id (one reserved earlier), created at the id's time.
    pub fn create_with_id(
        input: &CustomerInput,
        added_via: AddedVia,
        id: Uuid,
    ) -> Result<Self, ApiError> {
        let created_at = created_at_of(&id).ok_or(ApiError::Internal)?;
        Self::create_as(input, added_via, id, created_at)
    }

    fn create_as(
        input: &CustomerInput,
        added_via: AddedVia,
        id: Uuid,
        now: Timestamp,
    ) -> Result<Self, ApiError> {
        let Field::Value(full_name) = &input.full_name else {
            return Err(ApiError::invalid_param(
                "full_name",
                "full_name is required.",
            ));
        };
        let mut customer = Customer {
            id,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customers::input::{CustomerInput, Field};

    fn customer(at: &str) -> Customer {
        let input = CustomerInput {
            full_name: Field::Value("Jane Doe".into()),
            external_id: Field::Value("crm-1".into()),
            email: Field::Value("jane@example.com".into()),
            ..CustomerInput::default()
        };
        Customer::create(
            &input,
            AddedVia::Integration,
            crate::time::parse(at).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn the_id_carries_created_at() {
        let c = customer("2026-06-23T09:12:44.120Z");
        let (secs, nanos) = c.id.get_timestamp().unwrap().to_unix();
        assert_eq!(c.id.get_version_num(), 7);
        assert_eq!(
            i64::try_from(secs).unwrap() * 1000 + i64::from(nanos / 1_000_000),
            c.created_at.timestamp_millis()
        );
        assert_eq!(created_at_of(&c.id), Some(c.created_at));
        assert_eq!(created_at_of(&Uuid::new_v4()), None);
        let again = Customer::create_with_id(
            &CustomerInput {
                full_name: Field::Value("Jane".into()),
                ..CustomerInput::default()
            },
            AddedVia::Integration,
            c.id,
        )
        .unwrap();
        assert_eq!((again.id, again.created_at), (c.id, c.created_at));
        let later = customer("2026-06-23T09:12:44.121Z");
        assert!(later.id > c.id, "a later created_at sorts later by id");
    }

    #[test]
    fn views_show_what_the_scopes_allow() {
        let c = customer("2026-06-23T09:12:44.120Z");
        let full = CustomerView::FULL.render(&c);
        assert_eq!(full["aml"]["status"], "NOT_SCREENED");
        assert!(full["aml"].get("screened_at").is_none());
        assert_eq!(full["email"], "jane@example.com");

        let no_aml = CustomerView {
            read: true,
            aml: false,
        };
        let shown = no_aml.render(&c);
        assert!(shown.get("aml").is_none());
        assert_eq!(shown["kyc_status"], "NOT_STARTED");

        for aml in [true, false] {
            let write_only = CustomerView { read: false, aml };
            let shown = write_only.render(&c);
            let names: Vec<&str> = shown
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(names, WRITE_ONLY_FIELDS);
        }
    }

    #[test]
    fn restricting_a_stored_object_removes_only_what_the_view_lacks() {
        let c = customer("2026-06-23T09:12:44.120Z");
        let mut stored = CustomerView::FULL.render(&c);
        assert!(!CustomerView::FULL.restrict(&mut stored));
        let mut copy = stored.clone();
        assert!(CustomerView {
            read: true,
            aml: false
        }
        .restrict(&mut copy));
        assert!(copy.get("aml").is_none());
        let mut error = serde_json::json!({"error": {"code": "conflict"}});
        assert!(!CustomerView {
            read: false,
            aml: false
        }
        .restrict(&mut error));
    }
}
