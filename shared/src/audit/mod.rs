//! The org's audit trail: an event for every change people, keys, the operator tool and the
//! platform make to its control plane (keys, members, webhook endpoints, provider keys),
//! committed in the change's own transaction and chained by hash (`event`), stored where
//! nothing may update or delete it (`log`), read by `GET /v1/org/audit-events` (`api`).

pub mod api;
pub mod event;
pub mod log;

pub use event::{Actor, Audited, Author, Change, Origin, Target, TargetKind};
pub use log::AuditLog;
