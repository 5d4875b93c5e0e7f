//! API keys: the token format and checksum, scopes, IP allowlists, the verification order,
//! and the keys table.

pub mod api;
pub mod audited;
pub mod facts;
pub mod ip_allowlist;
pub mod leak;
pub mod scope;
pub mod table;
pub mod token;
pub mod verify;
