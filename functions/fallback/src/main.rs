//! API Gateway's `$default` route: a JSON 404 for an unknown path, a 405 for a wrong method.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::FALLBACK).await
}
