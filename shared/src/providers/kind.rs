//! The providers an org can hold a key for (the contract's `key_type` codes), how each one
//! takes its key, and the cheapest authenticated request `verify` makes to each.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum KeyType {
    #[serde(rename = "H")]
    Chainalysis,
    #[serde(rename = "T")]
    Trm,
    #[serde(rename = "O")]
    OpenSanctions,
    #[serde(rename = "W")]
    WorldCheck,
    #[serde(rename = "C")]
    Castellum,
    #[serde(rename = "A")]
    OpenAi,
    #[serde(rename = "P")]
    Perplexity,
}

/// How a provider takes its key on each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <key>` (OpenAI, Perplexity).
    Bearer,
    /// The key alone in a header of the provider's own (`Token` for Chainalysis KYT,
    /// `X-API-Key` for Castellum).
    Header(&'static str),
    /// `Authorization: ApiKey <key>` (Open Sanctions).
    ApiKeyScheme,
    /// HTTP Basic with the key as user name and password (TRM).
    BasicKeyKey,
    /// World-Check One's HMAC-SHA256 request signature: the secret is `<api key>:<api
    /// secret>`, the signature covers `(request-target)`, `host` and `date`.
    WorldCheckHmac,
}

/// The request `verify` makes: the provider's cheapest authenticated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub method: &'static str,
    pub path: &'static str,
    pub body: Option<&'static str>,
}

impl KeyType {
    pub const ALL: [KeyType; 7] = [
        KeyType::Chainalysis,
        KeyType::Trm,
        KeyType::OpenSanctions,
        KeyType::WorldCheck,
        KeyType::Castellum,
        KeyType::OpenAi,
        KeyType::Perplexity,
    ];

    pub fn code(self) -> &'static str {
        match self {
            KeyType::Chainalysis => "H",
            KeyType::Trm => "T",
            KeyType::OpenSanctions => "O",
            KeyType::WorldCheck => "W",
            KeyType::Castellum => "C",
            KeyType::OpenAi => "A",
            KeyType::Perplexity => "P",
        }
    }

    pub fn from_code(code: &str) -> Option<KeyType> {
        KeyType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The provider's name, as the object's `provider` shows it.
    pub fn provider(self) -> &'static str {
        match self {
            KeyType::Chainalysis => "Chainalysis",
            KeyType::Trm => "TRM",
            KeyType::OpenSanctions => "Open Sanctions",
            KeyType::WorldCheck => "World Check",
            KeyType::Castellum => "Castellum",
            KeyType::OpenAi => "OpenAI",
            KeyType::Perplexity => "Perplexity",
        }
    }

    /// The variable that overrides the provider's base URL (the tests and the local stack
    /// point it at a local fake of the provider's API).
    pub fn base_url_env(self) -> &'static str {
        match self {
            KeyType::Chainalysis => "PROVIDER_URL_CHAINALYSIS",
            KeyType::Trm => "PROVIDER_URL_TRM",
            KeyType::OpenSanctions => "PROVIDER_URL_OPEN_SANCTIONS",
            KeyType::WorldCheck => "PROVIDER_URL_WORLD_CHECK",
            KeyType::Castellum => "PROVIDER_URL_CASTELLUM",
            KeyType::OpenAi => "PROVIDER_URL_OPENAI",
            KeyType::Perplexity => "PROVIDER_URL_PERPLEXITY",
        }
    }

    /// The provider's production API.
    pub fn default_base_url(self) -> &'static str {
        match self {
            KeyType::Chainalysis => "https://api.chainalysis.com",
            KeyType::Trm => "https://api.trmlabs.com",
            KeyType::OpenSanctions => "https://api.opensanctions.org",
            KeyType::WorldCheck => "https://api-worldcheck.refinitiv.com",
            KeyType::Castellum => "https://api.castellum.ai",
            KeyType::OpenAi => "https://api.openai.com",
            KeyType::Perplexity => "https://api.perplexity.ai",
        }
    }

    pub fn auth(self) -> Auth {
        match self {
            KeyType::Chainalysis => Auth::Header("Token"),
            KeyType::Trm => Auth::BasicKeyKey,
            KeyType::OpenSanctions => Auth::ApiKeyScheme,
            KeyType::WorldCheck => Auth::WorldCheckHmac,
            KeyType::Castellum => Auth::Header("X-API-Key"),
            KeyType::OpenAi | KeyType::Perplexity => Auth::Bearer,
        }
    }

    /// The cheapest authenticated request: a read that costs no screening where the
    /// provider has one.
    pub fn probe(self) -> Probe {
        let get = |path| Probe {
            method: "GET",
            path,
            body: None,
        };
        match self {
            KeyType::Chainalysis => get("/api/kyt/v1/users?limit=1"),
            KeyType::Trm => Probe {
                method: "POST",
                path: "/public/v2/screening/addresses",
                body: Some("[]"),
            },
            KeyType::OpenSanctions => get("/search/default?q=key-check&limit=1"),
            KeyType::WorldCheck => get("/v2/groups"),
            KeyType::Castellum => get("/v1/lists"),
            KeyType::OpenAi => get("/v1/models"),
            KeyType::Perplexity => get("/async/chat/completions"),
        }
    }

    /// Whether `secret` has the form the provider needs, beyond the general rules (World
    /// Check's is a pair); `Err` says what is wrong, without quoting it.
    pub fn check_form(self, secret: &str) -> Result<(), String> {
        if self == KeyType::WorldCheck {
            let ok = secret
                .split_once(':')
                .is_some_and(|(key, secret)| !key.is_empty() && !secret.is_empty());
            if !ok {
                return Err(
                    "A World Check secret is the API key and the API secret joined by a colon: \"<api key>:<api secret>\"."
                        .into(),
                );
            }
        }
        Ok(())
    }

    /// The codes and names, for error messages.
    pub fn names() -> String {
        KeyType::ALL
            .iter()
            .map(|t| format!("{} ({})", t.code(), t.provider()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contracts_codes_and_only_they_parse() {
        let codes: Vec<&str> = KeyType::ALL.iter().map(|t| t.code()).collect();
        assert_eq!(codes, ["H", "T", "O", "W", "C", "A", "P"]);
        for t in KeyType::ALL {
            assert_eq!(KeyType::from_code(t.code()), Some(t));
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                serde_json::Value::String(t.code().into())
            );
        }
        for bad in ["", "h", "X", "HH", "OpenAI", " A"] {
            assert_eq!(KeyType::from_code(bad), None, "{bad:?}");
        }
        assert_eq!(KeyType::OpenSanctions.provider(), "Open Sanctions");
    }

    #[test]
    fn world_check_secrets_are_pairs() {
        assert!(KeyType::WorldCheck.check_form("key:secret").is_ok());
        for bad in ["keysecret", ":secret", "key:", ":"] {
            assert!(KeyType::WorldCheck.check_form(bad).is_err(), "{bad:?}");
        }
        assert!(KeyType::OpenAi.check_form("no-colon-needed").is_ok());
    }
}
