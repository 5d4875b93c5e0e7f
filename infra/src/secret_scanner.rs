//! GitHub secret scanning, as the local stack and the tests play it: a P-256 key pair of our
//! own, its public key listed in GitHub's format (`{"public_keys":[{key_identifier, key,
//! is_current}]}`) on a loopback server, and reports signed as GitHub signs them (ECDSA
//! P-256 SHA-256 over the raw body, base64 DER in `Github-Public-Key-Signature`). GitHub's
//! own keys and servers are beyond reach here; the endpoint under test is the real one.

use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::Response;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::loopback::LoopbackServer;

/// Where `make run` leaves the path of its signing key (in `.local/env`).
pub const SIGNING_KEY_ENV: &str = "SECRET_SCANNING_SIGNING_KEY";
/// The token type name we register with GitHub (what its reports carry in `type`).
pub const TOKEN_TYPE: &str = "instant_compliance_api_key";

/// A signing key and the identifier GitHub would list it under (hex SHA-256 of its public
/// key, DER), as GitHub's own identifiers are.
#[derive(Clone)]
pub struct ScannerKey {
    signing: SigningKey,
    identifier: String,
}

impl ScannerKey {
    pub fn generate() -> Result<Self, String> {
        let mut bytes = [0u8; 32];
        loop {
            getrandom::fill(&mut bytes).map_err(|e| format!("OS randomness: {e}"))?;
            // A scalar of zero or beyond the group order is refused; draw again.
            if let Ok(signing) = SigningKey::from_slice(&bytes) {
                return Self::from_signing(signing);
            }
        }
    }

    fn from_signing(signing: SigningKey) -> Result<Self, String> {
        let der = signing
            .verifying_key()
            .to_public_key_der()
            .map_err(|e| format!("public key: {e}"))?;
        let identifier = hex::encode(Sha256::digest(der.as_bytes()));
        Ok(Self {
            signing,
            identifier,
        })
    }

    /// The key kept at `path` (PKCS#8 PEM), made and written there (owner-only) if absent.
    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        if let Ok(pem) = std::fs::read_to_string(path) {
            return Self::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()));
        }
        let key = Self::generate()?;
        let pem = key
            .signing
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| format!("private key: {e}"))?;
        if write_private(path, pem.as_bytes())? {
            Ok(key)
        } else {
            // Another stack made one meanwhile: use it.
            let pem =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Self::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
        }
    }

    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let signing =
            SigningKey::from_pkcs8_pem(pem).map_err(|e| format!("not a P-256 private key: {e}"))?;
        Self::from_signing(signing)
    }

    pub fn identifier(&self) -> &str {
        &self.identifier
    }

    pub fn public_pem(&self) -> String {
        self.signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// Base64 of the DER signature of `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        let signature: Signature = self.signing.sign(body);
        STANDARD.encode(signature.to_der().as_bytes())
    }

    /// The headers GitHub sends with `body`.
    pub fn headers(&self, body: &[u8]) -> Vec<(String, String)> {
        vec![
            ("content-type".into(), "application/json".into()),
            (
                "github-public-key-identifier".into(),
                self.identifier.clone(),
            ),
            ("github-public-key-signature".into(), self.sign(body)),
            (
                "user-agent".into(),
                "GitHub-Secret-Scanning-Local/1.0".into(),
            ),
        ]
    }
}

/// Writes `bytes` to `path` (owner-only) unless a file is there already: written whole to a
/// file of its own first, then linked into place, so two stacks starting at once never
/// read half a key; `Ok(false)` when another got there first.
fn write_private(path: &Path, bytes: &[u8]) -> Result<bool, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let draft = path.with_extension(format!("{}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&draft)
        .and_then(|mut file| file.write_all(bytes));
    let linked = written.and_then(|()| std::fs::hard_link(&draft, path));
    let _ = std::fs::remove_file(&draft);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// A report of `tokens` (each `(token, url)`) in GitHub's format.
pub fn report(tokens: &[(&str, Option<&str>)]) -> Vec<u8> {
    let entries: Vec<Value> = tokens
        .iter()
        .map(|(token, url)| json!({"token": token, "type": TOKEN_TYPE, "url": url, "source": "content"}))
        .collect();
    serde_json::to_vec(&entries).unwrap_or_default()
}

#[derive(Default)]
struct Listing {
    /// Listed keys, the current one last.
    keys: Vec<ScannerKey>,
    down: bool,
    fetches: u64,
}

/// GitHub's key list on a loopback server: `url()` is what `SECRET_SCANNING_KEYS_URL` names.
pub struct KeyListServer {
    server: LoopbackServer,
    listing: Arc<Mutex<Listing>>,
}

impl KeyListServer {
    pub async fn start(keys: Vec<ScannerKey>) -> std::io::Result<Self> {
        let listing = Arc::new(Mutex::new(Listing {
            keys,
            ..Listing::default()
        }));
        let state = listing.clone();
        let server = LoopbackServer::start(move |_req| {
            let state = state.clone();
            async move {
                let (status, body) = match state.lock() {
                    Ok(mut listing) => {
                        listing.fetches += 1;
                        if listing.down {
                            (503, String::from("{}"))
                        } else {
                            let last = listing.keys.len().saturating_sub(1);
                            let keys: Vec<Value> = listing
                                .keys
                                .iter()
                                .enumerate()
                                .map(|(i, key)| {
                                    json!({
                                        "key_identifier": key.identifier(),
                                        "key": key.public_pem(),
                                        "is_current": i == last,
                                    })
                                })
                                .collect();
                            (200, json!({"public_keys": keys}).to_string())
                        }
                    }
                    Err(_) => (500, String::new()),
                };
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap_or_default()
            }
        })
        .await?;
        Ok(Self { server, listing })
    }

    pub fn url(&self) -> String {
        format!(
            "http://{}/meta/public_keys/secret_scanning",
            self.server.addr()
        )
    }

    /// Lists `key` too, as the current one (GitHub's rotation: the old stays listed).
    pub fn rotate_to(&self, key: ScannerKey) {
        if let Ok(mut listing) = self.listing.lock() {
            listing.keys.push(key);
        }
    }

    /// Lists only `keys` from now on.
    pub fn replace(&self, keys: Vec<ScannerKey>) {
        if let Ok(mut listing) = self.listing.lock() {
            listing.keys = keys;
        }
    }

    /// Answers 503 while `down`.
    pub fn set_down(&self, down: bool) {
        if let Ok(mut listing) = self.listing.lock() {
            listing.down = down;
        }
    }

    /// How many times the list was fetched.
    pub fn fetches(&self) -> u64 {
        self.listing.lock().map(|l| l.fetches).unwrap_or_default()
    }
}
