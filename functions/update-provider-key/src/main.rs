//! `PATCH /v1/org/provider-keys/{id}: label and enabled`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::UPDATE_PROVIDER_KEY).await
}
