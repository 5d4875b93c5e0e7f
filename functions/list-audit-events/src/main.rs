//! `GET /v1/org/audit-events`: the org's audit trail, newest first, as JSON or CSV.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::LIST_AUDIT_EVENTS).await
}
