//! The local stack's API gateway, which serves the routes template.yaml declares, and
//! what the operator tool needs beyond the library.

pub mod authorizer;
pub mod clock;
pub mod gateway;
pub mod identity;
pub mod log_feed;
pub mod webhook_workers;
