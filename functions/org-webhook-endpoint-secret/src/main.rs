//! `GET /v1/org/webhook-endpoints/{id}/secret`: a member reveals an endpoint's signing secret.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::ORG_WEBHOOK_ENDPOINT_SECRET).await
}
