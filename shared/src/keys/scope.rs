//! Scopes: the integrator-facing permissions a key carries.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "customers:write")]
    CustomersWrite,
    #[serde(rename = "customers:read")]
    CustomersRead,
    #[serde(rename = "aml:read")]
    AmlRead,
    /// Manage the org's webhook endpoints (`/v1/webhook_endpoints`): what a Zapier REST
    /// hook subscribes and unsubscribes with.
    #[serde(rename = "webhooks:write")]
    WebhooksWrite,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::CustomersWrite,
        Scope::CustomersRead,
        Scope::AmlRead,
        Scope::WebhooksWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CustomersWrite => "customers:write",
            Scope::CustomersRead => "customers:read",
            Scope::AmlRead => "aml:read",
            Scope::WebhooksWrite => "webhooks:write",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}; valid scopes are customers:write, customers:read, aml:read, webhooks:write")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_round_trips_through_its_name() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
            let json = serde_json::to_string(&scope).unwrap();
            assert_eq!(json, format!("\"{}\"", scope.as_str()));
            assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), scope);
        }
    }

    #[test]
    fn names_are_exact() {
        for bad in [
            "customers:Write",
            "customers",
            "aml",
            " aml:read",
            "",
            "admin",
        ] {
            let err = bad.parse::<Scope>().unwrap_err();
            assert!(err.to_string().contains("customers:write"), "{err}");
        }
    }
}
