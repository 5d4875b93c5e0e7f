//! `GET /v1/org/webhook-endpoints/{id}/deliveries`: a member lists an endpoint's deliveries and attempts.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::ORG_LIST_WEBHOOK_DELIVERIES).await
}
