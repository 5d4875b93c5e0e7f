//! Idempotency-Key: the key's form, the request fingerprint and the stored response
//! (`record`), and the table that holds them (`table`).

pub mod record;
pub mod table;
