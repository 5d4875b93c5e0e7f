//! `GET /v1/org/webhook-endpoints/{id}/secret`: a member reveals an endpoint's signing secret.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::OrgWebhookEndpointSecret)).await
}
