//! `GET /v1/org/api-keys: the org's keys, newest first`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::LIST_API_KEYS).await
}
