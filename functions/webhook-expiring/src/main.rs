//! The daily api_key.expiring sweep.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::webhooks::worker::run_expiring().await
}
