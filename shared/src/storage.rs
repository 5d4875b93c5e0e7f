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

/// The outcome of a conditional write: `Some(output)` when it was written, `None` when its
/// condition failed, the classified error otherwise.
pub fn condition_held<T, E, R>(
    operation: &str,
    result: Result<T, SdkError<E, R>>,
) -> Result<Option<T>, StorageError>
where
    E: ProvideErrorMetadata,
{
    match result {
        Ok(output) => Ok(Some(output)),
        Err(e) if service_code(&e) == Some("ConditionalCheckFailedException") => Ok(None),
        Err(e) => Err(classify(operation, &e)),
    }
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
    condition_held(operation, result).map(drop)
}

/// Why a transaction did not commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactFailure {
    /// These items' conditions failed (by their index in the transaction).
    Conditions(Vec<usize>),
    /// Another transaction touched the same items: re-read and try again.
    Contended,
    Storage(StorageError),
}

impl TransactFailure {
    /// As a storage error, for a caller with no condition of its own left to report: a
    /// contention that outlasted its retries may pass (503), a failed condition is a fault.
    pub fn into_storage(self, operation: &str) -> StorageError {
        match self {
            TransactFailure::Storage(err) => err,
            TransactFailure::Contended => {
                StorageError::Unavailable(format!("{operation}: other changes kept winning"))
            }
            TransactFailure::Conditions(_) => {
                StorageError::Other(format!("{operation}: condition failed"))
            }
        }
    }
}

/// Cancellation reasons that mean DynamoDB was throttling, not that the data disagreed.
const THROTTLED_REASONS: &[&str] = &["ThrottlingError", "ProvisionedThroughputExceeded"];

/// Runs `items` as one transaction (one SDK attempt: a retry is the caller's, after a fresh
/// read) and says which conditions failed when it is cancelled for them.
pub async fn transact_write(
    client: &aws_sdk_dynamodb::Client,
    operation: &str,
    items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
) -> Result<(), TransactFailure> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    let result = client
        .transact_write_items()
        .set_transact_items(Some(items))
        .customize()
        .config_override(aws_sdk_dynamodb::config::Builder::new().retry_config(
            aws_sdk_dynamodb::config::retry::RetryConfig::standard().with_max_attempts(1),
        ))
        .send()
        .await;
    let err = match result {
        Ok(_) => return Ok(()),
        Err(err) => err,
    };
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
        err.as_service_error()
    {
        let codes: Vec<&str> = cancel
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None"))
            .collect();
        if let Some(code) = codes.iter().find(|c| THROTTLED_REASONS.contains(c)) {
            return Err(TransactFailure::Storage(StorageError::Unavailable(
                format!("{operation}: cancelled, {code}"),
            )));
        }
        let failed: Vec<usize> = (0..codes.len())
            .filter(|&i| codes[i] == "ConditionalCheckFailed")
            .collect();
        if !failed.is_empty() {
            return Err(TransactFailure::Conditions(failed));
        }
        if codes.contains(&"TransactionConflict") {
            return Err(TransactFailure::Contended);
        }
    }
    if service_code(&err) == Some("TransactionConflictException") {
        return Err(TransactFailure::Contended);
    }
    Err(TransactFailure::Storage(classify(operation, &err)))
}
