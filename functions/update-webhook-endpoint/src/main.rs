//! `PATCH /v1/webhook_endpoints/{id}`: change a webhook endpoint.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::UPDATE_WEBHOOK_ENDPOINT).await
}
