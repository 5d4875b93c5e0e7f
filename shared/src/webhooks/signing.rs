//! Endpoint secrets and Standard Webhooks 1.0 signatures: `whsec_` + base64 of the key
//! bytes; `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`,
//! space-separated when two secrets sign (a rotation's overlap). At rest a secret is
//! sealed under KMS (`StoredSecret`), bound to its org and endpoint; its plaintext exists
//! only in memory while a delivery is signed, and in the one answer that reveals it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroize;

use crate::org::OrgId;
use crate::providers::vault::{Sealed, SealedFor, Vault, VaultError};

pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of a new secret (the contract allows 24-64).
const SECRET_BYTES: usize = 32;

/// An endpoint's signing secret. Its `Debug` never shows it; it leaves the store only in
/// the answers that create or reveal it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookSecret(String);

impl Drop for WebhookSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

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

/// A signing secret as an endpoint's row holds it: sealed under the stack's KMS key
/// (envelope encryption, the encryption context `{org_id, webhook_endpoint_id}`), or, for
/// an endpoint made before secrets were sealed, the secret itself (it is sealed when the
/// secret is next rotated).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StoredSecret {
    Sealed(SealedSecret),
    Clear(WebhookSecret),
}

impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredSecret::Sealed(_) => f.write_str("StoredSecret::Sealed(…)"),
            StoredSecret::Clear(_) => f.write_str("StoredSecret::Clear(redacted)"),
        }
    }
}

/// The sealed form, its binary parts in base64.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    pub scheme: u32,
    pub kms_key_id: String,
    pub encrypted_data_key: String,
    pub nonce: String,
    pub ciphertext: String,
}

fn refused(what: &str) -> VaultError {
    VaultError::Refused(format!("stored webhook secret: {what}"))
}

impl StoredSecret {
    /// `secret` sealed for endpoint `endpoint_id` of `org`.
    pub async fn seal(
        vault: &Vault,
        org: &OrgId,
        endpoint_id: &str,
        secret: &WebhookSecret,
    ) -> Result<Self, VaultError> {
        let sealed = vault
            .seal_bytes(
                org,
                SealedFor::WebhookEndpoint(endpoint_id),
                secret.expose().as_bytes(),
            )
            .await?;
        Ok(StoredSecret::Sealed(SealedSecret {
            scheme: sealed.scheme,
            kms_key_id: sealed.kms_key_id,
            encrypted_data_key: STANDARD.encode(sealed.encrypted_data_key),
            nonce: STANDARD.encode(sealed.nonce),
            ciphertext: STANDARD.encode(sealed.ciphertext),
        }))
    }

    /// The secret, for signing or for the one answer that reveals it: opened by KMS only
    /// for the org and endpoint it was sealed for.
    pub async fn open(
        &self,
        vault: Option<&Vault>,
        org: &OrgId,
        endpoint_id: &str,
    ) -> Result<WebhookSecret, VaultError> {
        let sealed = match self {
            StoredSecret::Clear(secret) => return Ok(secret.clone()),
            StoredSecret::Sealed(sealed) => sealed,
        };
        let vault =
            vault.ok_or_else(|| VaultError::Other("no vault to open a webhook secret".into()))?;
        let decode = |text: &str, what: &str| STANDARD.decode(text).map_err(|_| refused(what));
        let sealed = Sealed {
            scheme: sealed.scheme,
            kms_key_id: sealed.kms_key_id.clone(),
            encrypted_data_key: decode(&sealed.encrypted_data_key, "data key")?,
            nonce: decode(&sealed.nonce, "nonce")?,
            ciphertext: decode(&sealed.ciphertext, "ciphertext")?,
        };
        let clear = vault
            .open_bytes(org, SealedFor::WebhookEndpoint(endpoint_id), &sealed)
            .await?;
        let text = std::str::from_utf8(&clear).map_err(|_| refused("not UTF-8"))?;
        WebhookSecret::parse(text).ok_or_else(|| refused("not a whsec_ secret"))
    }
}

/// The `webhook-signature` header: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[WebhookSecret],
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
        let header = signature_header(&[a.clone(), b.clone()], "msg_1", 1_700_000_000, "{}");
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
