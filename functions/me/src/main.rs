//! `GET /v1/me`: what the calling key says about itself (any valid key, no scope).

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::Me)).await
}
