//! `POST /v1/org/members/{id}/deactivate: the member and their keys`.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::DeactivateMember)).await
}
