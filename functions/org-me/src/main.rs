//! `GET /v1/org/me: the signed-in member, their org and permissions`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::ORG_ME).await
}
