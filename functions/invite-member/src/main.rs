//! `POST /v1/org/members: invites a member (the pool emails the temporary password)`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::INVITE_MEMBER).await
}
