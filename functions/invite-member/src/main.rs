//! `POST /v1/org/members: invites a member (the pool emails the temporary password)`.

use shared::edge::routes::Route;
use shared::Endpoint;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::run_function(Endpoint::Route(Route::InviteMember)).await
}
