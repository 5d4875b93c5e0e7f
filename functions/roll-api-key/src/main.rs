//! `POST /v1/org/api-keys/{id}/roll: a new key; the old one expires after the grace`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::ROLL_API_KEY).await
}
