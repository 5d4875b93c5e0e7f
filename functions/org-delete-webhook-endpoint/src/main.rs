//! `DELETE /v1/org/webhook-endpoints/{id}`: a member deletes a webhook endpoint.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::OrgDeleteWebhookEndpoint)).await
}
