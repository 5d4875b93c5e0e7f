//! Instant Compliance integration API: the library every function is a thin wrapper around.
//! Grouped by concept: `edge` (events in, responses out) dispatches into `customers`, which
//! uses `keys`, `idempotency` and the ground floor (`error`, `request`, `org`, `time`,
//! `storage`, `query`).

pub mod app;
pub mod audit;
pub mod customers;
pub mod edge;
pub mod error;
pub mod form;
pub mod functions;
pub mod idempotency;
pub mod json;
pub mod keys;
pub mod members;
pub mod org;
pub mod outbound;
pub mod providers;
pub mod query;
pub mod request;
pub mod request_log;
pub mod sdk;
pub mod secret_scanning;
pub mod storage;
pub mod time;
pub mod webhooks;

pub use app::App;
pub use edge::http::{handle, serve, Endpoint};
pub use error::ApiError;
pub use functions::Function;

/// The whole `main` of a function: logs, clients once, then serve `function` (one of
/// `functions`' constants) until Lambda stops the process. Events go through
/// `gateway_event::invoke_with`, the same path the local gateway and the tests use.
pub async fn run_function(function: Function) -> Result<(), lambda_http::Error> {
    edge::telemetry::init();
    let app = App::in_lambda(function.needs_pool(), function.needs_vault())?;
    if function.needs_cursor_key() && app.cursor_key.is_none() {
        return Err(format!(
            "{} is not set: the listing's cursors cannot be authenticated",
            customers::cursor::CURSOR_SECRET_ENV
        )
        .into());
    }
    let mut app = app;
    if function.endpoint == Endpoint::Route(edge::routes::Route::GithubSecretScanning) {
        // A misconfigured key list stops the function at start, not at the first report.
        app.scanning_keys = secret_scanning::github_keys::ScanningKeys::from_env()?;
    }
    let app = std::sync::Arc::new(app);
    serve_events(move |req| {
        let app = app.clone();
        async move { serve(app, function, req).await }
    })
    .await
}

/// The `main` of a function that serves something other than a library route (the page):
/// logs, then `handler` for each event, through `gateway_event::invoke_with`.
pub async fn run_handler<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(lambda_http::Request) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = lambda_http::Response<lambda_http::Body>> + Send,
{
    edge::telemetry::init();
    serve_events(handler).await
}

/// `handler` for each event until Lambda stops the process (logging already set up).
async fn serve_events<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(lambda_http::Request) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = lambda_http::Response<lambda_http::Body>> + Send,
{
    lambda_http::lambda_runtime::run(lambda_http::lambda_runtime::service_fn(
        move |event: lambda_http::lambda_runtime::LambdaEvent<serde_json::Value>| {
            let handler = handler.clone();
            async move {
                Ok::<_, std::convert::Infallible>(
                    edge::gateway_event::invoke_with(handler, event.payload, event.context).await,
                )
            }
        },
    ))
    .await
}
