//! The local stack's API gateway, which serves the routes template.yaml declares, and
//! what the operator tool needs beyond the library.

pub mod clock;
pub mod gateway;
pub mod log_feed;
