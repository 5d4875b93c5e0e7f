//! `GET /v1/org/api-keys/{id}: one of the org's keys`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::GET_API_KEY).await
}
