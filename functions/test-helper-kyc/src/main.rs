//! `POST /v1/test_helpers/customers/{id}/kyc`: moves a test customer's KYC status (test keys only).

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::TestHelperKyc)).await
}
