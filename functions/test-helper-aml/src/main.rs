//! `POST /v1/test_helpers/customers/{id}/aml`: moves a test customer's AML status (test keys only).

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::TestHelperAml)).await
}
