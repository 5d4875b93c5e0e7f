//! `POST /v1/org/api-keys/{id}/revoke: revokes now (repeating it is a no-op)`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::REVOKE_API_KEY).await
}
