//! `GET /v1/customers/{id}`: one customer of the caller's org.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::GET_CUSTOMER).await
}
