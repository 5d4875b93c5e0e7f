//! API Gateway's `$default` route: a JSON 404 for an unknown path, a 405 for a wrong method.

use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Fallback).await
}
