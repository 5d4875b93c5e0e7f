//! Customers: the model, strict input parsing, the lifecycle state machine, listing cursors,
//! the customers table, the route handlers and test mode's helpers.

pub mod api;
pub mod cursor;
pub mod input;
pub mod lifecycle;
pub mod model;
pub mod table;
pub mod test_helpers;
