//! `GET /v1/org/api-keys/{id}/requests: the key's request log`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::API_KEY_REQUESTS).await
}
