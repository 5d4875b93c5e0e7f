//! `GET /v1/org/provider-keys/{id}: one provider key, masked`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::GET_PROVIDER_KEY).await
}
