//! `GET /v1/me`: what the calling key says about itself (any valid key, no scope).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::ME).await
}
