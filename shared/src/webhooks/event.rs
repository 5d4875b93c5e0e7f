//! The events an endpoint can subscribe to, and the payload every delivery carries.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::time::{self, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "customer.created")]
    CustomerCreated,
    /// Any change, lifecycle moves included, with `previous_attributes`.
    #[serde(rename = "customer.updated")]
    CustomerUpdated,
    /// The moment `kyc_status` is VERIFIED and `aml.status` CLEAR together.
    #[serde(rename = "customer.verified")]
    CustomerVerified,
    /// A key expires in 7 days (the daily sweep).
    #[serde(rename = "api_key.expiring")]
    ApiKeyExpiring,
    #[serde(rename = "api_key.revoked")]
    ApiKeyRevoked,
    /// An event of the org's audit trail (for SIEMs): only to endpoints bound to a member
    /// who may read the trail (`org.audit`), live mode only.
    #[serde(rename = "audit_event.created")]
    AuditEventCreated,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::CustomerCreated,
        EventType::CustomerUpdated,
        EventType::CustomerVerified,
        EventType::ApiKeyExpiring,
        EventType::ApiKeyRevoked,
        EventType::AuditEventCreated,
    ];

    /// Whether the event carries the org's audit trail (so its endpoint's binding must hold
    /// `org.audit`, which no API key can).
    pub fn carries_audit(self) -> bool {
        self == EventType::AuditEventCreated
    }

    /// Whether the event carries a customer (so its endpoint's creator must read customers).
    pub fn carries_customer(self) -> bool {
        matches!(
            self,
            EventType::CustomerCreated | EventType::CustomerUpdated | EventType::CustomerVerified
        )
    }

    /// Whether the event's very name states an AML result (`customer.verified`: KYC
    /// verified and AML clear together), so it goes only where AML may go.
    pub fn states_aml(self) -> bool {
        self == EventType::CustomerVerified
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::CustomerCreated => "customer.created",
            EventType::CustomerUpdated => "customer.updated",
            EventType::CustomerVerified => "customer.verified",
            EventType::ApiKeyExpiring => "api_key.expiring",
            EventType::ApiKeyRevoked => "api_key.revoked",
            EventType::AuditEventCreated => "audit_event.created",
        }
    }

    pub fn names() -> String {
        EventType::ALL
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_owned()))
    }
}

/// One thing that happened, before it is cut to what each endpoint may see: `object` is
/// whole (a customer with its AML block, a key object), `previous_attributes` likewise.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `evt_…`, derived from what produced it (a stream record, a key and its expiry), so
    /// a batch handled twice makes the same event, not a second one.
    pub id: String,
    pub kind: EventType,
    pub created_at: Timestamp,
    pub object: Value,
    pub previous_attributes: Option<Value>,
}

impl Event {
    /// The body an endpoint receives: `{"id","type","created_at","data":{"object",
    /// "previous_attributes"?}}`, the AML block removed unless the endpoint may see it.
    /// Whether an endpoint that may (`include_aml`) or may not see AML has anything to
    /// learn from this event. `customer.verified` states an AML result, so only the first
    /// does; a `customer.updated` whose only change is AML says nothing to an endpoint
    /// without AML (its previous attributes would be bare), so it is not sent there.
    pub fn visible(&self, include_aml: bool) -> bool {
        if include_aml {
            return true;
        }
        if self.kind.states_aml() {
            return false;
        }
        if self.kind != EventType::CustomerUpdated {
            return true;
        }
        self.previous_attributes
            .as_ref()
            .and_then(Value::as_object)
            .is_none_or(|changed| {
                changed
                    .keys()
                    .any(|name| name != "aml" && name != "updated_at")
            })
    }

    pub fn payload(&self, include_aml: bool) -> Value {
        let mut object = self.object.clone();
        let mut previous = self.previous_attributes.clone();
        if !include_aml {
            if let Some(map) = object.as_object_mut() {
                if map.get("object").and_then(Value::as_str) == Some("customer") {
                    map.shift_remove("aml");
                }
            }
            if let Some(map) = previous.as_mut().and_then(Value::as_object_mut) {
                map.shift_remove("aml");
            }
        }
        let mut data = json!({ "object": object });
        if let Some(previous) = previous {
            data["previous_attributes"] = previous;
        }
        json!({
            "id": self.id,
            "type": self.kind.as_str(),
            "created_at": time::format(&self.created_at),
            "data": data,
        })
    }
}

/// A stored payload without its AML data (for an endpoint whose creator may no longer
/// read AML): the customer's `aml` block and any `aml` among `previous_attributes`.
pub fn without_aml(payload: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(payload) else {
        return payload.to_owned();
    };
    if let Some(data) = value.get_mut("data").and_then(Value::as_object_mut) {
        if let Some(object) = data.get_mut("object").and_then(Value::as_object_mut) {
            if object.get("object").and_then(Value::as_str) == Some("customer") {
                object.shift_remove("aml");
            }
        }
        if let Some(previous) = data
            .get_mut("previous_attributes")
            .and_then(Value::as_object_mut)
        {
            previous.shift_remove("aml");
        }
    }
    value.to_string()
}

/// An event id from the facts that make the event unique.
pub fn event_id(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0x1f]);
    }
    let digest = hasher.finalize();
    format!("evt_{}", hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_round_trip_and_unknown_ones_are_refused() {
        for kind in EventType::ALL {
            assert_eq!(kind.as_str().parse::<EventType>(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                Value::String(kind.as_str().into())
            );
        }
        for bad in ["customer.deleted", "Customer.created", "", "*", "customer"] {
            assert!(bad.parse::<EventType>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_aml_only_update_is_not_for_endpoints_without_aml() {
        let update = |previous: Value| Event {
            id: "evt_1".into(),
            kind: EventType::CustomerUpdated,
            created_at: time::parse("2026-12-04T10:00:00Z").unwrap(),
            object: json!({"object": "customer", "id": "c1"}),
            previous_attributes: Some(previous),
        };
        let aml_only = update(json!({"aml": {"status": "PENDING"}, "updated_at": "x"}));
        assert!(aml_only.visible(true));
        assert!(!aml_only.visible(false));
        let renamed =
            update(json!({"aml": {"status": "PENDING"}, "full_name": "A", "updated_at": "x"}));
        assert!(renamed.visible(false));
        let created = Event {
            kind: EventType::CustomerCreated,
            previous_attributes: None,
            ..aml_only
        };
        assert!(created.visible(false));
        let verified = Event {
            kind: EventType::CustomerVerified,
            ..created
        };
        assert!(verified.visible(true));
        assert!(
            !verified.visible(false),
            "customer.verified states an AML result"
        );
    }

    #[test]
    fn a_stored_payload_loses_its_aml_as_a_fresh_one_would() {
        let event = Event {
            id: "evt_1".into(),
            kind: EventType::CustomerUpdated,
            created_at: time::parse("2026-12-04T10:00:00Z").unwrap(),
            object: json!({"object": "customer", "id": "c1", "aml": {"status": "CLEAR"}}),
            previous_attributes: Some(json!({"aml": {"status": "PENDING"}, "full_name": "A"})),
        };
        let stored = event.payload(true).to_string();
        assert_eq!(without_aml(&stored), event.payload(false).to_string());
        assert!(!without_aml(&stored).contains("aml"));
        // A key event has no AML to lose: unchanged.
        let key_event = Event {
            kind: EventType::ApiKeyRevoked,
            object: json!({"object": "api_key", "id": "key_1"}),
            previous_attributes: None,
            ..event
        };
        let stored = key_event.payload(true).to_string();
        assert_eq!(without_aml(&stored), stored);
    }

    #[test]
    fn payloads_drop_aml_for_endpoints_that_may_not_see_it() {
        let event = Event {
            id: "evt_1".into(),
            kind: EventType::CustomerUpdated,
            created_at: time::parse("2026-12-04T10:00:00Z").unwrap(),
            object: json!({"object": "customer", "id": "c1", "aml": {"status": "CLEAR"}}),
            previous_attributes: Some(
                json!({"aml": {"status": "PENDING"}, "kyc_status": "PENDING"}),
            ),
        };
        let full = event.payload(true);
        assert_eq!(full["data"]["object"]["aml"]["status"], "CLEAR");
        assert_eq!(
            full["data"]["previous_attributes"]["aml"]["status"],
            "PENDING"
        );
        let cut = event.payload(false);
        assert!(cut["data"]["object"].get("aml").is_none());
        assert!(cut["data"]["previous_attributes"].get("aml").is_none());
        assert_eq!(cut["data"]["previous_attributes"]["kyc_status"], "PENDING");
        assert_eq!(cut["type"], "customer.updated");
        assert_eq!(cut["created_at"], "2026-12-04T10:00:00.000Z");
    }

    #[test]
    fn event_ids_depend_on_every_part() {
        let a = event_id(&["stream", "1"]);
        assert_eq!(a, event_id(&["stream", "1"]));
        assert_ne!(a, event_id(&["stream", "2"]));
        assert_ne!(event_id(&["ab", "c"]), event_id(&["a", "bc"]));
        assert!(a.starts_with("evt_") && a.len() > 20);
    }
}
