//! `POST /v1/org/webhook-endpoints/{id}/rotate-secret`: a member rotates an endpoint's secret (the old one signs on for an overlap).

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::OrgRotateWebhookSecret)).await
}
