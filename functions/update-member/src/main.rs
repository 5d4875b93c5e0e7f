//! `PATCH /v1/org/members/{id}: another member's role`.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::UpdateMember)).await
}
