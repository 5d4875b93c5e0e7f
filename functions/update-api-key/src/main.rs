//! `PATCH /v1/org/api-keys/{id}: label, allowlist, rate limit, an earlier expiry`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::UPDATE_API_KEY).await
}
