//! `GET /v1/org/api-keys/{id}/requests: the key's request log`.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::ApiKeyRequests)).await
}
