//! `PATCH /v1/org/api-keys/{id}: label, allowlist, rate limit, an earlier expiry`.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::UpdateApiKey)).await
}
