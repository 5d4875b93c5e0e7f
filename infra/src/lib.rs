//! The local stack's API gateway, which serves the routes template.yaml declares.

pub mod gateway;
