//! Listing cursors: opaque to clients, bound to the listing they came from. A cursor carries
//! a position and the listing's parameters, sealed with a tag over the caller's org, so a
//! cursor from another org or another listing, or an edited one, is a 400 — never another
//! org's data (the org always comes from the key).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::ApiError;
use crate::org::OrgId;
use crate::time::{self, Timestamp};

const TAG_BYTES: usize = 12;
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

fn tag(org: &OrgId, payload: &[u8]) -> [u8; TAG_BYTES] {
    let mut hasher = Sha256::new();
    hasher.update(b"ic-cursor-v1\0");
    hasher.update(org.as_str().as_bytes());
    hasher.update(b"\0");
    hasher.update(payload);
    let digest = hasher.finalize();
    let mut out = [0u8; TAG_BYTES];
    out.copy_from_slice(&digest[..TAG_BYTES]);
    out
}

fn bad_cursor(message: &str) -> ApiError {
    ApiError::invalid_param("cursor", message)
}

pub fn encode(org: &OrgId, listing: &Listing, position: &Position) -> String {
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
    sealed.extend_from_slice(&tag(org, &payload));
    URL_SAFE_NO_PAD.encode(sealed)
}

/// The position a cursor holds, if it was issued to this org for this very listing.
pub fn decode(text: &str, org: &OrgId, listing: &Listing) -> Result<Position, ApiError> {
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
    if !bool::from(tag(org, payload).ct_eq(given)) {
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

    fn org(name: &str) -> OrgId {
        OrgId::parse(name).unwrap()
    }

    #[test]
    fn cursors_round_trip_for_their_listing() {
        let id = Uuid::now_v7();
        let c = encode(
            &org("acme"),
            &Listing::ByCreation,
            &Position::Created { id },
        );
        assert_eq!(
            decode(&c, &org("acme"), &Listing::ByCreation),
            Ok(Position::Created { id })
        );
        let since = time::parse("2026-06-23T00:00:00Z").unwrap();
        let at = time::parse("2026-06-23T09:00:00Z").unwrap();
        let listing = Listing::UpdatedSince(since);
        let c = encode(
            &org("acme"),
            &listing,
            &Position::Updated { updated_at: at, id },
        );
        assert_eq!(
            decode(&c, &org("acme"), &listing),
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
            &org("acme"),
            &Listing::ByCreation,
            &Position::Created { id },
        );
        assert_eq!(
            decode(&c, &org("globex"), &Listing::ByCreation)
                .unwrap_err()
                .param(),
            Some("cursor")
        );
        assert!(decode(&c, &org("acme"), &Listing::UpdatedSince(since)).is_err());
        let u = encode(
            &org("acme"),
            &Listing::UpdatedSince(since),
            &Position::Updated {
                updated_at: since,
                id,
            },
        );
        let other_since = time::parse("2026-06-24T00:00:00Z").unwrap();
        assert!(decode(&u, &org("acme"), &Listing::UpdatedSince(other_since)).is_err());
        assert!(decode(&u, &org("acme"), &Listing::ByCreation).is_err());
    }

    #[test]
    fn any_edit_is_refused() {
        let c = encode(
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
                decode(&edited, &org("acme"), &Listing::ByCreation).is_err(),
                "byte {i}"
            );
        }
        for junk in ["", "x", "!!!!", "eyJ2IjoxfQ", &"A".repeat(600)] {
            assert!(
                decode(junk, &org("acme"), &Listing::ByCreation).is_err(),
                "{junk:?}"
            );
        }
    }
}
