//! `GET /v1/org/provider-keys: the org's provider keys, masked`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::LIST_PROVIDER_KEYS).await
}
