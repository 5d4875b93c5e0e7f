//! `POST /v1/customers`: create, or update by `external_id`, under an optional Idempotency-Key.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::CREATE_CUSTOMER).await
}
