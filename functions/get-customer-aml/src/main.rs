//! `GET /v1/customers/{id}/aml`: the AML result (scope `aml:read`).

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::GetCustomerAml)).await
}
