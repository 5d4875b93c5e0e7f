//! The customer routes: parse the request, call storage, shape the answer.

use std::future::Future;

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::app::App;
use crate::customers::cursor::{self, Listing, Position};
use crate::customers::input;
use crate::customers::input::CustomerInput;
use crate::customers::model::{id_created_at, Customer, CustomerView};
use crate::customers::table::{position_after, Change, CustomerPage};
use crate::error::{json_response, ApiError};
use crate::idempotency::record::{fingerprint, IdempotencyKey};
use crate::idempotency::table::Begin;
use crate::json;
use crate::keys::scope::Scope;
use crate::keys::verify::Principal;
use crate::org::OrgId;
use crate::query::QueryParams;
use crate::request::{before, RequestLog, RequestMeta};
use crate::time;

pub const DEFAULT_LIST_LIMIT: usize = 50;
pub const MAX_LIST_LIMIT: usize = 100;
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A page size the API accepts: 1-100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(usize);

impl Limit {
    pub fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        let Some(text) = text else {
            return Ok(Limit(DEFAULT_LIST_LIMIT));
        };
        let invalid = || {
            ApiError::invalid_param(
                "limit",
                format!("limit must be a whole number from 1 to {MAX_LIST_LIMIT}."),
            )
        };
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.len() > 3 {
            return Err(invalid());
        }
        match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIST_LIMIT).contains(&n) => Ok(Limit(n)),
            _ => Err(invalid()),
        }
    }

    pub fn get(self) -> usize {
        self.0
    }
}

/// RFC 3339 at any precision and offset, truncated to the millisecond we store (so every
/// page's cursor names the same listing). A `+` offset that arrived unencoded reads as a
/// space after URL decoding; it is taken back as the `+` it was.
fn parse_updated_since(text: &str) -> Result<time::Timestamp, ApiError> {
    time::parse(text)
        .or_else(|| time::parse(&text.replace(' ', "+")))
        .map(time::truncate_to_millis)
        .ok_or_else(|| {
            ApiError::invalid_param(
                "updated_since",
                "updated_since must be an RFC 3339 timestamp such as 2026-06-23T00:00:00Z.",
            )
        })
}

pub(super) fn not_found() -> ApiError {
    ApiError::NotFound("No customer with this id.".into())
}

/// The `{id}` path parameter. An id that is not a UUID names no customer: 404, as for any
/// id the caller's org does not have.
pub(super) fn customer_id(req: &Request) -> Result<Uuid, ApiError> {
    req.path_parameters_ref()
        .and_then(|params| params.first("id"))
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(not_found)
}

/// What a write's body is, from its `Content-Type`: JSON, or a form, each in UTF-8 (a
/// declared charset must be UTF-8). `Err` says what is wrong (a 415).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Form,
}

const UNSUPPORTED: &str =
    "Request bodies must be application/json (or application/x-www-form-urlencoded).";
const JSON_WITHOUT_TYPE: &str =
    "The body looks like JSON but has no Content-Type: send Content-Type: application/json.";
const JSON_AS_FORM: &str = "The body looks like JSON but was sent as a form (Content-Type: \
     application/x-www-form-urlencoded, what curl -d sends by default): send \
     Content-Type: application/json.";

fn body_kind(content_type: Option<&str>) -> Result<BodyKind, &'static str> {
    let Some(content_type) = content_type else {
        return Err(UNSUPPORTED);
    };
    let mut parts = content_type.split(';');
    let mime = parts.next().unwrap_or_default().trim();
    let kind = if mime.eq_ignore_ascii_case("application/json") {
        BodyKind::Json
    } else if mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        BodyKind::Form
    } else {
        return Err(UNSUPPORTED);
    };
    for parameter in parts {
        let Some((name, value)) = parameter.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        if name.trim().eq_ignore_ascii_case("charset") && !value.eq_ignore_ascii_case("utf-8") {
            return Err("Request bodies must be UTF-8: send charset=utf-8 or no charset.");
        }
    }
    Ok(kind)
}

/// The body of a write: at most 64 KiB, JSON (an object that names each field once) or a
/// form (read into the object it stands for: `form::parse_form`), in UTF-8. The value is
/// what the idempotency fingerprint is taken over, so a form and its JSON twin match.
pub(crate) fn json_object_body(req: &Request) -> Result<(Value, Map<String, Value>), ApiError> {
    let bytes = crate::request::body_bytes(req);
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit_bytes: MAX_BODY_BYTES,
        });
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let looks_like_json = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[');
    let kind = if !bytes.is_empty() || content_type.is_some() {
        body_kind(content_type).map_err(|why| {
            ApiError::UnsupportedMediaType(if looks_like_json && content_type.is_none() {
                JSON_WITHOUT_TYPE
            } else {
                why
            })
        })?
    } else {
        BodyKind::Json
    };
    if kind == BodyKind::Form && looks_like_json {
        // `curl -d '{…}'` sends a form's Content-Type unless told otherwise.
        return Err(ApiError::UnsupportedMediaType(JSON_AS_FORM));
    }
    if kind == BodyKind::Form {
        let map = crate::form::parse_form(bytes)?;
        return Ok((Value::Object(map.clone()), map));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("A JSON object body is required."));
    }
    let value = json::parse_strict(bytes)?;
    match &value {
        Value::Object(map) => {
            let map = map.clone();
            Ok((value, map))
        }
        _ => Err(ApiError::invalid("The body must be a JSON object.")),
    }
}

/// What this caller may see of a customer (see `CustomerView`).
fn view_of(principal: &Principal) -> CustomerView {
    CustomerView {
        read: principal.has(Scope::CustomersRead),
        aml: principal.has(Scope::AmlRead),
    }
}

/// A customer as the store keeps it: whole. What the caller may see is cut from it by
/// `shaped`, the same way for a first answer and for a replay.
pub(super) fn full_customer_response(
    status: StatusCode,
    customer: &Customer,
    meta: &RequestMeta,
) -> Response<Body> {
    json_response(
        status,
        &CustomerView::FULL.render(customer),
        &meta.request_id,
    )
}

fn customer_response(
    status: StatusCode,
    customer: &Customer,
    principal: &Principal,
    meta: &RequestMeta,
) -> Response<Body> {
    json_response(
        status,
        &view_of(principal).render(customer),
        &meta.request_id,
    )
}

/// `response` as `view` may see it; the customer it names goes into the log line.
fn shaped(
    mut response: Response<Body>,
    view: CustomerView,
    log: &mut RequestLog,
) -> Response<Body> {
    let Body::Text(text) = response.body() else {
        return response;
    };
    let Ok(mut value) = serde_json::from_str::<Value>(text) else {
        return response;
    };
    if value["object"] == "customer" {
        if let Some(id) = value["id"].as_str() {
            log.customer(id);
        }
    }
    if view.restrict(&mut value) {
        *response.body_mut() = Body::Text(value.to_string());
    }
    response
}

/// Time kept after storing a completed response, to answer.
const COMPLETE_MARGIN_MILLIS: u64 = 100;

/// Runs a write under its Idempotency-Key, if it has one: the first request executes and its
/// whole response is stored; a repeat is answered from the store. Every answer, first or
/// repeat, is shaped to what this caller may see. A 5xx (or a 400 found while running)
/// releases the key for the client's retry. The write gets the id a new customer takes,
/// reserved in the record, and must finish by `meta.write_by()`, which leaves time to
/// release or complete the record before the function's deadline.
pub(super) async fn idempotent<F, Fut>(
    app: &App,
    req: &Request,
    principal: &Principal,
    meta: &RequestMeta,
    body: &Value,
    log: &mut RequestLog,
    execute: F,
) -> Result<Response<Body>, ApiError>
where
    F: FnOnce(Option<Uuid>) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let view = view_of(principal);
    if tokio::time::Instant::now() >= meta.write_by() {
        // Not even started: a write begun now could land after we answered.
        return Err(ApiError::ServiceUnavailable {
            retry_after_secs: crate::error::SERVICE_UNAVAILABLE_RETRY_AFTER_SECS,
        });
    }
    let Some(key) = IdempotencyKey::from_headers(req.headers())? else {
        let response = before(meta.write_by(), &meta.request_id, execute(None)).await?;
        return Ok(shaped(response, view, log));
    };
    let org = &principal.data_space();
    let fp = fingerprint(req.method().as_str(), req.uri().path(), body);
    let proposed = id_created_at(time::now()).to_string();
    let lease = match app
        .idempotency
        .begin(org, &key, &fp, meta.now, &proposed)
        .await?
    {
        Begin::Started(lease) => lease,
        Begin::Replay(stored) => return Ok(shaped(stored.replay(), view, log)),
        Begin::InProgress => return Err(ApiError::IdempotencyKeyInUse),
        Begin::Reused => return Err(ApiError::IdempotencyKeyReused),
    };
    let reserved = Uuid::parse_str(&lease.reserved).ok();
    let response = before(meta.write_by(), &meta.request_id, execute(reserved))
        .await
        .unwrap_or_else(|err| err.into_response(&meta.request_id));
    // A POST whose unknown external_id comes without full_name is a 400 found while
    // running: released like a 5xx, so the client can fix the body and retry the key.
    let by = meta
        .answer_by()
        .checked_sub(std::time::Duration::from_millis(COMPLETE_MARGIN_MILLIS))
        .unwrap_or_else(|| meta.answer_by());
    app.idempotency
        .settle(org, &key, &lease, &response, by)
        .await;
    Ok(shaped(response, view, log))
}

/// `POST /v1/customers`: create, or update by `external_id`.
pub async fn create(
    app: &App,
    req: &Request,
    principal: &Principal,
    meta: &RequestMeta,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let (body, object) = json_object_body(req)?;
    let input = CustomerInput::parse(&object, meta.now.date_naive())?;
    if input.external_id.is_absent() && input.full_name.is_absent() {
        return Err(ApiError::invalid_param(
            "full_name",
            "full_name is required.",
        ));
    }
    idempotent(
        app,
        req,
        principal,
        meta,
        &body,
        log,
        |reserved| async move {
            let change = app
                .customers
                .upsert(&principal.data_space(), &input, reserved)
                .await?;
            let customer = change.customer();
            let status = if matches!(change, Change::Created(_)) {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut response = full_customer_response(status, customer, meta);
            if let Ok(location) = HeaderValue::from_str(&format!("/v1/customers/{}", customer.id)) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        },
    )
    .await
}

/// `PATCH /v1/customers/{id}`
pub async fn update(
    app: &App,
    req: &Request,
    principal: &Principal,
    meta: &RequestMeta,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let id = customer_id(req)?;
    let (body, object) = json_object_body(req)?;
    let input = CustomerInput::parse(&object, meta.now.date_naive())?;
    update_one(
        app,
        req,
        principal,
        meta,
        log,
        id,
        &body,
        |customer, stamp| Ok(customer.apply(&input, stamp)),
    )
    .await
}

/// Changes one customer of the caller's data space with `change` (which says whether it
/// changed anything, or why it refuses), under the request's Idempotency-Key if it has
/// one: 404 when there is no such customer, else the whole customer, shaped to the caller.
#[allow(clippy::too_many_arguments)]
pub(super) async fn update_one<F>(
    app: &App,
    req: &Request,
    principal: &Principal,
    meta: &RequestMeta,
    log: &mut RequestLog,
    id: Uuid,
    body: &Value,
    change: F,
) -> Result<Response<Body>, ApiError>
where
    F: FnMut(&mut Customer, time::Timestamp) -> Result<bool, ApiError>,
{
    log.customer(&id.to_string());
    let space = principal.data_space();
    idempotent(app, req, principal, meta, body, log, |_| async {
        let changed = app
            .customers
            .update(&space, &id, change)
            .await?
            .ok_or_else(not_found)?;
        Ok(full_customer_response(
            StatusCode::OK,
            changed.customer(),
            meta,
        ))
    })
    .await
}

/// What a read route fetched from a data space, before anyone is known to be allowed it (a
/// warm read fetches beside authentication: `edge::speculation`). Nothing of it is logged
/// or answered until `render` has the authenticated key.
#[derive(Debug)]
pub enum Fetched {
    Customer(Customer),
    Page {
        page: CustomerPage,
        next_cursor: Value,
        limit: usize,
    },
}

/// The customer a `/v1/customers/{id}…` read names, from the data space `org` only.
pub async fn fetch_one(app: &App, req: &Request, org: OrgId) -> Result<Fetched, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let id = customer_id(req)?;
    let stored = app.customers.get(&org, &id).await?.ok_or_else(not_found)?;
    Ok(Fetched::Customer(stored.customer))
}

/// The fetched customer; its id goes into the log line.
fn fetched_customer(fetched: Fetched, log: &mut RequestLog) -> Result<Customer, ApiError> {
    let Fetched::Customer(customer) = fetched else {
        return Err(ApiError::Internal);
    };
    log.customer(&customer.id.to_string());
    Ok(customer)
}

/// `GET /v1/customers/{id}`, as the authenticated key may see it.
pub fn render_customer(
    fetched: Fetched,
    principal: &Principal,
    meta: &RequestMeta,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let customer = fetched_customer(fetched, log)?;
    Ok(customer_response(
        StatusCode::OK,
        &customer,
        principal,
        meta,
    ))
}

/// `GET /v1/customers/{id}/aml` (the route's scope is `aml:read`).
pub fn render_aml(
    fetched: Fetched,
    _principal: &Principal,
    meta: &RequestMeta,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let customer = fetched_customer(fetched, log)?;
    Ok(json_response(
        StatusCode::OK,
        &customer.aml_json(),
        &meta.request_id,
    ))
}

/// `GET /v1/customers`, fetched for `org` (a data space): newest created first; with
/// `updated_since`, oldest change first.
pub async fn fetch_page(app: &App, req: &Request, org: OrgId) -> Result<Fetched, ApiError> {
    let query = QueryParams::parse(
        req.uri().query(),
        &["limit", "cursor", "updated_since", "external_id"],
    )?;
    let limit = Limit::parse(query.get("limit"))?;
    let org = &org;
    let listing = match query.get("updated_since") {
        Some(text) => Listing::UpdatedSince(parse_updated_since(text)?),
        None => Listing::ByCreation,
    };
    let external_id = query
        .get("external_id")
        .map(input::parse_external_id_text)
        .transpose()?;
    let page = if let Some(external_id) = external_id.as_deref() {
        // At most one customer: no page follows, so no cursor is ever issued for this listing.
        if query.get("cursor").is_some() {
            return Err(ApiError::invalid_param(
                "cursor",
                "cursor does not apply to an external_id lookup.",
            ));
        }
        let found = match app.customers.find_by_external_id(org, external_id).await? {
            Some(id) => app
                .customers
                .get(org, &id)
                .await?
                .map(|stored| stored.customer),
            None => None,
        };
        let customers = found
            .into_iter()
            .filter(|c| c.external_id.as_deref() == Some(external_id))
            .filter(|c| match &listing {
                Listing::UpdatedSince(since) => c.updated_at >= *since,
                Listing::ByCreation => true,
            })
            .collect();
        CustomerPage {
            customers,
            has_more: false,
        }
    } else {
        let position = query
            .get("cursor")
            .map(|c| cursor::decode(app.cursor_key()?, c, org, &listing))
            .transpose()?;
        match (&listing, position) {
            (Listing::ByCreation, None) => {
                app.customers
                    .list_by_creation(org, limit.get(), None)
                    .await?
            }
            (Listing::ByCreation, Some(Position::Created { id })) => {
                app.customers
                    .list_by_creation(org, limit.get(), Some(&id))
                    .await?
            }
            (Listing::UpdatedSince(since), None) => {
                app.customers
                    .list_updated_since(org, since, limit.get(), None)
                    .await?
            }
            (Listing::UpdatedSince(since), Some(Position::Updated { updated_at, id })) => {
                app.customers
                    .list_updated_since(org, since, limit.get(), Some((&updated_at, &id)))
                    .await?
            }
            _ => {
                return Err(ApiError::invalid_param(
                    "cursor",
                    "cursor is not a cursor of this listing.",
                ))
            }
        }
    };
    let next_cursor = match page.customers.last() {
        Some(last) if page.has_more => {
            let by_update = matches!(listing, Listing::UpdatedSince(_));
            Value::from(cursor::encode(
                app.cursor_key()?,
                org,
                &listing,
                &position_after(last, by_update),
            ))
        }
        _ => Value::Null,
    };
    Ok(Fetched::Page {
        page,
        next_cursor,
        limit: limit.get(),
    })
}

/// The listing, as the authenticated key may see it; its customers go into the log line.
pub fn render_page(
    fetched: Fetched,
    principal: &Principal,
    meta: &RequestMeta,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let Fetched::Page {
        page,
        next_cursor,
        limit,
    } = fetched
    else {
        return Err(ApiError::Internal);
    };
    for customer in &page.customers {
        log.customer(&customer.id.to_string());
    }
    let view = view_of(principal);
    let data: Vec<Value> = page.customers.iter().map(|c| view.render(c)).collect();
    let body = json!({
        "object": "list",
        "data": data,
        "has_more": page.has_more,
        "next_cursor": next_cursor,
        "limit": limit,
    });
    Ok(json_response(StatusCode::OK, &body, &meta.request_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_bounds() {
        assert_eq!(Limit::parse(None).unwrap().get(), 50);
        assert_eq!(Limit::parse(Some("1")).unwrap().get(), 1);
        assert_eq!(Limit::parse(Some("100")).unwrap().get(), 100);
        for bad in [
            "0",
            "101",
            "-1",
            "+5",
            "5.0",
            "",
            "abc",
            "99999999999999999999999",
        ] {
            let err = Limit::parse(Some(bad)).unwrap_err();
            assert_eq!(err.param(), Some("limit"), "{bad:?}");
        }
    }

    #[test]
    fn updated_since_accepts_rfc3339_and_a_decoded_plus() {
        let expected = time::parse("2026-06-23T00:00:00Z").unwrap();
        assert_eq!(
            parse_updated_since("2026-06-23T00:00:00Z").unwrap(),
            expected
        );
        assert_eq!(
            parse_updated_since("2026-06-23T02:00:00 02:00").unwrap(),
            expected
        );
        for bad in ["2026-06-23", "yesterday", "", "2026-06-23T00:00:00"] {
            assert_eq!(
                parse_updated_since(bad).unwrap_err().param(),
                Some("updated_since"),
                "{bad:?}"
            );
        }
    }
}
