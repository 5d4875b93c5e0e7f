//! `POST /v1/org/provider-keys: a provider secret in, sealed under KMS, masked out`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::CREATE_PROVIDER_KEY).await
}
