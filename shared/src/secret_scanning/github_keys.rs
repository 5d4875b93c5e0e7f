//! GitHub's secret-scanning public keys: fetched from `SECRET_SCANNING_KEYS_URL` (GitHub's
//! meta API unless set) and cached. The list is fetched again for an identifier the cache
//! lacks (GitHub rotated), at most once per `refetch_after` (a minute), so a flood of
//! made-up identifiers can't make us hammer GitHub; and once the cached list is older than
//! `max_age` (an hour), so a key GitHub withdrew stops verifying. Concurrent requests share
//! one fetch; when a fetch fails the list already held stays in use. Any listed key
//! verifies, current or not (GitHub signs with one while it rotates).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::Deserialize;
use url::Url;

pub const SECRET_SCANNING_KEYS_URL_ENV: &str = "SECRET_SCANNING_KEYS_URL";
pub const GITHUB_KEYS_URL: &str = "https://api.github.com/meta/public_keys/secret_scanning";
/// The least time between two fetches of the key list.
pub const REFETCH_AFTER: Duration = Duration::from_secs(60);
/// How long a fetched list is used before it is fetched again.
pub const MAX_AGE: Duration = Duration::from_secs(3600);
/// How long a list is used at most while fetching it again keeps failing: past that, reports
/// are refused as unavailable (GitHub retries) rather than judged by keys it may have
/// withdrawn.
pub const STALE_LIMIT: Duration = Duration::from_secs(24 * 3600);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of the key list read (GitHub's is a few KB).
const MAX_LIST_BYTES: usize = 256 * 1024;
const USER_AGENT: &str = "InstantCompliance-SecretScanning/1.0";

/// Why a report's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("{}", self.message())]
    UnknownIdentifier,
    #[error("{}", self.message())]
    MalformedSignature,
    #[error("{}", self.message())]
    BadSignature,
    /// The key list could not be had (GitHub unreachable, or its answer unreadable): the
    /// report can't be judged now, so it is refused as unavailable (GitHub retries).
    #[error("the key list is unavailable: {0}")]
    Unavailable(String),
}

impl Rejected {
    /// What the refusal's envelope says (no detail of the list or the body).
    pub fn message(&self) -> &'static str {
        match self {
            Rejected::UnknownIdentifier => {
                "No listed GitHub secret-scanning key has this Github-Public-Key-Identifier."
            }
            Rejected::MalformedSignature => {
                "Github-Public-Key-Signature is not base64 of a DER ECDSA signature."
            }
            Rejected::BadSignature => {
                "The signature does not verify over the request body with the identified key."
            }
            Rejected::Unavailable(_) => "The key list GitHub signs with is unavailable.",
        }
    }
}

#[derive(Deserialize)]
struct KeyList {
    public_keys: Vec<ListedKey>,
}

#[derive(Deserialize)]
struct ListedKey {
    key_identifier: String,
    key: String,
}

/// Reads GitHub's key list; keys that are not P-256 public keys in PEM are left out (and
/// named in the log), the rest kept.
pub fn parse_key_list(body: &[u8]) -> Result<HashMap<String, VerifyingKey>, String> {
    let list: KeyList =
        serde_json::from_slice(body).map_err(|e| format!("not GitHub's key list: {e}"))?;
    let mut keys = HashMap::new();
    for listed in list.public_keys {
        match VerifyingKey::from_public_key_pem(&listed.key) {
            Ok(key) => {
                keys.insert(listed.key_identifier, key);
            }
            Err(_) => tracing::warn!(
                key_identifier = %listed.key_identifier,
                "secret-scanning key list: a key that is not a P-256 public key, left out"
            ),
        }
    }
    Ok(keys)
}

/// `Github-Public-Key-Signature`: base64 of a DER ECDSA signature.
pub fn parse_signature(signature_b64: &str) -> Result<Signature, Rejected> {
    let der = STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| Rejected::MalformedSignature)?;
    Signature::from_der(&der).map_err(|_| Rejected::MalformedSignature)
}

/// Whether `signature_b64` (base64 of DER) is `key`'s ECDSA P-256 SHA-256 signature of `body`.
pub fn verify_with(key: &VerifyingKey, signature_b64: &str, body: &[u8]) -> Result<(), Rejected> {
    let signature = parse_signature(signature_b64)?;
    key.verify(body, &signature)
        .map_err(|_| Rejected::BadSignature)
}

/// Whether `identifier` is shaped like GitHub's (hex digits: the SHA-256 of the key, today):
/// only such an identifier may cause the list to be fetched again.
fn looks_like_an_identifier(identifier: &str) -> bool {
    (16..=128).contains(&identifier.len()) && identifier.bytes().all(|b| b.is_ascii_hexdigit())
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, VerifyingKey>,
    /// The last fetch that succeeded, and the last one tried.
    fetched_at: Option<Instant>,
    tried_at: Option<Instant>,
    fetches: u64,
}

use crate::outbound::OutboundClient as HttpClient;

/// The key list and its cache; clones share both.
#[derive(Clone)]
pub struct ScanningKeys {
    url: Url,
    refetch_after: Duration,
    max_age: Duration,
    cache: Arc<tokio::sync::Mutex<Cache>>,
    http: Arc<std::sync::OnceLock<HttpClient>>,
}

impl std::fmt::Debug for ScanningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanningKeys")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl ScanningKeys {
    /// From `SECRET_SCANNING_KEYS_URL`, GitHub's list when unset.
    pub fn from_env() -> Result<Self, String> {
        let url = std::env::var(SECRET_SCANNING_KEYS_URL_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| GITHUB_KEYS_URL.to_owned());
        Self::at(&url)
    }

    /// The list at `url` (http or https).
    pub fn at(url: &str) -> Result<Self, String> {
        let url = Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
            .ok_or_else(|| {
                format!("{SECRET_SCANNING_KEYS_URL_ENV}={url:?} is not an http(s) URL")
            })?;
        Ok(Self {
            url,
            refetch_after: REFETCH_AFTER,
            max_age: MAX_AGE,
            cache: Arc::default(),
            http: Arc::default(),
        })
    }

    /// The same list, fetched again for an unknown identifier no sooner than `after`, and
    /// whatever the identifier once it is `max_age` old (tests of rotation use zero).
    pub fn refetching(mut self, after: Duration, max_age: Duration) -> Self {
        self.refetch_after = after;
        self.max_age = max_age;
        self
    }

    /// How many times the list has been fetched (tried) by this instance.
    pub async fn fetches(&self) -> u64 {
        self.cache.lock().await.fetches
    }

    /// Checks that `signature_b64` signs `body` with the listed key `identifier`.
    pub async fn verify(
        &self,
        identifier: &str,
        signature_b64: &str,
        body: &[u8],
    ) -> Result<(), Rejected> {
        // Nothing malformed reaches the cache, let alone GitHub.
        parse_signature(signature_b64)?;
        let mut cache = self.cache.lock().await;
        let stale = cache
            .fetched_at
            .is_none_or(|at| at.elapsed() >= self.max_age);
        let due = cache
            .tried_at
            .is_none_or(|at| at.elapsed() >= self.refetch_after);
        let unknown = !cache.keys.contains_key(identifier) && looks_like_an_identifier(identifier);
        if (stale || unknown) && due {
            cache.tried_at = Some(Instant::now());
            cache.fetches += 1;
            match self.fetch().await {
                Ok(keys) => {
                    cache.keys = keys;
                    cache.fetched_at = cache.tried_at;
                }
                // The list held stays in use; without one, nothing can be judged.
                Err(why) => {
                    tracing::warn!(error = %why, "secret-scanning key list unavailable");
                    if cache.keys.is_empty() {
                        return Err(Rejected::Unavailable(why));
                    }
                }
            }
        }
        match cache.fetched_at {
            // No list yet, and the last try failed within the minute.
            None => return Err(Rejected::Unavailable("no key list fetched yet".into())),
            Some(at) if at.elapsed() >= STALE_LIMIT.max(self.max_age) => {
                return Err(Rejected::Unavailable(
                    "the key list could not be fetched again for a day".into(),
                ))
            }
            Some(_) => {}
        }
        let key = cache
            .keys
            .get(identifier)
            .ok_or(Rejected::UnknownIdentifier)?;
        verify_with(key, signature_b64, body)
    }

    fn http(&self) -> &HttpClient {
        self.http
            .get_or_init(|| crate::outbound::client(FETCH_TIMEOUT))
    }

    async fn fetch(&self) -> Result<HashMap<String, VerifyingKey>, String> {
        let request = hyper::Request::get(self.url.as_str())
            .header("user-agent", USER_AGENT)
            .header("accept", "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("request: {e}"))?;
        let answer = async {
            let response = self
                .http()
                .request(request)
                .await
                .map_err(|e| format!("GET {}: {e}", self.url))?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!("GET {}: {status}", self.url));
            }
            let body = Limited::new(response.into_body(), MAX_LIST_BYTES)
                .collect()
                .await
                .map_err(|e| format!("GET {}: {e}", self.url))?
                .to_bytes();
            parse_key_list(&body)
        };
        tokio::time::timeout(FETCH_TIMEOUT, answer)
            .await
            .map_err(|_| format!("GET {}: no answer in {FETCH_TIMEOUT:?}", self.url))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    fn key_pair() -> (SigningKey, String) {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).unwrap();
        let signing = SigningKey::from_slice(&bytes).unwrap();
        let pem = signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        (signing, pem)
    }

    fn sign(key: &SigningKey, body: &[u8]) -> String {
        let signature: Signature = key.sign(body);
        STANDARD.encode(signature.to_der().as_bytes())
    }

    #[test]
    fn a_listed_key_verifies_its_own_signature_and_nothing_else() {
        let (signing, pem) = key_pair();
        let (other, _) = key_pair();
        let list = serde_json::json!({"public_keys": [
            {"key_identifier": "k1", "key": pem, "is_current": true},
            {"key_identifier": "bad", "key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "is_current": false},
        ]});
        let keys = parse_key_list(list.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 1, "the unreadable key is left out");
        let key = &keys["k1"];
        let body = br#"[{"token":"x","type":"t","url":"u","source":"content"}]"#;
        assert_eq!(verify_with(key, &sign(&signing, body), body), Ok(()));
        let mut tampered = body.to_vec();
        tampered[3] = b'y';
        assert_eq!(
            verify_with(key, &sign(&signing, body), &tampered),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            verify_with(key, &sign(&other, body), body),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            verify_with(key, "not base64!", body),
            Err(Rejected::MalformedSignature)
        );
        assert_eq!(
            verify_with(key, &STANDARD.encode(b"not der"), body),
            Err(Rejected::MalformedSignature)
        );
    }

    #[test]
    fn a_list_that_is_not_githubs_is_an_error() {
        assert!(parse_key_list(b"[]").is_err());
        assert!(parse_key_list(b"<html>").is_err());
        assert!(parse_key_list(br#"{"public_keys": []}"#)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn only_http_urls_are_taken() {
        assert!(ScanningKeys::at(GITHUB_KEYS_URL).is_ok());
        assert!(ScanningKeys::at("http://127.0.0.1:9/keys").is_ok());
        assert!(ScanningKeys::at("file:///etc/passwd").is_err());
        assert!(ScanningKeys::at("not a url").is_err());
    }
}
