//! `POST /v1/org/webhook-endpoints`: a member adds a webhook endpoint (the secret answered once).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::ORG_CREATE_WEBHOOK_ENDPOINT).await
}
