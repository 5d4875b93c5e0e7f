//! `GET /v1/customers/{id}/aml`: the AML result (scope `aml:read`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::GET_CUSTOMER_AML).await
}
