//! `GET /v1/org/webhook-endpoints/{id}`: one webhook endpoint.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::ORG_GET_WEBHOOK_ENDPOINT).await
}
