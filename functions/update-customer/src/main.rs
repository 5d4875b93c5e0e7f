//! `PATCH /v1/customers/{id}`: partial update; `null` clears an optional field.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::UPDATE_CUSTOMER).await
}
