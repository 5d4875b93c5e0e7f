//! `POST /v1/org/webhook-endpoints`: a member adds a webhook endpoint (the secret answered once).

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::OrgCreateWebhookEndpoint)).await
}
