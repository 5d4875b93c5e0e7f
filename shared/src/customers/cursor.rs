//! Listing cursors: opaque to clients, bound to the listing they came from. A cursor carries
//! a position and the listing's parameters, authenticated by an HMAC-SHA256 under a server
//! secret over the caller's org and the payload, so a cursor from another org or another
//! listing, an edited one or a forged one, is a 400 — never another org's data (the org
//! always comes from the key).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::ApiError;
use crate::org::OrgId;
use crate::time::{self, Timestamp};

/// 128 bits of HMAC-SHA256: forging one is a 2^-128 guess per try.
const TAG_BYTES: usize = 16;
const MAX_CURSOR_CHARS: usize = 512;

/// Which listing a cursor walks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// Newest created first.
    ByCreation,
    /// `updated_at >= since`, oldest change first.
    UpdatedSince(Timestamp),
}

/// The last item of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    Created { id: Uuid },
    Updated { updated_at: Timestamp, id: Uuid },
}

#[derive(Serialize, Deserialize)]
struct Payload {
    v: u8,
    /// "c" (by creation) or "u" (updated since).
    l: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    u: Option<String>,
}

/// The environment variable that holds the cursor secret (template.yaml's `CursorSecret`).
pub const CURSOR_SECRET_ENV: &str = "CURSOR_SECRET";
/// The shortest secret accepted: 32 characters (`openssl rand -hex 32` gives 64).
pub const MIN_SECRET_CHARS: usize = 32;

/// The server secret cursors are authenticated with. Its `Debug` never shows it.
#[derive(Clone)]
pub struct CursorKey(Vec<u8>);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(…)")
    }
}

impl CursorKey {
    pub fn new(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_CHARS {
            return Err(format!(
                "{CURSOR_SECRET_ENV} must be at least {MIN_SECRET_CHARS} characters"
            ));
        }
        Ok(Self(secret.to_vec()))
    }

    /// A random key, for a local stack or a test: cursors then live as long as the process.
    pub fn random() -> Result<Self, String> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| format!("OS randomness: {e}"))?;
        Ok(Self(secret.to_vec()))
    }

    /// From `CURSOR_SECRET`, if set.
    pub fn from_env() -> Result<Option<Self>, String> {
        match std::env::var(CURSOR_SECRET_ENV) {
            Ok(secret) if !secret.is_empty() => Self::new(secret.as_bytes()).map(Some),
            _ => Ok(None),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
        match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        }
    }

    /// A keyed digest of `data` for `purpose` (hex): what a value may be compared by where
    /// neither it nor an unkeyed hash of it may be stored (a provider secret in an
    /// Idempotency-Key's fingerprint). Each purpose gets its own digests.
    pub fn digest(&self, purpose: &str, data: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(b"ic-digest-v1\0");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(data);
        hex::encode(mac.finalize().into_bytes())
    }

    fn tag(&self, org: &OrgId, payload: &[u8]) -> [u8; TAG_BYTES] {
        let mut mac = self.mac();
        mac.update(b"ic-cursor-v2\0");
        mac.update(org.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(payload);
        let digest = mac.finalize().into_bytes();
        let mut out = [0u8; TAG_BYTES];
        out.copy_from_slice(&digest[..TAG_BYTES]);
        out
    }
}

fn bad_cursor(message: &str) -> ApiError {
    ApiError::invalid_param("cursor", message)
}

pub fn encode(key: &CursorKey, org: &OrgId, listing: &Listing, position: &Position) -> String {
    let (l, s) = match listing {
        Listing::ByCreation => ("c", None),
        Listing::UpdatedSince(since) => ("u", Some(time::format(since))),
    };
    let (id, u) = match position {
        Position::Created { id } => (*id, None),
        Position::Updated { updated_at, id } => (*id, Some(time::format(updated_at))),
    };
    let payload = serde_json::to_vec(&Payload {
        v: 1,
        l: l.to_owned(),
        s,
        id,
        u,
    })
    .unwrap_or_default();
    let mut sealed = payload.clone();
    sealed.extend_from_slice(&key.tag(org, &payload));
    URL_SAFE_NO_PAD.encode(sealed)
}

/// The position a cursor holds, if it was issued to this org for this very listing.
pub fn decode(
    key: &CursorKey,
    text: &str,
    org: &OrgId,
    listing: &Listing,
) -> Result<Position, ApiError> {
    const NOT_OURS: &str = "cursor is not a cursor of this listing; pass next_cursor back unchanged, with the same filters.";
    if text.is_empty() || text.len() > MAX_CURSOR_CHARS {
        return Err(bad_cursor(NOT_OURS));
    }
    let sealed = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| bad_cursor(NOT_OURS))?;
    if sealed.len() <= TAG_BYTES {
        return Err(bad_cursor(NOT_OURS));
    }
    let (payload, given) = sealed.split_at(sealed.len() - TAG_BYTES);
    if !bool::from(key.tag(org, payload).ct_eq(given)) {
        return Err(bad_cursor(NOT_OURS));
    }
    let payload: Payload = serde_json::from_slice(payload).map_err(|_| bad_cursor(NOT_OURS))?;
    let since = payload.s.as_deref().map(time::parse);
    match (
        listing,
        payload.l.as_str(),
        since,
        payload.u.as_deref().map(time::parse),
    ) {
        (Listing::ByCreation, "c", None, None) if payload.v == 1 => {
            Ok(Position::Created { id: payload.id })
        }
        (Listing::UpdatedSince(want), "u", Some(Some(since)), Some(Some(updated_at)))
            if payload.v == 1 && since == *want && updated_at >= since =>
        {
            Ok(Position::Updated {
                updated_at,
                id: payload.id,
            })
        }
        _ => Err(bad_cursor(NOT_OURS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CursorKey {
        CursorKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn org(name: &str) -> OrgId {
        OrgId::parse(name).unwrap()
    }

    #[test]
    fn cursors_round_trip_for_their_listing() {
        let id = Uuid::now_v7();
        let c = encode(
            &key(),
            &org("acme"),
            &Listing::ByCreation,
            &Position::Created { id },
        );
        assert_eq!(
            decode(&key(), &c, &org("acme"), &Listing::ByCreation),
            Ok(Position::Created { id })
        );
        let since = time::parse("2026-06-23T00:00:00Z").unwrap();
        let at = time::parse("2026-06-23T09:00:00Z").unwrap();
        let listing = Listing::UpdatedSince(since);
        let c = encode(
            &key(),
            &org("acme"),
            &listing,
            &Position::Updated { updated_at: at, id },
        );
        assert_eq!(
            decode(&key(), &c, &org("acme"), &listing),
            Ok(Position::Updated { updated_at: at, id })
        );
        assert!(
            c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "URL-safe: {c}"
        );
    }

    #[test]
    fn another_org_or_listing_is_refused() {
        let id = Uuid::now_v7();
        let since = time::parse("2026-06-23T00:00:00Z").unwrap();
        let c = encode(
            &key(),
            &org("acme"),
            &Listing::ByCreation,
            &Position::Created { id },
        );
        assert_eq!(
            decode(&key(), &c, &org("globex"), &Listing::ByCreation)
                .unwrap_err()
                .param(),
            Some("cursor")
        );
        assert!(decode(&key(), &c, &org("acme"), &Listing::UpdatedSince(since)).is_err());
        let u = encode(
            &key(),
            &org("acme"),
            &Listing::UpdatedSince(since),
            &Position::Updated {
                updated_at: since,
                id,
            },
        );
        let other_since = time::parse("2026-06-24T00:00:00Z").unwrap();
        assert!(decode(
            &key(),
            &u,
            &org("acme"),
            &Listing::UpdatedSince(other_since)
        )
        .is_err());
        assert!(decode(&key(), &u, &org("acme"), &Listing::ByCreation).is_err());
    }

    #[test]
    fn any_edit_is_refused() {
        let c = encode(
            &key(),
            &org("acme"),
            &Listing::ByCreation,
            &Position::Created { id: Uuid::now_v7() },
        );
        let bytes = URL_SAFE_NO_PAD.decode(&c).unwrap();
        for i in 0..bytes.len() {
            let mut edited = bytes.clone();
            edited[i] ^= 0x01;
            let edited = URL_SAFE_NO_PAD.encode(edited);
            assert!(
                decode(&key(), &edited, &org("acme"), &Listing::ByCreation).is_err(),
                "byte {i}"
            );
        }
        for junk in ["", "x", "!!!!", "eyJ2IjoxfQ", &"A".repeat(600)] {
            assert!(
                decode(&key(), junk, &org("acme"), &Listing::ByCreation).is_err(),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn only_the_server_secret_makes_a_cursor() {
        let id = Uuid::now_v7();
        let position = Position::Created { id };
        let other = CursorKey::new(b"another secret, also 32+ characters").unwrap();
        let forged = encode(&other, &org("acme"), &Listing::ByCreation, &position);
        assert_eq!(
            decode(&key(), &forged, &org("acme"), &Listing::ByCreation)
                .unwrap_err()
                .param(),
            Some("cursor")
        );
        // The old unkeyed tag (SHA-256 over the org and payload) no longer passes either.
        let payload = URL_SAFE_NO_PAD
            .decode(encode(
                &key(),
                &org("acme"),
                &Listing::ByCreation,
                &position,
            ))
            .unwrap();
        let payload = &payload[..payload.len() - TAG_BYTES];
        use sha2::Digest;
        let mut hasher = Sha256::new();
        hasher.update(b"ic-cursor-v1\0acme\0");
        hasher.update(payload);
        let mut sealed = payload.to_vec();
        sealed.extend_from_slice(&hasher.finalize()[..TAG_BYTES]);
        let unkeyed = URL_SAFE_NO_PAD.encode(sealed);
        assert!(decode(&key(), &unkeyed, &org("acme"), &Listing::ByCreation).is_err());
        assert!(CursorKey::new(b"short").is_err());
        assert!(!format!("{:?}", key()).contains("0123"));
    }
}
