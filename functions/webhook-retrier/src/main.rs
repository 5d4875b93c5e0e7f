//! The webhook retrier: every minute, the deliveries whose next attempt is due.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::webhooks::worker::run_retrier().await
}
