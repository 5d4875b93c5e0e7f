//! The top floor: API Gateway events in, dispatch to a route's handler, responses out, and
//! the telemetry every function shares. Nothing below imports this folder.

pub mod gateway_event;
pub mod http;
pub mod routes;
pub mod speculation;
pub mod telemetry;
