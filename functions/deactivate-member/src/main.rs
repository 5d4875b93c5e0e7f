//! `POST /v1/org/members/{id}/deactivate: the member and their keys`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::DEACTIVATE_MEMBER).await
}
