//! Endpoint secrets and Standard Webhooks 1.0 signatures: `whsec_` + base64 of the key
//! bytes; `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`,
//! space-separated when two secrets sign (a rotation's overlap).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of a new secret (the contract allows 24-64).
const SECRET_BYTES: usize = 32;

/// An endpoint's signing secret. Its `Debug` never shows it; it leaves the store only in
/// the answers that create or reveal it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookSecret(String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(redacted)")
    }
}

impl WebhookSecret {
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))))
    }

    /// A secret in the `whsec_<base64 of 24-64 bytes>` form, or `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = STANDARD.decode(text.strip_prefix(SECRET_PREFIX)?).ok()?;
        (24..=64)
            .contains(&bytes.len())
            .then(|| Self(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn key(&self) -> Vec<u8> {
        self.0
            .strip_prefix(SECRET_PREFIX)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .unwrap_or_default()
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key()).expect("HMAC takes any key");
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[&WebhookSecret],
    message_id: &str,
    timestamp: i64,
    body: &str,
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(message_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_id_timestamp_and_body_as_the_specification_says() {
        // HMAC-SHA256, keyed with the bytes whose base64 follows `whsec_`, over
        // `{id}.{timestamp}.{body}`, written `v1,<base64>`: computed here independently.
        // (Interoperability with the reference libraries is checked end to end, in
        // infra/tests/members/delivery.rs, by the Python and Node `standardwebhooks`.)
        use base64::Engine;
        use hmac::{Hmac, Mac};
        let secret = WebhookSecret::generate().unwrap();
        let key = base64::engine::general_purpose::STANDARD
            .decode(&secret.expose()["whsec_".len()..])
            .unwrap();
        assert_eq!(key.len(), 32);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(br#"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}"#);
        let expected = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#
            ),
            expected
        );
        // Any change of id, time or body changes the signature.
        for (id, at, body) in [
            (
                "msg_p5jXN8AQM9LWM0D4loKWxJeK",
                1614265330,
                r#"{"test": 2432232314}"#,
            ),
            (
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265331,
                r#"{"test": 2432232314}"#,
            ),
            (
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232315}"#,
            ),
        ] {
            assert_ne!(secret.sign(id, at, body), expected);
        }
    }

    #[test]
    fn new_secrets_are_random_well_formed_and_never_debug_printed() {
        let a = WebhookSecret::generate().unwrap();
        let b = WebhookSecret::generate().unwrap();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(a.expose()), Some(a.clone()));
        assert!(!format!("{a:?}").contains(&a.expose()[6..]));
        for bad in ["whsec_", "whsec_!!!", "whsec_AAAA"] {
            assert!(WebhookSecret::parse(bad).is_none(), "{bad}");
        }
        // The base64 alone, without its prefix, is no secret.
        assert!(WebhookSecret::parse(&a.expose()["whsec_".len()..]).is_none());
    }

    #[test]
    fn two_secrets_sign_side_by_side() {
        let a = WebhookSecret::generate().unwrap();
        let b = WebhookSecret::generate().unwrap();
        let header = signature_header(&[&a, &b], "msg_1", 1_700_000_000, "{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            parts,
            [
                a.sign("msg_1", 1_700_000_000, "{}"),
                b.sign("msg_1", 1_700_000_000, "{}")
            ]
        );
        assert_ne!(parts[0], parts[1]);
    }
}
