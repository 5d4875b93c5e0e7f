//! `POST /v1/org/api-keys/{id}/revoke: revokes now (repeating it is a no-op)`.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::RevokeApiKey)).await
}
