//! `GET /settings/developers` and its assets: the Settings → Developers page.

use std::sync::Arc;

use developers_page::{serve, PageConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let config = Arc::new(PageConfig::from_env()?);
    shared::run_handler(move |req| serve(config.clone(), req)).await
}
