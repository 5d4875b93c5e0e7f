//! Instant Compliance integration API: the library every function is a thin wrapper around.
//! Domain (keys, scopes, customers) is pure code; `*_table` modules speak DynamoDB; `http`
//! is the edge that turns API Gateway requests into answers.

pub mod api_key;
pub mod app;
pub mod auth;
pub mod cursor;
pub mod customer;
pub mod customer_input;
pub mod customers_api;
pub mod customers_table;
pub mod error;
pub mod gateway_event;
pub mod http;
pub mod idempotency;
pub mod idempotency_table;
pub mod ip_allowlist;
pub mod keys_table;
pub mod lifecycle;
pub mod org;
pub mod query;
pub mod routes;
pub mod scope;
pub mod storage;
pub mod telemetry;
pub mod time;

pub use app::App;
pub use error::ApiError;
pub use http::{handle, Endpoint};

/// The whole `main` of a function: logs, clients once, then serve `endpoint` until Lambda
/// stops the process. Events go through `gateway_event::invoke`, the same path the local
/// gateway and the tests use.
pub async fn run_function(endpoint: Endpoint) -> Result<(), lambda_http::Error> {
    telemetry::init();
    let app = std::sync::Arc::new(App::from_env().await?);
    lambda_http::lambda_runtime::run(lambda_http::lambda_runtime::service_fn(
        move |event: lambda_http::lambda_runtime::LambdaEvent<serde_json::Value>| {
            let app = app.clone();
            async move {
                Ok::<_, std::convert::Infallible>(
                    gateway_event::invoke(app, endpoint, event.payload, event.context).await,
                )
            }
        },
    ))
    .await
}
