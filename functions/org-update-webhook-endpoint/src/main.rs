//! `PATCH /v1/org/webhook-endpoints/{id}`: a member changes a webhook endpoint.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::ORG_UPDATE_WEBHOOK_ENDPOINT).await
}
