//! Roles and the permissions they give (the contract's table), and the permission behind
//! each key scope: a key can never do more than its creator's role allows a person to do.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::keys::scope::Scope;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permission {
    #[serde(rename = "org.members")]
    OrgMembers,
    #[serde(rename = "org.api-keys")]
    OrgApiKeys,
    #[serde(rename = "org.provider-keys")]
    OrgProviderKeys,
    #[serde(rename = "org.audit")]
    OrgAudit,
    #[serde(rename = "customers.read")]
    CustomersRead,
    #[serde(rename = "customers.write")]
    CustomersWrite,
    #[serde(rename = "aml.read")]
    AmlRead,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::OrgMembers => "org.members",
            Permission::OrgApiKeys => "org.api-keys",
            Permission::OrgProviderKeys => "org.provider-keys",
            Permission::OrgAudit => "org.audit",
            Permission::CustomersRead => "customers.read",
            Permission::CustomersWrite => "customers.write",
            Permission::AmlRead => "aml.read",
        }
    }

    /// The permission a key scope stands for.
    pub fn backing(scope: Scope) -> Permission {
        match scope {
            Scope::CustomersWrite => Permission::CustomersWrite,
            Scope::CustomersRead => Permission::CustomersRead,
            Scope::AmlRead => Permission::AmlRead,
            Scope::WebhooksWrite => Permission::OrgApiKeys,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Administrator,
    ComplianceOfficer,
    Developer,
    Analyst,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Administrator,
        Role::ComplianceOfficer,
        Role::Developer,
        Role::Analyst,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::ComplianceOfficer => "compliance_officer",
            Role::Developer => "developer",
            Role::Analyst => "analyst",
        }
    }

    pub fn permissions(self) -> BTreeSet<Permission> {
        use Permission::*;
        match self {
            Role::Administrator | Role::ComplianceOfficer => BTreeSet::from([
                OrgMembers,
                OrgApiKeys,
                OrgProviderKeys,
                OrgAudit,
                CustomersRead,
                CustomersWrite,
                AmlRead,
            ]),
            Role::Developer => BTreeSet::from([OrgApiKeys, CustomersRead, CustomersWrite]),
            Role::Analyst => BTreeSet::from([CustomersRead, AmlRead]),
        }
    }

    pub fn has(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }

    /// Whether a key of this role's member may carry `scope`.
    pub fn covers(self, scope: Scope) -> bool {
        self.has(Permission::backing(scope))
    }

    /// The scopes this role can grant a key.
    pub fn grantable_scopes(self) -> BTreeSet<Scope> {
        Scope::ALL.into_iter().filter(|s| self.covers(*s)).collect()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}; roles are administrator, compliance_officer, developer, analyst")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract's table, row by row, as the tick marks read.
    #[test]
    fn roles_give_the_contracts_permissions() {
        let row = |role: Role| -> [bool; 6] {
            [
                Permission::OrgMembers,
                Permission::OrgApiKeys,
                Permission::OrgProviderKeys,
                Permission::CustomersRead,
                Permission::CustomersWrite,
                Permission::AmlRead,
            ]
            .map(|p| role.has(p))
        };
        assert_eq!(row(Role::Administrator), [true; 6]);
        assert_eq!(row(Role::ComplianceOfficer), [true; 6]);
        assert_eq!(
            row(Role::Developer),
            [false, true, false, true, true, false]
        );
        assert_eq!(row(Role::Analyst), [false, false, false, true, false, true]);
    }

    #[test]
    fn scopes_are_bounded_by_the_role() {
        assert_eq!(
            Role::Developer.grantable_scopes(),
            BTreeSet::from([
                Scope::CustomersRead,
                Scope::CustomersWrite,
                Scope::WebhooksWrite
            ])
        );
        assert!(!Role::Developer.covers(Scope::AmlRead));
        assert!(!Role::Analyst.covers(Scope::WebhooksWrite));
        assert!(!Role::Analyst.covers(Scope::CustomersWrite));
        assert_eq!(
            Role::Administrator.grantable_scopes(),
            BTreeSet::from(Scope::ALL)
        );
    }

    #[test]
    fn names_round_trip_and_are_exact() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(
                serde_json::to_value(role).unwrap(),
                serde_json::json!(role.as_str())
            );
        }
        for bad in ["Administrator", "admin", "", "owner"] {
            assert!(bad.parse::<Role>().is_err());
        }
        assert_eq!(
            serde_json::to_value(Permission::OrgApiKeys).unwrap(),
            serde_json::json!("org.api-keys")
        );
    }
}
