//! `GET /v1/customers`: newest customers first, or everything changed since a watermark.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::ListCustomers)).await
}
