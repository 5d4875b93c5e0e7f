//! The request-log writer: CloudWatch Logs subscription events from the route functions'
//! log groups in, request records out into the RequestLog table.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::request_log::writer::run().await
}
