//! `GET /v1/org/api-keys: the org's keys, newest first`.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::ListApiKeys)).await
}
