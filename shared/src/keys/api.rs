//! The key-facing route: `GET /v1/me`, what a key says about itself (Zapier's connection
//! test and a CI job's smoke check call it). Never the hash, never the plaintext.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::error::{json_response, ApiError};
use crate::keys::verify::Principal;
use crate::query::QueryParams;
use crate::request::RequestMeta;
use crate::time;

/// `GET /v1/me`: any valid key, no scope.
pub fn me(
    req: &Request,
    principal: &Principal,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let key = &principal.key;
    let body = json!({
        "object": "api_key",
        "id": key.id,
        "label": key.label,
        "prefix": key.prefix,
        "last4": key.last4,
        "scopes": key.scopes,
        "mode": key.mode().as_str(),
        "org": {"id": key.org_id},
        "expires_at": key.expires_at.as_ref().map(time::format),
        "rate_limit": {"requests_per_second": key.rate_limit_rps},
    });
    Ok(json_response(StatusCode::OK, &body, &meta.request_id))
}
