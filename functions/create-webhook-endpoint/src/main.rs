//! `POST /v1/webhook_endpoints`: a key subscribes an endpoint (a Zapier REST hook; the secret answered once).

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::CreateWebhookEndpoint)).await
}
