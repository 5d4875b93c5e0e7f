//! Webhooks: the endpoints an org registers (`endpoint`, `table`, `api`), where they may
//! point (`target`), the events made from the tables' streams (`event`), and the signed,
//! retried delivery of each (`signing`).

pub mod api;
pub mod delivery;
pub mod dispatch;
pub mod endpoint;
pub mod event;
pub mod sender;
pub mod signing;
pub mod table;
pub mod target;
pub mod worker;
