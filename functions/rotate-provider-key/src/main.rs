//! `POST /v1/org/provider-keys/{id}/rotate: a new secret, same id and history`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::ROTATE_PROVIDER_KEY).await
}
