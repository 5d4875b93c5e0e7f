//! `GET /v1/org/webhook-endpoints/{id}/deliveries`: a member lists an endpoint's deliveries and attempts.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::OrgListWebhookDeliveries)).await
}
