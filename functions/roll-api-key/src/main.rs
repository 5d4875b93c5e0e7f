//! `POST /v1/org/api-keys/{id}/roll: a new key; the old one expires after the grace`.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::RollApiKey)).await
}
