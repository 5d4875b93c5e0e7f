//! Idempotency-Key: the key's form, the request fingerprint and the stored response
//! (`record`), and the table that holds them (`table`).

pub mod record;
pub mod table;

use lambda_http::{Body, Request, Response};
use serde_json::Value;

use crate::app::App;
use crate::error::ApiError;
use crate::org::OrgId;
use crate::request::RequestMeta;

/// Runs a write that stores no customer under its Idempotency-Key, if it has one: the
/// first request executes and its response is stored (24 h); a repeat with the same
/// request gets it back with `Idempotent-Replayed: true`, the same key with another
/// request is `422`, one still running `409`. A 5xx or a 400 releases the key. Keys live
/// in `space` (an org's live or test data), within `owner` when one is given (a member's
/// keys are their own).
/// Refuses an `Idempotency-Key` on a route whose answer holds a secret: such an answer is
/// never stored, so it can't be replayed. `why` says what the secret is and what a retry
/// does instead. A malformed key is refused as anywhere else.
pub fn refuse_key(req: &Request, why: &str) -> Result<(), ApiError> {
    record::IdempotencyKey::from_headers(req.headers())?;
    if req.headers().contains_key(record::IDEMPOTENCY_KEY_HEADER) {
        return Err(ApiError::invalid_param("Idempotency-Key", why));
    }
    Ok(())
}

pub async fn once<F, Fut>(
    app: &App,
    req: &Request,
    space: &OrgId,
    owner: Option<&str>,
    meta: &RequestMeta,
    body: &Value,
    execute: F,
) -> Result<Response<Body>, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Response<Body>, ApiError>>,
{
    use record::{fingerprint, IdempotencyKey};
    use table::Begin;
    let Some(key) = IdempotencyKey::from_headers(req.headers())? else {
        return execute().await;
    };
    let key = match owner {
        Some(owner) => key.within(owner),
        None => key,
    };
    let fp = fingerprint(req.method().as_str(), req.uri().path(), body);
    let lease = match app
        .idempotency
        .begin(space, &key, &fp, meta.now, "")
        .await?
    {
        Begin::Started(lease) => lease,
        Begin::Replay(stored) => return Ok(stored.replay()),
        Begin::InProgress => return Err(ApiError::IdempotencyKeyInUse),
        Begin::Reused => return Err(ApiError::IdempotencyKeyReused),
    };
    let response = crate::request::before(meta.write_by(), &meta.request_id, execute())
        .await
        .unwrap_or_else(|err| err.into_response(&meta.request_id));
    app.idempotency
        .settle(space, &key, &lease, &response, meta.answer_by())
        .await;
    Ok(response)
}
