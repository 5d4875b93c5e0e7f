//! The local stack's API gateway, which serves the routes template.yaml declares, and
//! what the operator tool needs beyond the library.

pub mod authorizer;
pub mod call_proxy;
pub mod clock;
pub mod docs_site;
pub mod gateway;
pub mod identity;
pub mod log_feed;
pub mod loopback;
pub mod provider_fakes;
pub mod runtime_api;
pub mod secret_scanner;
pub mod stack;
pub mod webhook_workers;
