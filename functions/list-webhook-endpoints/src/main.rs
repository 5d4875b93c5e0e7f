//! `GET /v1/webhook_endpoints`: a key's webhook endpoints (scope webhooks:write).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::LIST_WEBHOOK_ENDPOINTS).await
}
