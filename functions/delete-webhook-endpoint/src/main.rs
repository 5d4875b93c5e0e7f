//! `DELETE /v1/webhook_endpoints/{id}`: a key unsubscribes an endpoint.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::DeleteWebhookEndpoint)).await
}
