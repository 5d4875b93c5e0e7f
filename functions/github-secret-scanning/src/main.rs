//! `POST /v1/secret-scanning/github`: GitHub's secret-scanning partner endpoint; every
//! reported token that is one of our keys is revoked at once.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::GITHUB_SECRET_SCANNING).await
}
