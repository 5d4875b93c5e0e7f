//! `POST /v1/org/api-keys/{id}/dismiss-leak`: hides the leak banner of a key a secret
//! scanner reported.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::DISMISS_KEY_LEAK).await
}
