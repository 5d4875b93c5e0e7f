//! The daily api_key.expiring sweep.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::webhooks::worker::run_expiring().await
}
