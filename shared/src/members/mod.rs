//! Members of an org: roles and permissions, the members table, the member session (who a
//! member-API request is, from the JWT authorizer's claims and the member record), the user
//! pool, and the member API's routes.

pub mod api;
pub mod pool;
pub mod role;
pub mod session;
pub mod table;
