//! What API Gateway's JWT authorizer does, for the local gateway: the token from the
//! identity source (`Authorization`, an optional `Bearer ` before it), signed with RS256 by
//! a key of the issuer's JWKS, `iss` equal to the configured issuer, `aud` (or, without
//! one, `client_id`) among the configured audiences, and `exp` in the future (`nbf` and
//! `iat` not). Its claims go into the event as strings, as API Gateway passes them. Like
//! the real authorizer it does not look at `token_use`: the handler refuses ID tokens.
//!
//! The JWKS is fetched from the emulator (its pools' keys) while the issuer keeps Cognito's
//! real form; nothing here issues or accepts a token the emulator did not sign.

use std::collections::HashMap;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::RwLock;

/// Why a request is refused before any function runs (API Gateway answers 401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No identity source: API Gateway does not even try.
    Missing,
    /// The token is not one the authorizer accepts; the reason is for the
    /// `WWW-Authenticate` header, as API Gateway gives one.
    Invalid(String),
}

#[derive(Debug)]
pub struct JwtAuthorizer {
    issuer: String,
    audiences: Vec<String>,
    jwks_url: String,
    keys: RwLock<Option<JwkSet>>,
}

/// A claim as API Gateway puts it in the event: strings as they are, numbers and booleans
/// written out, lists as `[a b]`.
fn claim_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(claim_text).collect::<Vec<_>>().join(" ")
        ),
        other => other.to_string(),
    }
}

fn invalid(reason: impl Into<String>) -> Refusal {
    Refusal::Invalid(reason.into())
}

impl JwtAuthorizer {
    pub fn new(issuer: String, audiences: Vec<String>, jwks_url: String) -> Self {
        Self {
            issuer,
            audiences,
            jwks_url,
            keys: RwLock::new(None),
        }
    }

    async fn fetch_keys(&self) -> Result<JwkSet, Refusal> {
        let url = self.jwks_url.clone();
        tokio::task::spawn_blocking(move || -> Result<JwkSet, String> {
            ureq::get(&url)
                .call()
                .map_err(|e| e.to_string())?
                .body_mut()
                .read_json::<JwkSet>()
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| invalid(format!("JWKS: {e}")))?
        .map_err(|e| {
            tracing::error!(error = %e, "cannot fetch the issuer's JWKS");
            invalid("signing keys unavailable")
        })
    }

    /// The key `kid` names, fetching the JWKS on first use and again when a kid is new
    /// (keys rotate).
    async fn key(&self, kid: &str) -> Result<DecodingKey, Refusal> {
        if let Some(set) = self.keys.read().await.as_ref() {
            if let Some(jwk) = set.find(kid) {
                return DecodingKey::from_jwk(jwk).map_err(|_| invalid("unusable signing key"));
            }
        }
        let set = self.fetch_keys().await?;
        let found = set
            .find(kid)
            .map(|jwk| DecodingKey::from_jwk(jwk).map_err(|_| invalid("unusable signing key")));
        *self.keys.write().await = Some(set);
        found.unwrap_or_else(|| Err(invalid("the token's signing key is not the issuer's")))
    }

    /// Checks the identity source's value at `now` (seconds since the epoch); the claims
    /// on success.
    pub async fn check(
        &self,
        authorization: Option<&str>,
        now: u64,
    ) -> Result<HashMap<String, String>, Refusal> {
        let value = authorization
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(Refusal::Missing)?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => value,
        };
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("not a JWT"))?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid("the token is not signed with RS256"));
        }
        let kid = header
            .kid
            .ok_or_else(|| invalid("the token names no key"))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        // Time and audience are checked below, against `now` and as API Gateway does.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = ["exp", "iss"].iter().map(|s| s.to_string()).collect();
        validation.set_issuer(&[&self.issuer]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                    invalid("the token's issuer is not the pool's")
                }
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    invalid("the token's signature is not valid")
                }
                _ => invalid("the token is not valid"),
            })?;
        let claims = data.claims;
        let number = |name: &str| claims.get(name).and_then(Value::as_u64);
        match number("exp") {
            Some(exp) if exp > now => {}
            _ => return Err(invalid("the token has expired")),
        }
        if number("nbf").is_some_and(|nbf| nbf > now) || number("iat").is_some_and(|iat| iat > now)
        {
            return Err(invalid("the token is not valid yet"));
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => self.audiences.contains(aud),
            Some(Value::Array(auds)) => auds
                .iter()
                .filter_map(Value::as_str)
                .any(|aud| self.audiences.iter().any(|a| a == aud)),
            Some(_) => false,
            None => claims
                .get("client_id")
                .and_then(Value::as_str)
                .is_some_and(|id| self.audiences.iter().any(|a| a == id)),
        };
        if !audience_ok {
            return Err(invalid("the token is not for this API's client"));
        }
        Ok(claims
            .iter()
            .map(|(name, value)| (name.clone(), claim_text(value)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_written_as_api_gateway_writes_them() {
        assert_eq!(claim_text(&Value::from("abc")), "abc");
        assert_eq!(claim_text(&Value::from(1_700_000_000u64)), "1700000000");
        assert_eq!(claim_text(&serde_json::json!(["a", "b"])), "[a b]");
    }

    #[tokio::test]
    async fn what_is_not_a_signed_jwt_is_refused_before_any_key_is_fetched() {
        // The JWKS URL goes nowhere: none of these may get as far as needing it.
        let authorizer = JwtAuthorizer::new(
            "https://issuer.test/pool".into(),
            vec!["client".into()],
            "http://127.0.0.1:9/none".into(),
        );
        assert_eq!(authorizer.check(None, 0).await, Err(Refusal::Missing));
        assert_eq!(authorizer.check(Some("  "), 0).await, Err(Refusal::Missing));
        // An API key, made here (a real one is never committed).
        let api_key = shared::keys::token::ApiKeyToken::generate(shared::org::Mode::Live).unwrap();
        let api_key = format!("Bearer {}", api_key.expose_secret());
        for token in [
            api_key.as_str(),
            "Bearer not.a.jwt",
            // alg none, unsigned.
            "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4IiwiZXhwIjo0MDAwMDAwMDAwfQ.",
            // HS256: a shared-secret token, never what the pool signs.
            "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImR1bW15In0.eyJzdWIiOiJ4In0.c2ln",
        ] {
            assert!(
                matches!(
                    authorizer.check(Some(token), 0).await,
                    Err(Refusal::Invalid(_))
                ),
                "{token}"
            );
        }
    }
}
