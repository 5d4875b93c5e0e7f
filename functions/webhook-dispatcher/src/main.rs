//! The webhook dispatcher: DynamoDB Streams batches of the customers and keys tables in, one delivery per subscribed endpoint stored, then sent.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::webhooks::worker::run_dispatcher().await
}
