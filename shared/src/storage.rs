//! What the table modules share: the storage error, and how a DynamoDB failure is classified.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// Throttled, timed out or down after the SDK's retries: the client may retry (503).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// An item that does not decode: a bug or a hand edit, never the client's fault (500).
    #[error("corrupt item: {0}")]
    Corrupt(String),
    /// Anything else, e.g. a missing table: a deployment fault (500).
    #[error("storage error: {0}")]
    Other(String),
}

/// Error codes after which the same request may well succeed a little later.
const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "LimitExceededException",
];

/// Classifies an SDK failure. Only the operation and the error code are kept: DynamoDB
/// messages can quote item values, and those may be customer data.
pub fn classify<E, R>(operation: &str, err: &SdkError<E, R>) -> StorageError
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StorageError::Unavailable(format!("{operation}: no usable response"))
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("unknown");
            if RETRYABLE_CODES.contains(&code) {
                StorageError::Unavailable(format!("{operation}: {code}"))
            } else {
                StorageError::Other(format!("{operation}: {code}"))
            }
        }
        _ => StorageError::Other(format!("{operation}: request could not be built")),
    }
}

/// The error code of a service error, to tell a failed condition from a real failure.
pub fn service_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

pub fn corrupt(what: &str, err: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("{what}: {err}"))
}

/// The outcome of a conditional write whose failed condition means there is nothing to do
/// (already done, or no longer wanted): `Ok` then, the classified error otherwise.
pub fn unless_condition_failed<T, E, R>(
    operation: &str,
    result: Result<T, SdkError<E, R>>,
) -> Result<(), StorageError>
where
    E: ProvideErrorMetadata,
{
    match result {
        Ok(_) => Ok(()),
        Err(e) if service_code(&e) == Some("ConditionalCheckFailedException") => Ok(()),
        Err(e) => Err(classify(operation, &e)),
    }
}
