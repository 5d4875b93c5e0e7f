//! Customers: the model, strict input parsing, the lifecycle state machine, listing cursors,
//! the customers table and the route handlers.

pub mod api;
pub mod cursor;
pub mod input;
pub mod lifecycle;
pub mod model;
pub mod table;
