//! `GET /v1/customers/{id}`: one customer of the caller's org.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::GetCustomer)).await
}
