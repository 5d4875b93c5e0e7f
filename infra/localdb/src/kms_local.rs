//! The KMS-API emulator of the local stack and the tests: the same moto server that holds
//! the user pool (one process serves every AWS API moto emulates), holding the
//! provider-keys key of template.yaml (its key spec, usage and rotation setting), as
//! DynamoDB Local holds the tables.

use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use serde_yaml_ng::Value;

use crate::cognito_local::LOCAL_REGION;
use crate::{LocalError, Template};

/// A KMS client for the emulator at `endpoint`, with local credentials.
pub fn kms_client(endpoint: &str) -> aws_sdk_kms::Client {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(LOCAL_REGION))
        .credentials_provider(Credentials::new("local", "local", None, None, "local"))
        .endpoint_url(endpoint)
        .interceptor(crate::Ledger::global().clone())
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

/// The key the emulator made for the template's `AWS::KMS::Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalKmsKey {
    pub logical_id: String,
    /// Its ARN, as a function's `PROVIDER_KEYS_KMS_KEY` holds it (`!GetAtt Key.Arn`).
    pub arn: String,
    pub rotation_enabled: bool,
}

impl Template {
    /// Creates the template's KMS key in `client`'s KMS, with its spec, usage and rotation.
    pub async fn create_kms_key(
        &self,
        client: &aws_sdk_kms::Client,
    ) -> Result<LocalKmsKey, LocalError> {
        let (logical_id, key) = self.single_resource("AWS::KMS::Key")?;
        let text = |name: &str| key.get(name).and_then(Value::as_str).map(str::to_owned);
        let mut request = client.create_key();
        if let Some(description) = text("Description") {
            request = request.description(description);
        }
        if let Some(spec) = text("KeySpec") {
            request = request.key_spec(KeySpec::from(spec.as_str()));
        }
        if let Some(usage) = text("KeyUsage") {
            request = request.key_usage(KeyUsageType::from(usage.as_str()));
        }
        let created = request
            .send()
            .await
            .map_err(|e| LocalError::Setup(format!("CreateKey: {e:?}")))?;
        let metadata = created
            .key_metadata()
            .ok_or_else(|| LocalError::Setup("CreateKey: no metadata".into()))?;
        let arn = metadata
            .arn()
            .ok_or_else(|| LocalError::Setup("CreateKey: no ARN".into()))?
            .to_owned();
        let rotation = key
            .get("EnableKeyRotation")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if rotation {
            client
                .enable_key_rotation()
                .key_id(&arn)
                .send()
                .await
                .map_err(|e| LocalError::Setup(format!("EnableKeyRotation: {e:?}")))?;
        }
        let ledger = crate::Ledger::global();
        ledger.name(&arn, &logical_id);
        ledger.name(metadata.key_id(), &logical_id);
        Ok(LocalKmsKey {
            logical_id,
            arn,
            rotation_enabled: rotation,
        })
    }
}
