//! `GET /v1/webhook_endpoints/{id}`: one webhook endpoint.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::GET_WEBHOOK_ENDPOINT).await
}
