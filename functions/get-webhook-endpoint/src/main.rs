//! `GET /v1/webhook_endpoints/{id}`: one webhook endpoint.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::GetWebhookEndpoint)).await
}
