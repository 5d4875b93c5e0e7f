//! `PATCH /v1/customers/{id}`: partial update; `null` clears an optional field.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::UpdateCustomer)).await
}
