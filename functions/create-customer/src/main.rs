//! `POST /v1/customers`: create, or update by `external_id`, under an optional Idempotency-Key.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::CreateCustomer)).await
}
