//! `POST /v1/org/webhook-endpoints/{id}/deliveries/{delivery_id}/resend`: a member re-sends a delivery.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::OrgResendWebhookDelivery)).await
}
