//! `PATCH /v1/org/members/{id}: another member's role`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::UPDATE_MEMBER).await
}
