//! `GET /v1/org/webhook-endpoints`: the org's webhook endpoints, both modes.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::ORG_LIST_WEBHOOK_ENDPOINTS).await
}
