//! Envelope encryption of the stack's secrets under the KMS key of template.yaml: provider
//! secrets, and webhook endpoints' signing secrets.
//!
//! Each secret gets its own data key from `GenerateDataKey` (AES-256). The secret is
//! sealed with AES-256-GCM under it, and only the KMS-encrypted form of the data key is
//! kept beside the ciphertext. Both layers are bound to the org and the secret's owner: the
//! KMS encryption context `{org_id, provider_key_id}` or `{org_id, webhook_endpoint_id}`
//! (KMS refuses to decrypt the data key under any other context, the key's policy lets
//! each function use only its own kind, and CloudTrail logs the context with every use),
//! and the same pair as the GCM associated data. A ciphertext copied onto another org's
//! row, onto another row of the same org, or onto a row of the other kind, opens nowhere.
//!
//! The plaintext data key lives only inside `seal` and `open` and is wiped on drop; the
//! opened secret is a `ProviderSecret`, wiped on drop too.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use zeroize::Zeroizing;

use crate::org::OrgId;
use crate::providers::secret::ProviderSecret;
use crate::sdk::{self, LambdaSettings};

/// The KMS key (id, ARN or alias) provider secrets are sealed under.
pub const PROVIDER_KEYS_KMS_KEY_ENV: &str = "PROVIDER_KEYS_KMS_KEY";
/// The layout of a sealed secret; a later scheme gets the next number.
pub const SCHEME: u32 = 1;
const NONCE_BYTES: usize = 12;

/// A secret as it is stored: nothing here opens without KMS and the right context.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub scheme: u32,
    /// The KMS key that encrypted the data key (its ARN, as KMS reports it).
    pub kms_key_id: String,
    /// The data key, encrypted by KMS under the encryption context.
    pub encrypted_data_key: Vec<u8>,
    pub nonce: Vec<u8>,
    /// The secret, sealed with AES-256-GCM under the data key (the tag at its end).
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("scheme", &self.scheme)
            .field("kms_key_id", &self.kms_key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// KMS throttled, timed out or was unreachable after the SDK's retries (503).
    #[error("KMS unavailable: {0}")]
    Unavailable(String),
    /// KMS or AES-GCM refused the ciphertext: it was altered, or moved to a row it was not
    /// sealed for (500, logged: never the client's doing).
    #[error("sealed secret refused: {0}")]
    Refused(String),
    /// Anything else: a deployment fault such as a missing key or permission (500).
    #[error("vault error: {0}")]
    Other(String),
}

/// KMS error codes after which the same call may well succeed a little later.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "LimitExceededException",
    "KMSInternalException",
    "DependencyTimeoutException",
    "KeyUnavailableException",
];

/// Codes that mean the ciphertext (or its context) is not what was sealed.
const REFUSED_CODES: &[&str] = &["InvalidCiphertextException", "IncorrectKeyException"];

fn classify<E: ProvideErrorMetadata, R>(operation: &str, err: &SdkError<E, R>) -> VaultError {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            VaultError::Unavailable(format!("{operation}: no usable response"))
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("unknown");
            if RETRYABLE_CODES.contains(&code) {
                VaultError::Unavailable(format!("{operation}: {code}"))
            } else if REFUSED_CODES.contains(&code) {
                VaultError::Refused(format!("{operation}: {code}"))
            } else {
                VaultError::Other(format!("{operation}: {code}"))
            }
        }
        _ => VaultError::Other(format!("{operation}: request could not be built")),
    }
}

/// What a sealed secret belongs to, besides its org: the row it is sealed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedFor<'a> {
    ProviderKey(&'a str),
    WebhookEndpoint(&'a str),
}

impl SealedFor<'_> {
    /// The encryption-context key naming the row (the key policy allows each function
    /// only its own).
    fn context_key(&self) -> &'static str {
        match self {
            SealedFor::ProviderKey(_) => "provider_key_id",
            SealedFor::WebhookEndpoint(_) => "webhook_endpoint_id",
        }
    }

    fn id(&self) -> &str {
        match self {
            SealedFor::ProviderKey(id) | SealedFor::WebhookEndpoint(id) => id,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            SealedFor::ProviderKey(_) => "provider-key",
            SealedFor::WebhookEndpoint(_) => "webhook-endpoint",
        }
    }
}

/// The GCM associated data: the same binding as the KMS context, in a fixed form.
fn associated_data(org: &OrgId, what: SealedFor<'_>) -> Vec<u8> {
    format!(
        "instant-compliance/{}/v{SCHEME}\norg_id={}\n{}={}",
        what.kind(),
        org.as_str(),
        what.context_key(),
        what.id()
    )
    .into_bytes()
}

#[derive(Clone, Debug)]
pub struct Vault {
    kms: aws_sdk_kms::Client,
    key_id: String,
}

impl Vault {
    pub fn new(kms: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self {
            kms,
            key_id: key_id.into(),
        }
    }

    /// A function's vault: its KMS client from Lambda's variables and the key from
    /// `PROVIDER_KEYS_KMS_KEY`.
    pub fn in_lambda(settings: &LambdaSettings) -> Result<Self, String> {
        let key_id = std::env::var(PROVIDER_KEYS_KMS_KEY_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("{PROVIDER_KEYS_KMS_KEY_ENV} is not set"))?;
        Ok(Self::new(sdk::kms(settings), key_id))
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The same vault, its calls signed as `access_key_id` (`App::signing_as`).
    pub fn signing_as(&self, access_key_id: &str) -> Self {
        Self {
            kms: sdk::kms_signing_as(&self.kms, access_key_id),
            key_id: self.key_id.clone(),
        }
    }

    /// Seals `secret` for provider key `provider_key_id` of `org`, under a new data key.
    pub async fn seal(
        &self,
        org: &OrgId,
        provider_key_id: &str,
        secret: &ProviderSecret,
    ) -> Result<Sealed, VaultError> {
        self.seal_bytes(
            org,
            SealedFor::ProviderKey(provider_key_id),
            secret.expose().as_bytes(),
        )
        .await
    }

    /// Opens what `seal` made for this org and provider key id; anything sealed for
    /// another is refused, by KMS (the context) and by AES-GCM (the associated data).
    pub async fn open(
        &self,
        org: &OrgId,
        provider_key_id: &str,
        sealed: &Sealed,
    ) -> Result<ProviderSecret, VaultError> {
        let clear = self
            .open_bytes(org, SealedFor::ProviderKey(provider_key_id), sealed)
            .await?;
        let text = std::str::from_utf8(&clear)
            .map_err(|_| VaultError::Refused("opened secret is not UTF-8".into()))?;
        Ok(ProviderSecret::from_opened(Zeroizing::new(text.to_owned())))
    }

    /// Seals `clear` for `what` of `org`, under a new data key.
    pub async fn seal_bytes(
        &self,
        org: &OrgId,
        what: SealedFor<'_>,
        clear: &[u8],
    ) -> Result<Sealed, VaultError> {
        let mut out = self
            .kms
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context("org_id", org.as_str())
            .encryption_context(what.context_key(), what.id())
            .send()
            .await
            .map_err(|e| classify("GenerateDataKey", &e))?;
        let data_key = Zeroizing::new(
            out.plaintext
                .take()
                .map(Blob::into_inner)
                .ok_or_else(|| VaultError::Other("GenerateDataKey: no plaintext".into()))?,
        );
        let encrypted_data_key = out
            .ciphertext_blob
            .take()
            .map(Blob::into_inner)
            .ok_or_else(|| VaultError::Other("GenerateDataKey: no ciphertext".into()))?;
        let cipher = Aes256Gcm::new_from_slice(&data_key)
            .map_err(|_| VaultError::Other("GenerateDataKey: not a 256-bit key".into()))?;
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| VaultError::Other(format!("nonce: {e}")))?;
        let aad = associated_data(org, what);
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: clear,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Other("AES-GCM: encryption failed".into()))?;
        Ok(Sealed {
            scheme: SCHEME,
            kms_key_id: out.key_id.take().unwrap_or_else(|| self.key_id.clone()),
            encrypted_data_key,
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Opens what `seal_bytes` made for `what` of `org`; anything sealed for another is
    /// refused, by KMS (the context) and by AES-GCM (the associated data).
    pub async fn open_bytes(
        &self,
        org: &OrgId,
        what: SealedFor<'_>,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if sealed.scheme != SCHEME || sealed.nonce.len() != NONCE_BYTES {
            return Err(VaultError::Refused(format!(
                "unknown scheme {} or nonce length",
                sealed.scheme
            )));
        }
        let mut out = self
            .kms
            .decrypt()
            .key_id(&sealed.kms_key_id)
            .ciphertext_blob(Blob::new(sealed.encrypted_data_key.clone()))
            .encryption_context("org_id", org.as_str())
            .encryption_context(what.context_key(), what.id())
            .send()
            .await
            .map_err(|e| classify("Decrypt", &e))?;
        let data_key = Zeroizing::new(
            out.plaintext
                .take()
                .map(Blob::into_inner)
                .ok_or_else(|| VaultError::Other("Decrypt: no plaintext".into()))?,
        );
        let cipher = Aes256Gcm::new_from_slice(&data_key)
            .map_err(|_| VaultError::Refused("Decrypt: not a 256-bit key".into()))?;
        let aad = associated_data(org, what);
        let clear = Zeroizing::new(
            cipher
                .decrypt(
                    Nonce::from_slice(&sealed.nonce),
                    Payload {
                        msg: &sealed.ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| VaultError::Refused("AES-GCM: authentication failed".into()))?,
        );
        Ok(clear)
    }
}

impl From<VaultError> for crate::error::ApiError {
    fn from(err: VaultError) -> Self {
        match err {
            VaultError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "KMS unavailable");
                crate::error::ApiError::ServiceUnavailable {
                    retry_after_secs: crate::error::SERVICE_UNAVAILABLE_RETRY_AFTER_SECS,
                }
            }
            VaultError::Refused(detail) | VaultError::Other(detail) => {
                tracing::error!(error = %detail, "vault error");
                crate::error::ApiError::Internal
            }
        }
    }
}
