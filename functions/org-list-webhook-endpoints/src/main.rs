//! `GET /v1/org/webhook-endpoints`: the org's webhook endpoints, both modes.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::OrgListWebhookEndpoints)).await
}
