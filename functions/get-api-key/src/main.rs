//! `GET /v1/org/api-keys/{id}: one of the org's keys`.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::GetApiKey)).await
}
