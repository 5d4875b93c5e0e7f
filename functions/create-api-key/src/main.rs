//! `POST /v1/org/api-keys: a member issues a key (the plaintext answered once)`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::CREATE_API_KEY).await
}
