//! `GET /v1/webhook_endpoints`: a key's webhook endpoints (scope webhooks:write).

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::ListWebhookEndpoints)).await
}
