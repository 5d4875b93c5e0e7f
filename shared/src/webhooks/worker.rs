//! The `main`s of the three webhook functions: the stream dispatcher, the retrier (every
//! minute) and the daily `api_key.expiring` sweep. Each builds its clients once, then
//! serves events until Lambda stops the process.

use std::sync::Arc;
use std::time::Duration;

use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use serde_json::{json, Value};

use crate::request::deadline_from_epoch_millis;
use crate::webhooks::dispatch::Webhooks;
use crate::App;

/// How often the retrier looks for due deliveries while it runs.
pub const RETRIER_POLL: Duration = Duration::from_secs(2);

type Handled = std::pin::Pin<Box<dyn std::future::Future<Output = Value> + Send>>;

async fn serve<F>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Arc<Webhooks>, Arc<App>, Value, tokio::time::Instant) -> Handled + Clone + Send + 'static,
{
    crate::edge::telemetry::init();
    // With the vault: each delivery is signed with its endpoint's sealed secret.
    let app = Arc::new(App::in_lambda(false, true)?);
    let webhooks = Arc::new(Webhooks::new(&app));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (handler, app, webhooks) = (handler.clone(), app.clone(), webhooks.clone());
        async move {
            let deadline = deadline_from_epoch_millis(event.context.deadline);
            Ok::<_, std::convert::Infallible>(handler(webhooks, app, event.payload, deadline).await)
        }
    }))
    .await
}

/// DynamoDB Streams batches (customers and keys tables) in; partial batch failures out.
pub async fn run_dispatcher() -> Result<(), lambda_http::Error> {
    serve(|webhooks, _app, batch, deadline| {
        Box::pin(async move { webhooks.handle_stream(&batch, deadline).await })
    })
    .await
}

/// A scheduled event in (every minute); it sweeps due deliveries until its time is up.
pub async fn run_retrier() -> Result<(), lambda_http::Error> {
    serve(|webhooks, _app, _event, deadline| {
        Box::pin(async move {
            let attempted = webhooks.sweep_until(deadline, RETRIER_POLL).await;
            json!({"attempted": attempted})
        })
    })
    .await
}

/// A scheduled event in (daily); `api_key.expiring` for keys 7 days from expiry.
pub async fn run_expiring() -> Result<(), lambda_http::Error> {
    serve(|webhooks, app, _event, deadline| {
        Box::pin(async move {
            match webhooks.expiring(&app.keys, deadline).await {
                Ok(count) => json!({"deliveries": count}),
                Err(err) => {
                    // The next day's run covers the same keys (a 2-day window).
                    tracing::error!(error = %err, "api_key.expiring sweep failed");
                    json!({"error": "storage"})
                }
            }
        })
    })
    .await
}
