//! Organisation ids: the tenant boundary. Every key belongs to one; every query is scoped to it.

use std::fmt;

use serde::{Deserialize, Serialize};

pub const MAX_ORG_ID_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrgId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("org id {0:?} must be 1-64 characters of A-Z, a-z, 0-9, '-' and '_'")]
pub struct InvalidOrgId(pub String);

impl OrgId {
    pub fn parse(text: &str) -> Result<Self, InvalidOrgId> {
        let ok = !text.is_empty()
            && text.len() <= MAX_ORG_ID_CHARS
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidOrgId(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OrgId {
    type Error = InvalidOrgId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        OrgId::parse(&value)
    }
}

impl From<OrgId> for String {
    fn from(value: OrgId) -> Self {
        value.0
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_ids_are_restricted_to_a_safe_alphabet() {
        assert!(OrgId::parse("demo").is_ok());
        assert!(OrgId::parse("acme-corp_2").is_ok());
        assert!(OrgId::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "org#1", "ä", &"a".repeat(65)] {
            assert!(OrgId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<OrgId>("\"x#y\"").is_err());
    }
}
