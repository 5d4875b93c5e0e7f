//! `GET /v1/org/members: the org's members`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::LIST_MEMBERS).await
}
