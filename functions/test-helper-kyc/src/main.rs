//! `POST /v1/test_helpers/customers/{id}/kyc`: moves a test customer's KYC status (test keys only).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::TEST_HELPER_KYC).await
}
