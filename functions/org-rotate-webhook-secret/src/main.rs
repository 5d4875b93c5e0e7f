//! `POST /v1/org/webhook-endpoints/{id}/rotate-secret`: a member rotates an endpoint's secret (the old one signs on for an overlap).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::ORG_ROTATE_WEBHOOK_SECRET).await
}
