//! The request log of every key: one record per request in which a key was identified
//! (served or refused), written off the request path from the functions' own log lines.
//! `record` reads a log line, `writer` a CloudWatch Logs subscription event, `table` stores.

pub mod record;
pub mod table;
pub mod writer;
