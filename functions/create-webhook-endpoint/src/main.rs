//! `POST /v1/webhook_endpoints`: a key subscribes an endpoint (a Zapier REST hook; the secret answered once).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::CREATE_WEBHOOK_ENDPOINT).await
}
