//! Provider keys: the org's own credentials for its screening and data providers
//! (Chainalysis, TRM, Open Sanctions, World Check, Castellum, OpenAI, Perplexity), which the
//! platform uses to call them on the org's behalf. Not API keys: nothing here authenticates
//! a request to us. `kind` (the providers and how each takes its key), `secret` (checking
//! and masking), `vault` (envelope encryption under KMS), `table` (storage and call
//! counts), `client` (every outbound call), `api` (the member routes).

pub mod api;
pub mod client;
pub mod kind;
pub mod secret;
pub mod table;
pub mod vault;
