//! `POST /v1/org/api-keys: a member issues a key (the plaintext answered once)`.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::CreateApiKey)).await
}
