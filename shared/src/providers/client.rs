//! The one client every outbound provider call goes through. For each call it reads the
//! key with its sealed secret, refuses a disabled key, opens the secret (KMS) for this call
//! only, sends it the way the provider takes it, and counts the call on the key:
//! `usage_count`, `last_used_at` and the day's `{calls, errors}` in one atomic write. The
//! secret is never kept beyond the request that carries it (its header value is marked
//! sensitive, and the clear text is wiped on drop), and nothing about it is logged.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use lambda_http::http::{HeaderValue, Method};
use url::Url;

use crate::org::OrgId;
use crate::providers::kind::{Auth, KeyType};
use crate::providers::secret::ProviderSecret;
use crate::providers::table::{ProviderKey, ProviderKeysTable};
use crate::providers::vault::{Vault, VaultError};
use crate::storage::StorageError;
use crate::time::{self, Timestamp};

/// One call, connect to last byte read.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a provider's answer a call reads.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
const USER_AGENT: &str = "InstantCompliance-Providers/1.0";

/// Where each provider's API is: production by default, `PROVIDER_URL_<NAME>` to point one
/// elsewhere (the tests' and the local stack's fakes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEndpoints(BTreeMap<KeyType, Url>);

impl ProviderEndpoints {
    pub fn from_env() -> Result<Self, String> {
        Self::resolve(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    pub fn resolve(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut urls = BTreeMap::new();
        for key_type in KeyType::ALL {
            let text = lookup(key_type.base_url_env())
                .unwrap_or_else(|| key_type.default_base_url().to_owned());
            let url = Url::parse(&text)
                .ok()
                .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
                .ok_or_else(|| {
                    format!("{}={text:?} is not an http(s) URL", key_type.base_url_env())
                })?;
            urls.insert(key_type, url);
        }
        Ok(Self(urls))
    }

    /// Every provider at `base` (a fake serving them all).
    pub fn all_at(base: &str) -> Result<Self, String> {
        Self::resolve(|_| Some(base.to_owned()))
    }

    pub fn base(&self, key_type: KeyType) -> &Url {
        &self.0[&key_type]
    }
}

/// A request to a provider, its path relative to the provider's base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRequest {
    pub method: Method,
    pub path_and_query: String,
    /// A JSON body.
    pub body: Option<String>,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider answered (any status).
    Answered { status: u16, body: Bytes },
    /// No answer: refused, reset, or not within the time limit.
    Unreachable(String),
}

impl Outcome {
    /// Whether the call counts as an error in the day's summary: anything but a 2xx.
    pub fn failed(&self) -> bool {
        !matches!(self, Outcome::Answered { status, .. } if (200..300).contains(status))
    }
}

/// Why no call was made (a call that was made always ends as an `Outcome`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("no such provider key")]
    NotFound,
    #[error("the org has no enabled key of this type")]
    NoEnabledKey,
    #[error("the provider key is disabled")]
    Disabled,
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

use crate::outbound::OutboundClient as HttpClient;

#[derive(Clone)]
pub struct ProviderClient {
    keys: ProviderKeysTable,
    vault: Vault,
    endpoints: ProviderEndpoints,
    /// Built on the first call (create and rotate never make one).
    http: std::sync::OnceLock<HttpClient>,
    pub timeout: Duration,
}

impl std::fmt::Debug for ProviderClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderClient")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl ProviderClient {
    pub fn new(keys: ProviderKeysTable, vault: Vault, endpoints: ProviderEndpoints) -> Self {
        Self {
            keys,
            vault,
            endpoints,
            http: std::sync::OnceLock::new(),
            timeout: CALL_TIMEOUT,
        }
    }

    /// The same client, its AWS calls signed as `access_key_id` (`App::signing_as`).
    pub fn signing_as(&self, access_key_id: &str) -> Self {
        Self {
            timeout: self.timeout,
            ..Self::new(
                self.keys.signing_as(access_key_id),
                self.vault.signing_as(access_key_id),
                self.endpoints.clone(),
            )
        }
    }

    fn http(&self) -> &HttpClient {
        self.http
            .get_or_init(|| crate::outbound::client(Duration::from_secs(5)))
    }

    /// `request` with the org's enabled key of `key_type` (the newest, when it has several).
    pub async fn call(
        &self,
        org: &OrgId,
        key_type: KeyType,
        request: &ProviderRequest,
    ) -> Result<(ProviderKey, Outcome), CallError> {
        let chosen = self
            .keys
            .list(org)
            .await?
            .into_iter()
            .filter(|key| key.enabled && key.key_type == key_type)
            .max_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
            .ok_or(CallError::NoEnabledKey)?;
        self.call_with_key(org, &chosen.id, request).await
    }

    /// `request` with the org's key `id`, which must be enabled.
    pub async fn call_with_key(
        &self,
        org: &OrgId,
        id: &str,
        request: &ProviderRequest,
    ) -> Result<(ProviderKey, Outcome), CallError> {
        let (key, sealed) = self
            .keys
            .get_sealed(org, id)
            .await?
            .ok_or(CallError::NotFound)?;
        if !key.enabled {
            return Err(CallError::Disabled);
        }
        let outcome = {
            let secret = self.vault.open(org, &key.id, &sealed).await?;
            let prepared = self.prepare(key.key_type, &secret, request, time::now());
            drop(secret);
            match prepared {
                Ok(prepared) => self.send(prepared).await,
                Err(why) => Outcome::Unreachable(why),
            }
        };
        let at = time::now();
        let failed = outcome.failed();
        tracing::info!(
            provider_key = %key.id,
            key_type = key.key_type.code(),
            status = match &outcome { Outcome::Answered { status, .. } => Some(*status), _ => None },
            failed,
            "provider call"
        );
        let counted = self.keys.record_call(org, &key.id, at, failed).await;
        let key = match counted {
            Ok(Some(counted)) => counted,
            Ok(None) => key,
            Err(err) => {
                // The call was made: answer it (a retry would call again), but say so.
                tracing::error!(provider_key = %key.id, error = %err, "provider call not counted");
                key
            }
        };
        Ok((key, outcome))
    }

    /// The provider's cheapest authenticated request, with key `id`.
    pub async fn verify(&self, org: &OrgId, id: &str) -> Result<(ProviderKey, Outcome), CallError> {
        let key_type = self
            .keys
            .get(org, id)
            .await?
            .ok_or(CallError::NotFound)?
            .key_type;
        let probe = key_type.probe();
        let request = ProviderRequest {
            method: Method::from_bytes(probe.method.as_bytes()).unwrap_or(Method::GET),
            path_and_query: probe.path.to_owned(),
            body: probe.body.map(str::to_owned),
        };
        self.call_with_key(org, id, &request).await
    }

    /// The HTTP request for `request` to `key_type`'s API, carrying `secret` as the
    /// provider takes it.
    fn prepare(
        &self,
        key_type: KeyType,
        secret: &ProviderSecret,
        request: &ProviderRequest,
        now: Timestamp,
    ) -> Result<hyper::Request<Full<Bytes>>, String> {
        let base = self.endpoints.base(key_type);
        let url = format!(
            "{}{}",
            base.as_str().trim_end_matches('/'),
            request.path_and_query
        );
        let target = Url::parse(&url).map_err(|_| "the request URL is not valid".to_owned())?;
        let mut builder = hyper::Request::builder()
            .method(request.method.clone())
            .uri(target.as_str())
            .header("user-agent", USER_AGENT)
            .header("accept", "application/json");
        let body = request.body.clone().unwrap_or_default();
        if request.body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let (name, value) = credential(key_type.auth(), secret, &target, request, &body, now)?;
        if let Some((date_name, date)) = world_check_date(key_type.auth(), now) {
            builder = builder.header(date_name, date);
        }
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| "the key is not a valid header".to_owned())?;
        value.set_sensitive(true);
        builder
            .header(name, value)
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| "the request could not be built".to_owned())
    }

    async fn send(&self, request: hyper::Request<Full<Bytes>>) -> Outcome {
        let started = Instant::now();
        let exchange = async {
            let response = self.http().request(request).await?;
            let status = response.status().as_u16();
            let mut body = response.into_body();
            let mut answer = Vec::new();
            while answer.len() < MAX_ANSWER_BYTES {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            answer.extend_from_slice(data);
                        }
                    }
                    _ => break,
                }
            }
            answer.truncate(MAX_ANSWER_BYTES);
            Ok::<_, hyper_util::client::legacy::Error>((status, answer))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => {
                Outcome::Unreachable(format!("no answer within {} s", self.timeout.as_secs_f32()))
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, elapsed_ms = started.elapsed().as_millis() as u64, "provider unreachable");
                Outcome::Unreachable("the provider could not be reached".to_owned())
            }
            Ok(Ok((status, answer))) => Outcome::Answered {
                status,
                body: Bytes::from(answer),
            },
        }
    }
}

/// World Check signs the `date` header too; the others need none.
fn world_check_date(auth: Auth, now: Timestamp) -> Option<(&'static str, String)> {
    (auth == Auth::WorldCheckHmac).then(|| ("date", http_date(now)))
}

fn http_date(now: Timestamp) -> String {
    now.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// The header that carries the key, as the provider takes it.
fn credential(
    auth: Auth,
    secret: &ProviderSecret,
    target: &Url,
    request: &ProviderRequest,
    body: &str,
    now: Timestamp,
) -> Result<(&'static str, String), String> {
    let key = secret.expose();
    Ok(match auth {
        Auth::Bearer => ("authorization", format!("Bearer {key}")),
        Auth::Header(name) => (name, key.to_owned()),
        Auth::ApiKeyScheme => ("authorization", format!("ApiKey {key}")),
        Auth::BasicKeyKey => (
            "authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{key}:{key}"))
            ),
        ),
        Auth::WorldCheckHmac => {
            let (api_key, api_secret) = key
                .split_once(':')
                .ok_or_else(|| "the World Check secret is not a pair".to_owned())?;
            let signed = world_check_signature(api_secret, target, request, body, now)?;
            (
                "authorization",
                format!(
                    "Signature keyId=\"{api_key}\",algorithm=\"hmac-sha256\",headers=\"{}\",signature=\"{signed}\"",
                    signed_headers(request)
                ),
            )
        }
    })
}

fn signed_headers(request: &ProviderRequest) -> &'static str {
    if request.body.is_some() {
        "(request-target) host date content-type content-length"
    } else {
        "(request-target) host date"
    }
}

/// World-Check One's request signature: HMAC-SHA256 under the API secret of the signed
/// headers (and, with a body, the body), base64.
pub fn world_check_signature(
    api_secret: &str,
    target: &Url,
    request: &ProviderRequest,
    body: &str,
    now: Timestamp,
) -> Result<String, String> {
    let host = match (target.host_str(), target.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => return Err("the provider URL has no host".to_owned()),
    };
    let path = match target.query() {
        Some(query) => format!("{}?{query}", target.path()),
        None => target.path().to_owned(),
    };
    let mut data = format!(
        "(request-target): {} {path}\nhost: {host}\ndate: {}",
        request.method.as_str().to_ascii_lowercase(),
        http_date(now)
    );
    if request.body.is_some() {
        data.push_str(&format!(
            "\ncontent-type: application/json\ncontent-length: {}\n\n{body}",
            body.len()
        ));
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(api_secret.as_bytes())
        .map_err(|_| "the World Check secret is not usable".to_owned())?;
    mac.update(data.as_bytes());
    Ok(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_default_to_production_and_are_overridden_one_by_one() {
        let endpoints = ProviderEndpoints::resolve(|name| {
            (name == "PROVIDER_URL_OPENAI").then(|| "http://127.0.0.1:9999".to_owned())
        })
        .unwrap();
        assert_eq!(
            endpoints.base(KeyType::OpenAi).as_str(),
            "http://127.0.0.1:9999/"
        );
        assert_eq!(
            endpoints.base(KeyType::OpenSanctions).as_str(),
            "https://api.opensanctions.org/"
        );
        let err = ProviderEndpoints::resolve(|name| {
            (name == "PROVIDER_URL_TRM").then(|| "ftp://example.com".to_owned())
        })
        .unwrap_err();
        assert!(err.contains("PROVIDER_URL_TRM"), "{err}");
    }

    #[test]
    fn only_2xx_answers_are_not_errors() {
        let answered = |status| Outcome::Answered {
            status,
            body: Bytes::new(),
        };
        assert!(!answered(200).failed());
        assert!(!answered(204).failed());
        for status in [301, 400, 401, 403, 429, 500, 503] {
            assert!(answered(status).failed(), "{status}");
        }
        assert!(Outcome::Unreachable("x".into()).failed());
    }

    #[test]
    fn each_provider_gets_the_key_its_own_way() {
        let secret = ProviderSecret::parse("k3y-value").unwrap();
        let target = Url::parse("https://api.example.com/v1/models").unwrap();
        let get = ProviderRequest {
            method: Method::GET,
            path_and_query: "/v1/models".into(),
            body: None,
        };
        let now = time::now();
        let header = |auth| credential(auth, &secret, &target, &get, "", now).unwrap();
        assert_eq!(
            header(Auth::Bearer),
            ("authorization", "Bearer k3y-value".to_owned())
        );
        assert_eq!(
            header(Auth::Header("Token")),
            ("Token", "k3y-value".to_owned())
        );
        assert_eq!(
            header(Auth::ApiKeyScheme),
            ("authorization", "ApiKey k3y-value".to_owned())
        );
        let (_, basic) = header(Auth::BasicKeyKey);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"k3y-value:k3y-value");
        assert!(credential(Auth::WorldCheckHmac, &secret, &target, &get, "", now).is_err());
        let pair = ProviderSecret::parse("wc-key:wc-secret").unwrap();
        let (_, signed) = credential(Auth::WorldCheckHmac, &pair, &target, &get, "", now).unwrap();
        let expected = world_check_signature("wc-secret", &target, &get, "", now).unwrap();
        assert_eq!(
            signed,
            format!("Signature keyId=\"wc-key\",algorithm=\"hmac-sha256\",headers=\"(request-target) host date\",signature=\"{expected}\"")
        );
        assert!(!signed.contains("wc-secret"));
    }
}
