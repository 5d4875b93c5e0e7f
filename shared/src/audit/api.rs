//! `GET /v1/org/audit-events` (`org.audit`): the org's trail, newest first, filtered by
//! actor, action, target and time, as JSON pages or as CSV.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use crate::app::App;
use crate::audit::event::{csv_line, CSV_COLUMNS};
use crate::audit::log::EventQuery;
use crate::error::{json_response, ApiError, REQUEST_ID_HEADER};
use crate::members::api::{decode_cursor, encode_cursor, list_body};
use crate::members::table::Member;
use crate::query::QueryParams;
use crate::request::RequestMeta;
use crate::time;

/// Every action the trail records, for the `action` filter (an unknown one is a 400, not
/// an empty list that looks like "nobody did that").
pub const ACTIONS: &[&str] = &[
    "api_key.created",
    "api_key.updated",
    "api_key.rolled",
    "api_key.revoked",
    "api_key.leak_recorded",
    "api_key.leak_dismissed",
    "api_key.transferred",
    "api_key.expiry_notified",
    "member.invited",
    "member.role_changed",
    "member.deactivated",
    "provider_key.created",
    "provider_key.updated",
    "provider_key.rotated",
    "provider_key.verified",
    "webhook_endpoint.created",
    "webhook_endpoint.updated",
    "webhook_endpoint.deleted",
    "webhook_endpoint.secret_revealed",
    "webhook_endpoint.secret_rotated",
    "webhook_endpoint.delivery_resent",
];

/// Events one answer holds at most (JSON or CSV rows); more are a cursor (or, for CSV, a
/// `Link: <…>; rel="next"`) away.
pub const MAX_PAGE: usize = 1000;
const DEFAULT_JSON_PAGE: usize = 50;

const MAX_FILTER_CHARS: usize = 256;

pub async fn list_events(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    let params = QueryParams::parse(
        req.uri().query(),
        &[
            "limit", "cursor", "actor", "action", "target", "since", "until", "format",
        ],
    )?;
    let csv = match params.get("format") {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            return Err(ApiError::invalid_param(
                "format",
                "format must be json or csv.",
            ))
        }
    };
    // Up to 1000 either way: an audit trail is read in bulk (default 50 for JSON, a whole
    // 1000 for CSV).
    let limit = match params.get("limit") {
        None if csv => MAX_PAGE,
        None => DEFAULT_JSON_PAGE,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n) && text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                ApiError::invalid_param(
                    "limit",
                    format!("limit must be a whole number from 1 to {MAX_PAGE}."),
                )
            })?,
    };
    let filter = |name: &str| -> Result<Option<String>, ApiError> {
        match params.get(name) {
            None => Ok(None),
            Some(value) if value.is_empty() || value.chars().count() > MAX_FILTER_CHARS => {
                Err(ApiError::invalid_param(
                    name,
                    format!("{name} must be an id of 1 to {MAX_FILTER_CHARS} characters."),
                ))
            }
            Some(value) => Ok(Some(value.to_owned())),
        }
    };
    let action = filter("action")?;
    if let Some(action) = &action {
        if !ACTIONS.contains(&action.as_str()) {
            return Err(ApiError::invalid_param(
                "action",
                format!("action must be one of: {}.", ACTIONS.join(", ")),
            ));
        }
    }
    let when = |name: &str| -> Result<Option<time::Timestamp>, ApiError> {
        params
            .get(name)
            .map(|text| {
                time::parse(text).ok_or_else(|| {
                    ApiError::invalid_param(
                        name,
                        format!("{name} must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z."),
                    )
                })
            })
            .transpose()
    };
    let since = when("since")?;
    let until = when("until")?;
    if let (Some(since), Some(until)) = (since, until) {
        if since >= until {
            return Err(ApiError::invalid_param(
                "until",
                "until must be later than since.",
            ));
        }
    }
    let cursor = decode_cursor(params.get("cursor"))?;
    // A cursor is a place in this org's chain: `<at>#<seq>`, nothing else.
    if cursor.as_deref().is_some_and(|c| !is_sort_key(c)) {
        return Err(ApiError::invalid_param(
            "cursor",
            "cursor is not one this listing gave out; start again without it.",
        ));
    }
    // A cursor is a place within the same range: the low end of `since`, the high end
    // of `until` (a cursor from another range would be a DynamoDB validation error).
    if let Some(cursor) = cursor.as_deref() {
        let after_since =
            since.is_none_or(|at| cursor >= format!("{}#", time::format(&at)).as_str());
        let before_until =
            until.is_none_or(|at| cursor < format!("{}#", time::format(&at)).as_str());
        if !(after_since && before_until) {
            return Err(ApiError::invalid_param(
                "cursor",
                "cursor is not one this listing gave out for these filters; start again without it.",
            ));
        }
    }
    let query = EventQuery {
        actor: filter("actor")?,
        action,
        target: filter("target")?,
        since,
        until,
        cursor,
    };
    let (events, next) = app.audit.list(&member.org_id, &query, limit).await?;
    let data = events
        .iter()
        .map(|e| e.public_json())
        .collect::<Result<Vec<Value>, _>>()?;
    let next = next.map(|sk| encode_cursor(&sk));
    if csv {
        return Ok(csv_response(&data, next.as_deref(), req, meta));
    }
    Ok(json_response(
        StatusCode::OK,
        &list_body(data, next, "/v1/org/audit-events"),
        &meta.request_id,
    ))
}

fn is_sort_key(text: &str) -> bool {
    match text.split_once('#') {
        Some((at, seq)) => {
            time::parse(at).is_some() && seq.len() == 12 && seq.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// The events as CSV (a header row, then one row per event, formula-safe cells), with the
/// next page's URL in a `Link` header when there is one.
fn csv_response(
    events: &[Value],
    next: Option<&str>,
    req: &Request,
    meta: &RequestMeta,
) -> Response<Body> {
    let mut text = CSV_COLUMNS.join(",");
    text.push_str("\r\n");
    for event in events {
        text.push_str(&csv_line(event));
        text.push_str("\r\n");
    }
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"audit-events.csv\""),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&meta.request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    if let Some(cursor) = next {
        // The same filters, the next cursor.
        let kept: Vec<(String, String)> =
            form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                .filter(|(name, _)| name != "cursor")
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect();
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &kept {
            query.append_pair(name, value);
        }
        query.append_pair("cursor", cursor);
        if let Ok(value) = HeaderValue::from_str(&format!(
            "</v1/org/audit-events?{}>; rel=\"next\"",
            query.finish()
        )) {
            headers.insert(header::LINK, value);
        }
    }
    response
}
