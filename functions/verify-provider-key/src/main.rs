//! `POST /v1/org/provider-keys/{id}/verify: the provider's cheapest authenticated request`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::VERIFY_PROVIDER_KEY).await
}
