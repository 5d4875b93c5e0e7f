//! The library against DynamoDB Local: storage, and handlers through API Gateway v2 events.

mod helpers;

mod edge;
mod key_storage;
mod verification;
