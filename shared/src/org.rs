//! Organisation ids and modes: the tenant boundary. Every key belongs to one org and one
//! mode; every query of customer data is scoped to both (an org's test data is a namespace
//! of its own in the same tables, which no live key reaches, and back).

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

impl OrgId {
    /// The partition an org's data of `mode` lives in: the org id itself for live data;
    /// `<org>#test` for test data. `#` is outside the org alphabet, so a test namespace is
    /// never another org's id, and no id a client sends can name it.
    pub fn data_space(&self, mode: Mode) -> OrgId {
        match mode {
            Mode::Live => self.clone(),
            Mode::Test => OrgId(format!("{}#test", self.0)),
        }
    }
}

/// Live data is real; test data is an org's rehearsal space, reached only by test keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    #[default]
    Live,
    Test,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Live, Mode::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Test => "test",
        }
    }

    pub fn parse(text: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

    #[test]
    fn an_orgs_test_data_space_is_no_orgs_id() {
        let acme = OrgId::parse("acme").unwrap();
        assert_eq!(acme.data_space(Mode::Live), acme);
        let test = acme.data_space(Mode::Test);
        assert_eq!(test.as_str(), "acme#test");
        assert!(
            OrgId::parse(test.as_str()).is_err(),
            "no org can be named so"
        );
        assert_ne!(test, OrgId::parse("acme_test").unwrap());
        assert_eq!(Mode::parse("test"), Some(Mode::Test));
        assert_eq!(Mode::parse("Test"), None);
    }
}
