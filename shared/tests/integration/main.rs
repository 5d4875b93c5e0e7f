//! The library against DynamoDB Local: storage, and handlers through API Gateway v2 events.

mod helpers;

mod bad_input;
mod customers;
mod edge;
mod events;
mod faults;
mod forms;
mod idempotency;
mod key_storage;
mod promises;
mod rate_limits;
mod request_log;
mod verification;
mod warm_reads;
mod webhooks;
