//! A webhook endpoint: where an org's events of one mode go, which ones, signed with which
//! secret, and whether it may see AML data. It is bound to the principal who last chose
//! where it sends (its creator, or whoever since changed its `url` or `events`): what it
//! carries is what that principal may see.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::org::{Mode, OrgId};
use crate::time::{self, Timestamp};
use crate::webhooks::event::EventType;
use crate::webhooks::signing::StoredSecret;

pub const ENDPOINT_ID_PREFIX: &str = "we_";
pub const MAX_DESCRIPTION_CHARS: usize = 200;
/// Endpoints an org may have in each mode (test endpoints never use up live mode's).
pub const MAX_ENDPOINTS_PER_ORG: u32 = 20;
/// After this long of nothing but failures an endpoint is disabled.
pub const DISABLE_AFTER_FAILING_SECS: i64 = 3 * 24 * 60 * 60;

/// Who made an endpoint: a key (a Zapier subscription) or a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Creator {
    ApiKey { id: String },
    Member { id: String, email: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub org_id: OrgId,
    pub endpoint_id: String,
    /// `live` or `test`: the data it hears about.
    pub mode: String,
    pub url: String,
    pub events: BTreeSet<EventType>,
    #[serde(default)]
    pub description: Option<String>,
    pub enabled: bool,
    /// Whether payloads keep the customer's `aml` block (its creator held `aml:read` or
    /// `aml.read` when it was made).
    pub include_aml: bool,
    /// Sealed under KMS, bound to the org and this endpoint's id.
    pub secret: StoredSecret,
    /// The secret before the last rotation, still signing until `previous_secret_expires_at`.
    #[serde(default)]
    pub previous_secret: Option<StoredSecret>,
    #[serde(default)]
    pub previous_secret_expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub created_by: Creator,
    /// Who last changed `url` or `events`, and so answers for what the endpoint carries;
    /// `None`: its creator.
    #[serde(default)]
    pub bound_to: Option<Creator>,
    #[serde(default)]
    pub bound_at: Option<Timestamp>,
    /// Why the platform disabled it (3 days of failures; the receiver answered 410).
    #[serde(default)]
    pub disabled_reason: Option<String>,
    #[serde(default)]
    pub disabled_at: Option<Timestamp>,
    /// The first failure since the last success, if it is failing now.
    #[serde(default)]
    pub failing_since: Option<Timestamp>,
    #[serde(default)]
    pub version: u64,
}

impl WebhookEndpoint {
    pub fn mode(&self) -> Mode {
        Mode::parse(&self.mode).unwrap_or(Mode::Live)
    }

    /// The principal whose rights bound what this endpoint carries.
    pub fn binding(&self) -> &Creator {
        self.bound_to.as_ref().unwrap_or(&self.created_by)
    }

    /// Whether it carries customers (any `customer.*` event).
    pub fn carries_customers(&self) -> bool {
        self.events.iter().any(|e| e.carries_customer())
    }

    /// Whether an event of `kind` may go out through it as it is bound now: a type it
    /// takes, and `customer.verified` (an AML result) only where AML may go.
    pub fn may_carry(&self, kind: EventType) -> bool {
        self.events.contains(&kind) && (!kind.states_aml() || self.include_aml)
    }

    /// Whether this endpoint wants `kind` now.
    pub fn wants(&self, kind: EventType) -> bool {
        self.enabled && self.events.contains(&kind)
    }

    /// The secrets that sign a delivery at `now`: the current one, and the previous one
    /// during a rotation's overlap.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&StoredSecret> {
        let mut secrets = vec![&self.secret];
        if let (Some(previous), Some(until)) =
            (&self.previous_secret, self.previous_secret_expires_at)
        {
            if now < until {
                secrets.push(previous);
            }
        }
        secrets
    }

    /// The API object: never the secret.
    pub fn to_json(&self) -> Value {
        json!({
            "object": "webhook_endpoint",
            "id": self.endpoint_id,
            "url": self.url,
            "events": self.events,
            "description": self.description,
            "enabled": self.enabled,
            "mode": self.mode,
            "includes_aml": self.include_aml,
            "created_at": time::format(&self.created_at),
            "updated_at": time::format(&self.updated_at),
            "created_by": self.created_by,
            "bound_to": self.binding(),
            "bound_at": time::format(self.bound_at.as_ref().unwrap_or(&self.created_at)),
            "disabled_reason": self.disabled_reason,
            "disabled_at": self.disabled_at.as_ref().map(time::format),
            "failing_since": self.failing_since.as_ref().map(time::format),
            "previous_secret_expires_at": self
                .previous_secret_expires_at
                .as_ref()
                .map(time::format),
        })
    }
}

impl Creator {
    /// Who acted, for the audit trail: a key of the integration API or a member.
    pub fn audit_actor(&self) -> crate::audit::Actor {
        match self {
            Creator::ApiKey { id } => crate::audit::Actor::Key { id: id.clone() },
            Creator::Member { id, email } => crate::audit::Actor::Member {
                id: id.clone(),
                email: email.clone(),
            },
        }
    }

    fn id(&self) -> &str {
        match self {
            Creator::ApiKey { id } | Creator::Member { id, .. } => id,
        }
    }
}

impl crate::audit::Audited for WebhookEndpoint {
    /// What the audit trail records of an endpoint: where it sends, what, in whose name,
    /// and whether it is on; never its secrets.
    fn audit_view(&self) -> Value {
        json!({
            "url": self.url,
            "events": self.events,
            "description": self.description,
            "mode": self.mode,
            "enabled": self.enabled,
            "includes_aml": self.include_aml,
            "bound_to": self.binding().id(),
            "disabled_reason": self.disabled_reason,
        })
    }

    fn audit_target(&self) -> crate::audit::Target {
        crate::audit::Target {
            kind: crate::audit::TargetKind::WebhookEndpoint,
            id: self.endpoint_id.clone(),
        }
    }
}

pub fn new_endpoint_id() -> Result<String, getrandom::Error> {
    Ok(format!(
        "{ENDPOINT_ID_PREFIX}{}",
        crate::keys::token::random_base62(24)?
    ))
}

/// Whether `text` could be an endpoint id (anything else is a 404 without a read).
pub fn is_endpoint_id(text: &str) -> bool {
    text.strip_prefix(ENDPOINT_ID_PREFIX).is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 40 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}
