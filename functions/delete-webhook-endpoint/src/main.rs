//! `DELETE /v1/webhook_endpoints/{id}`: a key unsubscribes an endpoint.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::DELETE_WEBHOOK_ENDPOINT).await
}
