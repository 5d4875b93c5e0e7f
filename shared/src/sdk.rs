//! The AWS clients a function builds at init, straight from the variables Lambda sets:
//! region (`AWS_REGION`), the execution role's credentials (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), and an endpoint override
//! (`AWS_ENDPOINT_URL_DYNAMODB`, or `AWS_ENDPOINT_URL`), which is how `sam local` and the
//! bench point a function at DynamoDB Local. No default provider chain (profiles, SSO, IMDS,
//! STS: about fifteen look-ups a function never needs), and TLS trusts only the roots AWS
//! endpoints chain to, embedded, rather than loading the OS store on every cold start.
//! Operators' tools, which do need profiles, build their clients with `aws_config` instead.

use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};

/// Amazon Trust Services' roots (Amazon Root CA 1–4, Starfield Services Root G2).
pub const AWS_ROOTS_PEM: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

/// One DynamoDB attempt; the SDK retries throttling and transient errors within the budget.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2_000);
/// All attempts together, well inside the function timeout, so a hang becomes a 503.
const OPERATION_TIMEOUT: Duration = Duration::from_millis(5_000);
/// Opening a connection (TCP and TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);

/// The limits every client of the API uses: a stalled service becomes a 503, not a hang.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The settings both clients are built from.
#[derive(Clone, Debug)]
pub struct LambdaSettings {
    pub region: Region,
    pub credentials: Credentials,
}

impl LambdaSettings {
    pub fn from_env() -> Result<Self, String> {
        Self::resolve(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// From `lookup` of each variable; `Err` names what is missing.
    pub fn resolve(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let region = lookup("AWS_REGION")
            .or_else(|| lookup("AWS_DEFAULT_REGION"))
            .ok_or("AWS_REGION is not set (Lambda sets it)")?;
        let id =
            lookup("AWS_ACCESS_KEY_ID").ok_or("AWS_ACCESS_KEY_ID is not set (Lambda sets it)")?;
        let secret = lookup("AWS_SECRET_ACCESS_KEY")
            .ok_or("AWS_SECRET_ACCESS_KEY is not set (Lambda sets it)")?;
        Ok(Self {
            region: Region::new(region),
            credentials: Credentials::new(
                id,
                secret,
                lookup("AWS_SESSION_TOKEN"),
                None,
                "LambdaEnvironment",
            ),
        })
    }
}

/// The endpoint override for `service` (`DYNAMODB`, `COGNITO_IDENTITY_PROVIDER`), as the
/// SDK's own configuration reads it: the service's variable first, then the global one.
pub fn endpoint_override(service: &str, lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
    lookup(&format!("AWS_ENDPOINT_URL_{service}")).or_else(|| lookup("AWS_ENDPOINT_URL"))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The HTTPS client every SDK client of the process shares: rustls on aws-lc, trusting
/// `AWS_ROOTS_PEM` only (plain HTTP still works, for a local endpoint).
pub fn https_client() -> SharedHttpClient {
    static CLIENT: OnceLock<SharedHttpClient> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let trust = TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(AWS_ROOTS_PEM);
            let context = TlsContext::builder()
                .with_trust_store(trust)
                .build()
                .unwrap_or_default();
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(context)
                .build_https()
        })
        .clone()
}

/// Credentials named `access_key_id`, for the local stack: it gives each function's clients
/// its own, as each function has its own role deployed, so the IAM ledger can tell whose
/// call a request was (DynamoDB Local and the emulators accept any key).
fn local_credentials(access_key_id: &str) -> Credentials {
    Credentials::new(access_key_id, "local", None, None, "local-stack")
}

/// `client`, signing as `access_key_id` (the local stack's per-function identities).
pub fn dynamodb_signing_as(
    client: &aws_sdk_dynamodb::Client,
    access_key_id: &str,
) -> aws_sdk_dynamodb::Client {
    let config = client.config().to_builder();
    aws_sdk_dynamodb::Client::from_conf(
        config
            .credentials_provider(local_credentials(access_key_id))
            .build(),
    )
}

/// `client`, signing as `access_key_id`.
pub fn cognito_signing_as(
    client: &aws_sdk_cognitoidentityprovider::Client,
    access_key_id: &str,
) -> aws_sdk_cognitoidentityprovider::Client {
    let config = client.config().to_builder();
    aws_sdk_cognitoidentityprovider::Client::from_conf(
        config
            .credentials_provider(local_credentials(access_key_id))
            .build(),
    )
}

/// `client`, signing as `access_key_id`.
pub fn kms_signing_as(client: &aws_sdk_kms::Client, access_key_id: &str) -> aws_sdk_kms::Client {
    let config = client.config().to_builder();
    aws_sdk_kms::Client::from_conf(
        config
            .credentials_provider(local_credentials(access_key_id))
            .build(),
    )
}

/// DynamoDB, for a function.
pub fn dynamodb(settings: &LambdaSettings) -> aws_sdk_dynamodb::Client {
    let mut config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(settings.region.clone())
        .credentials_provider(settings.credentials.clone())
        .timeout_config(timeouts())
        .http_client(https_client());
    if let Some(endpoint) = endpoint_override("DYNAMODB", env) {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_dynamodb::Client::from_conf(config.build())
}

/// The user pool's API, for the functions that invite or deactivate members.
pub fn cognito(settings: &LambdaSettings) -> aws_sdk_cognitoidentityprovider::Client {
    use aws_sdk_cognitoidentityprovider::config::Builder;
    let mut config = Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(settings.region.clone())
        .credentials_provider(settings.credentials.clone())
        .timeout_config(timeouts())
        .http_client(https_client());
    if let Some(endpoint) = endpoint_override("COGNITO_IDENTITY_PROVIDER", env) {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_cognitoidentityprovider::Client::from_conf(config.build())
}

/// KMS, for the functions that seal or open provider secrets.
pub fn kms(settings: &LambdaSettings) -> aws_sdk_kms::Client {
    use aws_sdk_kms::config::Builder;
    let mut config = Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(settings.region.clone())
        .credentials_provider(settings.credentials.clone())
        .timeout_config(timeouts())
        .http_client(https_client());
    if let Some(endpoint) = endpoint_override("KMS", env) {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_kms::Client::from_conf(config.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    use std::collections::BTreeMap;

    #[test]
    fn the_trust_store_is_the_five_aws_roots_and_each_parses() {
        let certs: Vec<CertificateDer> = CertificateDer::pem_slice_iter(AWS_ROOTS_PEM)
            .collect::<Result<_, _>>()
            .expect("valid PEM");
        assert_eq!(certs.len(), 5);
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs {
            roots.add(cert).expect("a usable trust anchor");
        }
        assert_eq!(roots.len(), 5);
        // Subjects are DER; the common names are plain ASCII within them.
        let names: Vec<String> = roots
            .roots
            .iter()
            .map(|anchor| String::from_utf8_lossy(anchor.subject.as_ref()).into_owned())
            .collect();
        for n in 1..=4 {
            let name = format!("Amazon Root CA {n}");
            assert!(names.iter().any(|s| s.contains(&name)), "{name} missing");
        }
        assert!(names
            .iter()
            .any(|s| s.contains("Starfield Services Root Certificate Authority - G2")));
    }

    #[test]
    fn settings_come_from_lambdas_variables_and_name_what_is_missing() {
        let vars = BTreeMap::from([
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
        ]);
        let lookup = |without: &'static str| {
            let vars = vars.clone();
            move |name: &str| {
                (name != without)
                    .then(|| vars.get(name).map(|v| (*v).to_owned()))
                    .flatten()
            }
        };
        let settings = LambdaSettings::resolve(lookup("")).unwrap();
        assert_eq!(settings.region.as_ref(), "eu-west-1");
        assert_eq!(settings.credentials.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(settings.credentials.session_token(), Some("token"));
        for missing in ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            let err = LambdaSettings::resolve(lookup(missing)).unwrap_err();
            assert!(err.contains(missing), "{err}");
        }
        // No session token is fine (long-lived keys under `sam local invoke`).
        let settings = LambdaSettings::resolve(lookup("AWS_SESSION_TOKEN")).unwrap();
        assert_eq!(settings.credentials.session_token(), None);
    }

    #[test]
    fn the_service_endpoint_wins_over_the_global_one() {
        let both = |name: &str| match name {
            "AWS_ENDPOINT_URL_DYNAMODB" => Some("http://127.0.0.1:8000".to_owned()),
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:9000".to_owned()),
            _ => None,
        };
        assert_eq!(
            endpoint_override("DYNAMODB", both).as_deref(),
            Some("http://127.0.0.1:8000")
        );
        assert_eq!(
            endpoint_override("COGNITO_IDENTITY_PROVIDER", both).as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(endpoint_override("DYNAMODB", |_| None), None);
    }

    #[test]
    fn a_client_carries_the_settings_region_and_the_apis_timeouts() {
        let settings = LambdaSettings::resolve(|name| match name {
            "AWS_REGION" => Some("eu-west-1".into()),
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("x".into()),
            _ => None,
        })
        .unwrap();
        let client = dynamodb(&settings);
        assert_eq!(
            client.config().region().map(|r| r.as_ref()),
            Some("eu-west-1")
        );
        let timeouts = client.config().timeout_config().cloned().unwrap();
        assert_eq!(timeouts.operation_timeout(), Some(OPERATION_TIMEOUT));
        assert_eq!(timeouts.connect_timeout(), Some(CONNECT_TIMEOUT));
    }
}
