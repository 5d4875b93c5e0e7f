//! Small local fakes of the providers' APIs (Chainalysis, TRM, Open Sanctions, World Check,
//! Castellum, OpenAI, Perplexity), for the tests and the local stack: the one place a fake
//! is right, since the real services are beyond reach here. One loopback server serves them
//! all, each under `/<key_type code>`, so that provider's base URL is
//! `http://127.0.0.1:<port>/<code>`. Each fake answers only the request `verify` makes to
//! it, and checks the key the way that provider takes it (a header of its own, a scheme,
//! Basic, World Check's HMAC signature over the request it received): 200 for a key it
//! accepts, 401 otherwise, 404 for any other request, 503 when taken down. It remembers
//! every credential presented, so a test can tell which secret was sent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use base64::Engine;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use shared::providers::client::ProviderEndpoints;
use shared::providers::kind::{Auth, KeyType};

use crate::loopback::LoopbackServer;

#[derive(Default)]
struct State {
    /// Keys each fake accepts (World Check: `<api key>:<api secret>` pairs).
    accepted: BTreeMap<KeyType, BTreeSet<String>>,
    /// The local stack's fakes accept any well-formed key.
    accept_any: bool,
    /// Fakes answering 503.
    down: BTreeSet<KeyType>,
    /// Every credential presented, in order (World Check: its key id).
    seen: Vec<(KeyType, String)>,
}

pub struct ProviderFakes {
    server: LoopbackServer,
    state: Arc<Mutex<State>>,
}

fn reply(status: u16, body: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap_or_default()
}

impl ProviderFakes {
    /// Fakes that accept only the keys [`ProviderFakes::accept`] names.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(false).await
    }

    /// Fakes that accept any well-formed key (the local stack's, so `verify` says `ok`).
    pub async fn start_accepting_any() -> std::io::Result<Self> {
        Self::start_with(true).await
    }

    async fn start_with(accept_any: bool) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State {
            accept_any,
            ..State::default()
        }));
        let shared = state.clone();
        let server = LoopbackServer::start(move |req| {
            let state = shared.clone();
            async move { answer(&state, req) }
        })
        .await?;
        Ok(Self { server, state })
    }

    pub fn base_url(&self, key_type: KeyType) -> String {
        format!("http://{}/{}", self.server.addr(), key_type.code())
    }

    /// Every provider's base URL, pointing at these fakes.
    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        KeyType::ALL
            .into_iter()
            .map(|t| (t.base_url_env(), self.base_url(t)))
            .collect()
    }

    pub fn endpoints(&self) -> ProviderEndpoints {
        let vars = self.env_vars();
        ProviderEndpoints::resolve(|name| {
            vars.iter()
                .find(|(var, _)| *var == name)
                .map(|(_, url)| url.clone())
        })
        .expect("loopback URLs")
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn accept(&self, key_type: KeyType, secret: &str) {
        self.with(|s| {
            s.accepted
                .entry(key_type)
                .or_default()
                .insert(secret.to_owned())
        });
    }

    pub fn take_down(&self, key_type: KeyType) {
        self.with(|s| s.down.insert(key_type));
    }

    /// The credentials presented to `key_type`'s fake, in order.
    pub fn seen(&self, key_type: KeyType) -> Vec<String> {
        self.with(|s| {
            s.seen
                .iter()
                .filter(|(t, _)| *t == key_type)
                .map(|(_, c)| c.clone())
                .collect()
        })
    }

    /// How many requests reached any fake with a credential.
    pub fn calls(&self) -> usize {
        self.with(|s| s.seen.len())
    }
}

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn answer(state: &Mutex<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let Some((code, rest)) = path.trim_start_matches('/').split_once('/') else {
        return reply(404, r#"{"error":"not found"}"#);
    };
    let Some(key_type) = KeyType::from_code(code) else {
        return reply(404, r#"{"error":"not found"}"#);
    };
    let probe = key_type.probe();
    let asked = match req.uri().query() {
        Some(query) => format!("/{rest}?{query}"),
        None => format!("/{rest}"),
    };
    if asked != probe.path || req.method().as_str() != probe.method {
        return reply(404, r#"{"error":"no such endpoint in this fake"}"#);
    }
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    if state.down.contains(&key_type) {
        return reply(503, r#"{"error":"service unavailable"}"#);
    }
    let accepted = state.accepted.get(&key_type).cloned().unwrap_or_default();
    let (credential, ok) = match check(key_type, &req, &accepted, state.accept_any) {
        Some(found) => found,
        None => return reply(401, r#"{"error":"missing credentials"}"#),
    };
    state.seen.push((key_type, credential));
    if ok {
        reply(200, r#"{"data":[]}"#)
    } else {
        reply(401, r#"{"error":"invalid API key"}"#)
    }
}

/// The credential presented (`None`: none at all) and whether the fake takes it.
fn check(
    key_type: KeyType,
    req: &Request<Incoming>,
    accepted: &BTreeSet<String>,
    accept_any: bool,
) -> Option<(String, bool)> {
    let plain = |key: &str| (key.to_owned(), accept_any || accepted.contains(key));
    match key_type.auth() {
        Auth::Bearer => header(req, "authorization")?
            .strip_prefix("Bearer ")
            .map(plain),
        Auth::Header(name) => header(req, name).map(plain),
        Auth::ApiKeyScheme => header(req, "authorization")?
            .strip_prefix("ApiKey ")
            .map(plain),
        Auth::BasicKeyKey => {
            let encoded = header(req, "authorization")?.strip_prefix("Basic ")?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (user, password) = text.split_once(':')?;
            let (credential, ok) = plain(user);
            Some((credential, ok && user == password))
        }
        Auth::WorldCheckHmac => world_check(req, accepted, accept_any),
    }
}

/// World-Check One's check: the signature over `(request-target) host date` as this
/// request arrived, under the API secret paired with the `keyId`.
fn world_check(
    req: &Request<Incoming>,
    accepted: &BTreeSet<String>,
    accept_any: bool,
) -> Option<(String, bool)> {
    let authorization = header(req, "authorization")?.strip_prefix("Signature ")?;
    let field = |name: &str| {
        authorization.split(',').find_map(|part| {
            part.trim()
                .strip_prefix(name)?
                .strip_prefix("=\"")?
                .strip_suffix('"')
        })
    };
    let key_id = field("keyId")?;
    let signature = field("signature")?;
    if field("algorithm")? != "hmac-sha256" || field("headers")? != "(request-target) host date" {
        return Some((key_id.to_owned(), false));
    }
    if accept_any {
        return Some((key_id.to_owned(), true));
    }
    let data = format!(
        "(request-target): {} {}\nhost: {}\ndate: {}",
        req.method().as_str().to_ascii_lowercase(),
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
        header(req, "host")?,
        header(req, "date")?
    );
    let ok = accepted.iter().any(|pair| {
        let Some((id, secret)) = pair.split_once(':') else {
            return false;
        };
        if id != key_id {
            return false;
        }
        let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        mac.update(data.as_bytes());
        let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature) else {
            return false;
        };
        mac.verify_slice(&given).is_ok()
    });
    Some((key_id.to_owned(), ok))
}
