//! `GET /v1/org/provider-keys/{id}/call-summaries: calls and errors per day`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::PROVIDER_KEY_CALL_SUMMARIES).await
}
