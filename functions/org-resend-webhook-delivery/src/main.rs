//! `POST /v1/org/webhook-endpoints/{id}/deliveries/{delivery_id}/resend`: a member re-sends a delivery.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(shared::functions::ORG_RESEND_WEBHOOK_DELIVERY).await
}
