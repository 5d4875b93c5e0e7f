//! `DELETE /v1/org/webhook-endpoints/{id}`: a member deletes a webhook endpoint.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::ORG_DELETE_WEBHOOK_ENDPOINT).await
}
