//! `GET /v1/customers`: newest customers first, or everything changed since a watermark.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::LIST_CUSTOMERS).await
}
