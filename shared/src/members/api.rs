//! The member API (`/v1/org/…`): a signed-in member manages the org's keys and members.
//! The edge reads the member record first (role and status as they are now) and checks the
//! route's permission (`Route::permission`); objects of another org are as unknown as
//! missing ones (404).

use std::collections::BTreeSet;

use base64::Engine;
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{json, Map, Value};

use crate::app::App;
use crate::audit::{Audited, Author, Change};
use crate::customers::api::{json_object_body, Limit};
use crate::error::{json_response, ApiError};
use crate::keys::ip_allowlist::IpAllowlist;
use crate::keys::scope::Scope;
use crate::keys::table::{
    ApiKeyRecord, ApiKeysTable, KeyEdit, NewApiKey, MAX_LABEL_CHARS, MAX_RATE_LIMIT_RPS,
};
use crate::members::role::{Permission, Role};
use crate::members::table::{Member, MemberChange, MemberError, MemberStatus, MAX_MEMBER_ID_CHARS};
use crate::org::Mode;
use crate::query::QueryParams;
use crate::request::RequestMeta;
use crate::storage::TransactFailure;
use crate::time::{self, Timestamp};

/// The longest grace a rolled key keeps working: 7 days.
pub const MAX_ROLL_GRACE_SECS: i64 = 7 * 24 * 60 * 60;

fn ok(status: StatusCode, body: &Value, meta: &RequestMeta) -> Result<Response<Body>, ApiError> {
    Ok(json_response(status, body, &meta.request_id))
}

pub(crate) fn path_id(req: &Request) -> Option<String> {
    req.path_parameters_ref()
        .and_then(|params| params.first("id"))
        .map(str::to_owned)
}

fn key_not_found() -> ApiError {
    ApiError::NotFound("No API key with this id in your org.".into())
}

fn member_not_found() -> ApiError {
    ApiError::NotFound("No member with this id in your org.".into())
}

impl From<MemberError> for ApiError {
    fn from(err: MemberError) -> Self {
        match err {
            MemberError::NotFound => member_not_found(),
            MemberError::Exists => ApiError::conflict("A member with this email already exists."),
            MemberError::LastAdministrator => ApiError::conflict(
                "This is the org's last active administrator: make another member an administrator first.",
            ),
            MemberError::Deactivated => {
                ApiError::conflict("This member is deactivated; their role can't change.")
            }
            MemberError::Contended => contended(),
            MemberError::Storage(e) => e.into(),
        }
    }
}

impl From<crate::members::pool::PoolError> for ApiError {
    fn from(err: crate::members::pool::PoolError) -> Self {
        use crate::members::pool::PoolError;
        match err {
            PoolError::Exists => ApiError::conflict("A member with this email already exists."),
            PoolError::Refused(message) => ApiError::invalid_param("email", message),
            PoolError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "user pool unavailable");
                ApiError::ServiceUnavailable {
                    retry_after_secs: crate::error::SERVICE_UNAVAILABLE_RETRY_AFTER_SECS,
                }
            }
            PoolError::NoSuchUser
            | PoolError::NotAuthorized
            | PoolError::Disabled
            | PoolError::Other(_) => {
                tracing::error!(error = %err, "user pool error");
                ApiError::Internal
            }
        }
    }
}

/// Routes whose answer holds a key's plaintext take no Idempotency-Key.
fn refuse_idempotency_key(req: &Request) -> Result<(), ApiError> {
    crate::idempotency::refuse_key(
        req,
        "This route does not take an Idempotency-Key: its answer holds a key's plaintext, \
         which is never stored, so it can't be replayed. A retry makes another key; list \
         the keys to find one made by an attempt whose answer was lost, and revoke it.",
    )
}

/// Runs a member-API write under its Idempotency-Key, if it has one (see
/// `idempotency::once`). Keys are the member's own: another member's identical key is
/// another request.
pub(crate) async fn once<F, Fut>(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
    body: &Value,
    execute: F,
) -> Result<Response<Body>, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Response<Body>, ApiError>>,
{
    let owner = format!("member:{}", member.id);
    crate::idempotency::once(app, req, &member.org_id, Some(&owner), meta, body, execute).await
}

/// The body of a write whose body is optional (revoke, roll, deactivate): nothing, or a
/// JSON object.
pub(crate) fn optional_body(req: &Request) -> Result<Map<String, Value>, ApiError> {
    let empty = match req.body() {
        Body::Empty => true,
        Body::Text(text) => text.trim().is_empty(),
        Body::Binary(bytes) => bytes.iter().all(u8::is_ascii_whitespace),
        _ => true,
    };
    if empty {
        return Ok(Map::new());
    }
    Ok(json_object_body(req)?.1)
}

pub(crate) fn only_fields(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match body.keys().find(|name| !allowed.contains(&name.as_str())) {
        Some(name) if allowed.is_empty() => Err(ApiError::invalid_param(
            name.clone(),
            format!("Unknown field {name:?}; this route takes no fields: send {{}} or no body."),
        )),
        Some(name) => Err(ApiError::invalid_param(
            name.clone(),
            format!(
                "Unknown field {name:?}; this route takes: {}.",
                allowed.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

pub fn parse_label(value: &Value) -> Result<String, ApiError> {
    let bad = || {
        ApiError::invalid_param(
            "label",
            format!("label must be 1-{MAX_LABEL_CHARS} characters, without control or invisible characters."),
        )
    };
    let text = value.as_str().ok_or_else(bad)?.trim();
    if text.is_empty()
        || text.chars().count() > MAX_LABEL_CHARS
        || crate::customers::input::has_forbidden_chars(text)
    {
        return Err(bad());
    }
    Ok(text.to_owned())
}

fn parse_scopes(value: &Value) -> Result<BTreeSet<Scope>, ApiError> {
    let bad = |message: String| ApiError::invalid_param("scopes", message);
    let list = value
        .as_array()
        .ok_or_else(|| bad("scopes must be a list such as [\"customers:read\"].".into()))?;
    if list.is_empty() {
        return Err(bad("A key needs at least one scope.".into()));
    }
    list.iter()
        .map(|scope| {
            scope
                .as_str()
                .ok_or_else(|| bad("Each scope is a string.".into()))?
                .parse::<Scope>()
                .map_err(|e| bad(format!("{e}.")))
        })
        .collect()
}

fn parse_expiry(value: &Value, now: Timestamp) -> Result<Timestamp, ApiError> {
    let at = value.as_str().and_then(time::parse).ok_or_else(|| {
        ApiError::invalid_param(
            "expires_at",
            "expires_at must be an RFC 3339 timestamp such as 2027-01-31T00:00:00Z.",
        )
    })?;
    let at = time::truncate_to_millis(at);
    if at <= now {
        return Err(ApiError::invalid_param(
            "expires_at",
            "expires_at must be in the future.",
        ));
    }
    Ok(at)
}

fn parse_allowlist(value: &Value) -> Result<IpAllowlist, ApiError> {
    if value.is_null() {
        return Ok(IpAllowlist::default());
    }
    let bad = |message: String| ApiError::invalid_param("ip_allowlist", message);
    let list = value.as_array().ok_or_else(|| {
        bad("ip_allowlist must be a list of CIDRs such as [\"203.0.113.0/24\"].".into())
    })?;
    if list.len() > 100 {
        return Err(bad("ip_allowlist takes at most 100 entries.".into()));
    }
    let entries = list
        .iter()
        .map(|entry| {
            entry
                .as_str()
                .ok_or_else(|| bad("Each ip_allowlist entry is a string.".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    IpAllowlist::parse(entries).map_err(|e| {
        // A sentence: closed with a period unless it ends as a question already.
        let said = e.to_string();
        bad(if said.ends_with(['.', '?']) {
            said
        } else {
            format!("{said}.")
        })
    })
}

fn parse_rate_limit(value: &Value) -> Result<u32, ApiError> {
    let bad = || {
        ApiError::invalid_param(
            "rate_limit",
            format!("rate_limit must be {{\"requests_per_second\": N}} with N a whole number from 1 to {MAX_RATE_LIMIT_RPS}."),
        )
    };
    let object = value.as_object().ok_or_else(bad)?;
    if object.len() != 1 {
        return Err(bad());
    }
    object
        .get("requests_per_second")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| (1..=MAX_RATE_LIMIT_RPS).contains(n))
        .ok_or_else(bad)
}

/// 403 `forbidden_permission` naming what the member's role lacks for `scopes`.
fn within_role(member: &Member, scopes: &BTreeSet<Scope>, param: &str) -> Result<(), ApiError> {
    let lacking: Vec<String> = scopes
        .iter()
        .filter(|scope| !member.role.covers(**scope))
        .map(|scope| format!("{} (for {scope})", Permission::backing(*scope)))
        .collect();
    if lacking.is_empty() {
        return Ok(());
    }
    Err(ApiError::ForbiddenPermission {
        message: format!(
            "A key can't do more than its creator's role allows: your role ({}) lacks {}.",
            member.role,
            lacking.join(", ")
        ),
        param: Some(param.to_owned()),
    })
}

/// A listing position: opaque to clients, a place in the caller's own org's listing (the
/// org comes from the session, so a cursor can't reach another org).
pub(crate) fn encode_cursor(position: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(position)
}

pub(crate) fn decode_cursor(cursor: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|position| !position.is_empty())
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid_param(
                "cursor",
                "cursor is not one this listing gave out; start again without it.",
            )
        })
}

/// The position of an item in a newest-first listing: positions increase as `created_at`
/// goes back, ties in id order.
pub(crate) fn newest_first(created_at: &Timestamp, id: &str) -> String {
    format!("{:020}|{id}", i64::MAX - created_at.timestamp_millis())
}

/// One page of `items` (in listing order, each with its position, positions increasing
/// along the listing), after `after`.
pub(crate) fn page<T>(
    items: Vec<(String, T)>,
    after: Option<&str>,
    limit: Limit,
) -> (Vec<T>, Option<String>) {
    let mut rest: Vec<(String, T)> = items
        .into_iter()
        .filter(|(position, _)| after.is_none_or(|after| position.as_str() > after))
        .collect();
    let has_more = rest.len() > limit.get();
    rest.truncate(limit.get());
    let next = has_more.then(|| encode_cursor(&rest.last().expect("a full page").0));
    (rest.into_iter().map(|(_, item)| item).collect(), next)
}

pub(crate) fn list_body(data: Vec<Value>, next: Option<String>, url: &str) -> Value {
    json!({
        "object": "list",
        "url": url,
        "data": data,
        "has_more": next.is_some(),
        "next_cursor": next,
    })
}

/// `GET /v1/org/me`: the member, their org and permissions (what the page shows and
/// enables), and the scopes their role lets them grant a key.
pub fn me(req: &Request, member: &Member, meta: &RequestMeta) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let mut body = member.to_json();
    body["org"] = json!({"id": member.org_id});
    body["grantable_scopes"] = json!(member.role.grantable_scopes());
    ok(StatusCode::OK, &body, meta)
}

/// The key object of the member API, with the creator's and owner's emails.
fn key_json(record: &ApiKeyRecord, now: Timestamp) -> Value {
    let mut body = record.to_public_json(now);
    if let Some(object) = body.as_object_mut() {
        object.shift_remove("org");
    }
    body
}

/// The org's key `{id}`, or 404.
async fn org_key(
    keys: &ApiKeysTable,
    member: &Member,
    req: &Request,
) -> Result<ApiKeyRecord, ApiError> {
    let id = path_id(req).ok_or_else(key_not_found)?;
    if !id.starts_with("key_") || id.len() > 64 {
        return Err(key_not_found());
    }
    keys.find_by_id(&member.org_id, &id)
        .await?
        .ok_or_else(key_not_found)
}

/// `GET /v1/org/api-keys`: newest first; `status`, `created_by` and `leak` filter.
pub async fn list_keys(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    let query = QueryParams::parse(
        req.uri().query(),
        &["limit", "cursor", "status", "created_by", "leak"],
    )?;
    let limit = Limit::parse(query.get("limit"))?;
    let after = decode_cursor(query.get("cursor"))?;
    let status = query.get("status");
    if let Some(status) = status {
        if !["active", "expired", "revoked"].contains(&status) {
            return Err(ApiError::invalid_param(
                "status",
                "status must be active, expired or revoked.",
            ));
        }
    }
    let created_by = query.get("created_by");
    if created_by.is_some_and(|id| id.is_empty() || id.len() > MAX_MEMBER_ID_CHARS) {
        return Err(ApiError::invalid_param(
            "created_by",
            format!("created_by must be a member id (1-{MAX_MEMBER_ID_CHARS} characters)."),
        ));
    }
    // `reported`: keys a secret scanner reported as leaked; `undismissed`: those whose
    // notice no administrator has dismissed yet (the page's banners).
    let leak = query.get("leak");
    if leak.is_some_and(|l| !["reported", "undismissed"].contains(&l)) {
        return Err(ApiError::invalid_param(
            "leak",
            "leak must be reported or undismissed.",
        ));
    }
    let mut keys = app.keys.list_for_org(&member.org_id).await?;
    keys.retain(|key| {
        status.is_none_or(|s| key.status(meta.now) == s)
            && created_by.is_none_or(|id| key.created_by == id)
            && match leak {
                None => true,
                Some("reported") => key.leak.is_some(),
                Some(_) => key.leak.as_ref().is_some_and(|l| l.dismissed_at.is_none()),
            }
    });
    // Newest first: positions count down from the newest creation time.
    keys.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    let positioned = keys
        .into_iter()
        .map(|key| (newest_first(&key.created_at, &key.id), key))
        .collect();
    let (keys, next) = page(positioned, after.as_deref(), limit);
    let data = keys.iter().map(|key| key_json(key, meta.now)).collect();
    ok(
        StatusCode::OK,
        &list_body(data, next, "/v1/org/api-keys"),
        meta,
    )
}

/// The transaction that stores a member's new key: the member's record must still have
/// the role it was read with (a key is never made under a role its creator just lost).
/// `also` are further items of the same transaction; `also_refused` is the 409's message
/// when one of their conditions fails.
async fn store_member_key(
    app: &App,
    member: &Member,
    meta: &RequestMeta,
    record: &ApiKeyRecord,
    changes: Vec<Change>,
    also: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    also_refused: &str,
) -> Result<(), ApiError> {
    match transact_member_key(app, member, meta, record, changes, also).await {
        Ok(()) => Ok(()),
        Err(TransactFailure::Conditions(failed)) if failed.iter().any(|i| *i >= 2) => {
            Err(ApiError::conflict(also_refused))
        }
        Err(TransactFailure::Conditions(_)) => Err(ApiError::conflict(
            "Your role or status changed while the key was being made; try again.",
        )),
        Err(TransactFailure::Contended) => Err(contended()),
        Err(TransactFailure::Storage(e)) => Err(e.into()),
    }
}

/// The member's record unchanged, the new key, `also`, and the change's audit event, as
/// one transaction. Two keys made at once by one member touch the same member item, and
/// every change of the org moves its audit head: a conflict there is tried again
/// (`AuditLog::commit`), not refused.
async fn transact_member_key(
    app: &App,
    member: &Member,
    meta: &RequestMeta,
    record: &ApiKeyRecord,
    changes: Vec<Change>,
    also: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
) -> Result<(), TransactFailure> {
    let hash = hex::encode(record.key_hash.as_bytes());
    let mut items = vec![
        app.members
            .unchanged_with_key(member, &hash)
            .map_err(TransactFailure::Storage)?,
        app.keys
            .put_new_item(record)
            .map_err(TransactFailure::Storage)?,
    ];
    items.extend(also);
    app.audit
        .commit(
            &member.org_id,
            &Author::member(member, meta),
            &changes,
            items,
            "TransactWriteItems member key",
        )
        .await
        .map(drop)
}

fn issued_response(
    issued: &crate::keys::table::IssuedKey,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    let mut body = key_json(&issued.record, meta.now);
    body["key"] = Value::String(issued.token.expose_secret().to_owned());
    let mut response = json_response(StatusCode::CREATED, &body, &meta.request_id);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/org/api-keys/{}", issued.record.id)) {
        response.headers_mut().insert("location", location);
    }
    Ok(response)
}

/// `POST /v1/org/api-keys`: `{label, scopes, expires_at?, ip_allowlist?, rate_limit?,
/// mode?}` → 201 with the plaintext, this once.
pub async fn create_key(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    refuse_idempotency_key(req)?;
    QueryParams::parse(req.uri().query(), &[])?;
    let (_, body) = json_object_body(req)?;
    only_fields(
        &body,
        &[
            "label",
            "scopes",
            "expires_at",
            "ip_allowlist",
            "rate_limit",
            "mode",
        ],
    )?;
    let label = parse_label(body.get("label").ok_or_else(|| {
        ApiError::invalid_param("label", "label is required: say where the key is used.")
    })?)?;
    let scopes = parse_scopes(body.get("scopes").ok_or_else(|| {
        ApiError::invalid_param("scopes", "scopes is required, e.g. [\"customers:read\"].")
    })?)?;
    let expires_at = match body.get("expires_at") {
        None | Some(Value::Null) => None,
        Some(value) => Some(parse_expiry(value, meta.now)?),
    };
    let ip_allowlist = match body.get("ip_allowlist") {
        None => IpAllowlist::default(),
        Some(value) => parse_allowlist(value)?,
    };
    let rate_limit = match body.get("rate_limit") {
        None | Some(Value::Null) => crate::keys::table::DEFAULT_RATE_LIMIT_RPS,
        Some(value) => parse_rate_limit(value)?,
    };
    let mode = match body.get("mode") {
        None | Some(Value::Null) => Mode::Live,
        Some(Value::String(text)) => Mode::parse(text)
            .ok_or_else(|| ApiError::invalid_param("mode", "mode must be \"live\" or \"test\"."))?,
        Some(_) => {
            return Err(ApiError::invalid_param(
                "mode",
                "mode must be \"live\" or \"test\".",
            ))
        }
    };
    within_role(member, &scopes, "scopes")?;
    let new = NewApiKey {
        org_id: member.org_id.clone(),
        label,
        scopes,
        expires_at,
        ip_allowlist,
        created_by: member.id.clone(),
        created_by_email: Some(member.email.clone()),
        rate_limit_rps: rate_limit,
        rolled_from: None,
        mode,
    };
    let issued = ApiKeysTable::prepare(new, time::now())?;
    let change = issued.record.audit_created("api_key.created");
    store_member_key(
        app,
        member,
        meta,
        &issued.record,
        vec![change],
        Vec::new(),
        "",
    )
    .await?;
    issued_response(&issued, meta)
}

/// `GET /v1/org/api-keys/{id}`.
pub async fn get_key(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let key = org_key(&app.keys, member, req).await?;
    ok(StatusCode::OK, &key_json(&key, meta.now), meta)
}

/// `PATCH /v1/org/api-keys/{id}`: `label`, `ip_allowlist`, `rate_limit`, `expires_at`
/// (only earlier). Scopes never change: roll the key instead.
pub async fn update_key(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let (_, body) = json_object_body(req)?;
    if body.contains_key("scopes") {
        return Err(ApiError::invalid_param(
            "scopes",
            "A key's scopes never change (a roll keeps them too): create a key with the scopes you need, move the integration to it, then revoke this one.",
        ));
    }
    only_fields(
        &body,
        &["label", "ip_allowlist", "rate_limit", "expires_at"],
    )?;
    let fingerprinted = Value::Object(body.clone());
    once(app, req, member, meta, &fingerprinted, || async {
    let key = org_key(&app.keys, member, req).await?;
    let mut edit = KeyEdit::default();
    if let Some(value) = body.get("label") {
        edit.label = Some(parse_label(value)?);
    }
    if let Some(value) = body.get("ip_allowlist") {
        edit.ip_allowlist = Some(parse_allowlist(value)?);
    }
    if let Some(value) = body.get("rate_limit") {
        edit.rate_limit_rps = Some(parse_rate_limit(value)?);
    }
    if let Some(value) = body.get("expires_at") {
        let at = parse_expiry(value, meta.now)?;
        if key.expires_at.is_some_and(|current| at >= current) {
            return Err(ApiError::invalid_param(
                "expires_at",
                "expires_at can only move earlier than the key's current expiry.",
            ));
        }
        edit.expires_at = Some(at);
    }
    if key.status(meta.now) != "active" {
        return Err(ApiError::conflict(
            "Revoked and expired keys can't be changed.",
        ));
    }
    if let Some(successor) = &key.rolled_to {
        return Err(ApiError::conflict(format!(
            "This key was rolled to {successor} and ends with its grace period; change that key instead."
        )));
    }
    let author = Author::member(member, meta);
    match app
        .keys
        .edit_audited(&app.audit, &author, &key, &edit, time::now())
        .await?
    {
        Some(updated) => ok(StatusCode::OK, &key_json(&updated, meta.now), meta),
        None => Err(ApiError::conflict(
            "The key was revoked, rolled or expired, or had its expiry moved, meanwhile; read it again.",
        )),
    }
    })
    .await
}

/// `POST /v1/org/api-keys/{id}/revoke`: now; repeating it is a no-op 200.
pub async fn revoke_key(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    change_key(app, req, member, meta, |key| async move {
        let author = Author::member(member, meta);
        Ok(app
            .keys
            .revoke_audited(&app.audit, &author, &key, &member.id, time::now())
            .await?)
    })
    .await
}

/// `POST /v1/org/api-keys/{id}/dismiss-leak`: hides the page's leak banner for the key,
/// for every member (the leak itself stays on the key's record). A key never reported as
/// leaked is a 409; dismissing twice keeps the first dismissal.
pub async fn dismiss_leak(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    change_key(app, req, member, meta, |key| async move {
        let author = Author::member(member, meta);
        app.keys
            .dismiss_leak_audited(&app.audit, &author, &key, &member.id, time::now())
            .await?
            .ok_or_else(|| ApiError::conflict("This key has not been reported as leaked."))
    })
    .await
}

/// A bodiless change of the org's key `{id}` (no query, no body or `{}`, Idempotency-Key
/// honoured): `change` gets the key as read and answers it as changed.
async fn change_key<'a, F, Fut>(
    app: &'a App,
    req: &'a Request,
    member: &'a Member,
    meta: &'a RequestMeta,
    change: F,
) -> Result<Response<Body>, ApiError>
where
    F: FnOnce(ApiKeyRecord) -> Fut,
    Fut: std::future::Future<Output = Result<ApiKeyRecord, ApiError>>,
{
    QueryParams::parse(req.uri().query(), &[])?;
    let body = optional_body(req)?;
    only_fields(&body, &[])?;
    once(app, req, member, meta, &Value::Object(body), || async {
        let key = org_key(&app.keys, member, req).await?;
        let changed = change(key).await?;
        ok(StatusCode::OK, &key_json(&changed, meta.now), meta)
    })
    .await
}

/// `POST /v1/org/api-keys/{id}/roll`: `{expire_old_in_seconds: 0-604800}` (default 0) →
/// 201 with a new key (same label, scopes, allowlist and limit; `rolled_from`); the old
/// one expires then. The member needs the key's scopes as well as `org.api-keys`.
pub async fn roll_key(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    refuse_idempotency_key(req)?;
    QueryParams::parse(req.uri().query(), &[])?;
    let body = optional_body(req)?;
    only_fields(&body, &["expire_old_in_seconds"])?;
    let grace = match body.get("expire_old_in_seconds") {
        None | Some(Value::Null) => 0,
        Some(value) => value
            .as_i64()
            .filter(|secs| (0..=MAX_ROLL_GRACE_SECS).contains(secs))
            .ok_or_else(|| {
                ApiError::invalid_param(
                    "expire_old_in_seconds",
                    format!("expire_old_in_seconds must be a whole number from 0 to {MAX_ROLL_GRACE_SECS} (7 days)."),
                )
            })?,
    };
    let old = org_key(&app.keys, member, req).await?;
    within_role(member, &old.scopes, "scopes")?;
    if old.status(meta.now) != "active" || old.rolled_to.is_some() {
        return Err(ApiError::conflict(
            "Only an active key that has not been rolled can be rolled.",
        ));
    }
    let now = time::now();
    let new = NewApiKey {
        org_id: member.org_id.clone(),
        label: old.label.clone(),
        scopes: old.scopes.clone(),
        // A key meant to end keeps its end: rolling is no way around an expiry.
        expires_at: old.expires_at,
        ip_allowlist: old.ip_allowlist.clone(),
        created_by: member.id.clone(),
        created_by_email: Some(member.email.clone()),
        rate_limit_rps: old.rate_limit_rps,
        rolled_from: Some(old.id.clone()),
        // The successor of a test key is a test key: rolling never changes what a key reaches.
        mode: old.mode(),
    };
    let issued = ApiKeysTable::prepare(new, now)?;
    let until = now + chrono::Duration::seconds(grace);
    let roll = app.keys.roll_item(&old, &issued.record.id, until, now)?;
    // One event for the roll: the old key's successor and its new end.
    let mut rolled = old.clone();
    rolled.rolled_to = Some(issued.record.id.clone());
    rolled.expires_at = Some(old.expires_at.map_or(until, |at| at.min(until)));
    // Two events, one transaction: the old key rolled (its successor, its new end), and
    // the successor created (rolled_from), so each key's history starts where it should.
    let changes = vec![
        old.audit_change("api_key.rolled", &rolled),
        issued.record.audit_created("api_key.created"),
    ];
    store_member_key(
        app,
        member,
        meta,
        &issued.record,
        changes,
        vec![roll],
        "The key was revoked, expired or rolled meanwhile; read it again.",
    )
    .await?;
    issued_response(&issued, meta)
}

/// `GET /v1/org/api-keys/{id}/requests`: the key's request log, newest first.
pub async fn key_requests(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    let query = QueryParams::parse(
        req.uri().query(),
        &["limit", "cursor", "since", "until", "status", "customer_id"],
    )?;
    let limit = Limit::parse(query.get("limit"))?;
    let after = decode_cursor(query.get("cursor"))?;
    let at = |name: &str| -> Result<Option<Timestamp>, ApiError> {
        query
            .get(name)
            .map(|text| {
                time::parse(text)
                    .or_else(|| time::parse(&text.replace(' ', "+")))
                    .map(time::truncate_to_millis)
                    .ok_or_else(|| {
                        ApiError::invalid_param(
                            name,
                            format!("{name} must be an RFC 3339 timestamp such as 2026-11-23T00:00:00Z."),
                        )
                    })
            })
            .transpose()
    };
    let since = at("since")?;
    let until = at("until")?;
    let status = query
        .get("status")
        .map(|text| {
            status_range(text).ok_or_else(|| {
                ApiError::invalid_param(
                    "status",
                    "status must be an HTTP status code such as 403, or a class such as 4xx.",
                )
            })
        })
        .transpose()?;
    let customer_id = query
        .get("customer_id")
        .map(|text| {
            uuid::Uuid::parse_str(text)
                .map(|id| id.to_string())
                .map_err(|_| {
                    ApiError::invalid_param("customer_id", "customer_id must be a customer id.")
                })
        })
        .transpose()?;
    let key = org_key(&app.keys, member, req).await?;
    let log = &app.request_log;
    let filter = crate::request_log::table::RequestFilter {
        since,
        until,
        before_position: after,
        status,
        customer_id,
    };
    let (records, next) = log
        .page_for_key(&member.org_id, &key.id, &filter, limit.get())
        .await?;
    let data = records.iter().map(|r| r.to_json()).collect();
    let url = format!("/v1/org/api-keys/{}/requests", key.id);
    ok(
        StatusCode::OK,
        &list_body(data, next.map(|p| encode_cursor(&p)), &url),
        meta,
    )
}

/// A request-log status filter: one code (`403` → 403..=403) or a class (`4xx` → 400..=499).
fn status_range(text: &str) -> Option<(u16, u16)> {
    match text.as_bytes() {
        [class @ b'1'..=b'5', b'x', b'x'] => {
            let low = u16::from(class - b'0') * 100;
            Some((low, low + 99))
        }
        [b'1'..=b'5', b'0'..=b'9', b'0'..=b'9'] => text.parse().ok().map(|code| (code, code)),
        _ => None,
    }
}

/// `GET /v1/org/members`: by email.
pub async fn list_members(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    let query = QueryParams::parse(req.uri().query(), &["limit", "cursor", "status", "role"])?;
    let limit = Limit::parse(query.get("limit"))?;
    let after = decode_cursor(query.get("cursor"))?;
    let status = query.get("status");
    if status.is_some_and(|s| s != "active" && s != "deactivated") {
        return Err(ApiError::invalid_param(
            "status",
            "status must be active or deactivated.",
        ));
    }
    let role = query
        .get("role")
        .map(|r| {
            r.parse::<Role>()
                .map_err(|e| ApiError::invalid_param("role", format!("{e}.")))
        })
        .transpose()?;
    let mut members = app.members.list(&member.org_id).await?;
    members.retain(|m| {
        status.is_none_or(|s| m.status.as_str() == s) && role.is_none_or(|r| m.role == r)
    });
    let positioned = members
        .into_iter()
        .map(|m| (format!("{}\n{}", m.email, m.id), m))
        .collect();
    let (members, next) = page(positioned, after.as_deref(), limit);
    let data = members.iter().map(Member::to_json).collect();
    ok(
        StatusCode::OK,
        &list_body(data, next, "/v1/org/members"),
        meta,
    )
}

fn parse_role(body: &Map<String, Value>) -> Result<Role, ApiError> {
    body.get("role")
        .ok_or_else(|| ApiError::invalid_param("role", "role is required."))?
        .as_str()
        .ok_or_else(|| ApiError::invalid_param("role", "role must be a string."))?
        .parse::<Role>()
        .map_err(|e| ApiError::invalid_param("role", format!("{e}.")))
}

/// `POST /v1/org/members`: `{email, role}` → the pool user is created (the pool emails the
/// temporary password) and the member added.
pub async fn invite_member(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let (_, body) = json_object_body(req)?;
    only_fields(&body, &["email", "role"])?;
    let email = crate::customers::input::parse_email(
        body.get("email")
            .ok_or_else(|| ApiError::invalid_param("email", "email is required."))?,
    )?
    .to_lowercase();
    let role = parse_role(&body)?;
    once(app, req, member, meta, &Value::Object(body), || async {
        let author = Author::member(member, meta);
        let invited =
            add_member(app, &author, &member.org_id, &email, role, &member.id, None).await?;
        ok(StatusCode::CREATED, &invited.to_json(), meta)
    })
    .await
}

/// Creates the pool user (or finds the one an earlier, interrupted attempt made) and the
/// member record. An email that is already a member, of any org, is a 409.
pub async fn add_member(
    app: &App,
    author: &Author,
    org: &crate::org::OrgId,
    email: &str,
    role: Role,
    invited_by: &str,
    temporary_password: Option<&str>,
) -> Result<Member, ApiError> {
    let pool = app.pool()?;
    let sub = match pool.create_user(email, temporary_password).await {
        Ok(sub) => sub,
        Err(crate::members::pool::PoolError::Exists) => {
            let sub = pool.sub_of(email).await?.ok_or(ApiError::Internal)?;
            if app.members.get(&sub).await?.is_some() {
                return Err(MemberError::Exists.into());
            }
            sub
        }
        Err(e) => return Err(e.into()),
    };
    add_member_record(app, author, org, &sub, email, role, invited_by).await
}

/// The member record of pool user `sub`, active, in `org` with `role`, and its
/// `member.invited` event by `author`.
pub async fn add_member_record(
    app: &App,
    author: &Author,
    org: &crate::org::OrgId,
    sub: &str,
    email: &str,
    role: Role,
    invited_by: &str,
) -> Result<Member, ApiError> {
    let member = Member {
        id: sub.to_owned(),
        org_id: org.clone(),
        email: email.to_owned(),
        role,
        status: MemberStatus::Active,
        created_at: time::now(),
        invited_by: Some(invited_by.to_owned()),
        deactivated_at: None,
        key_hashes: BTreeSet::new(),
    };
    app.members.add_audited(&app.audit, author, &member).await?;
    Ok(member)
}

/// `PATCH /v1/org/members/{id}`: `{role}`, not one's own. Lowering a role takes from the
/// member's keys, at once, the scopes the new role doesn't cover.
pub async fn update_member(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let (_, body) = json_object_body(req)?;
    only_fields(&body, &["role"])?;
    let role = parse_role(&body)?;
    let id = path_id(req).ok_or_else(member_not_found)?;
    if id == member.id {
        return Err(ApiError::ForbiddenPermission {
            message: "You can't change your own role; another member with org.members can.".into(),
            param: Some("role".into()),
        });
    }
    once(app, req, member, meta, &Value::Object(body), || async {
        let author = Author::member(member, meta);
        let updated = change_role(app, &author, &member.org_id, &id, role).await?;
        ok(StatusCode::OK, &updated.to_json(), meta)
    })
    .await
}

/// Keys a member's change may carry: a transaction holds 100 items, and besides the
/// member, the org's counter, an heir and the audit head, each key takes two (its update
/// and its event) and the member's own event one.
const MAX_KEYS_PER_CHANGE: usize = 47;

/// Attempts at a member's change that met a concurrent one before giving up with a 503.
const MEMBER_CHANGE_ATTEMPTS: u64 = 5;

async fn pause_before_retry(attempt: u64) {
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 40;
    tokio::time::sleep(std::time::Duration::from_millis(20 * attempt + jitter)).await;
}

fn contended() -> ApiError {
    tracing::warn!("member change contended past its retries");
    ApiError::ServiceUnavailable {
        retry_after_secs: crate::error::SERVICE_UNAVAILABLE_RETRY_AFTER_SECS,
    }
}

/// Gives a member a role and takes from their keys the scopes it doesn't cover, in one
/// transaction (the member API and `icadmin members set-role`): the keys lose those
/// scopes exactly when the role changes, and a key made meanwhile makes the change retry.
pub async fn change_role(
    app: &App,
    author: &Author,
    org: &crate::org::OrgId,
    id: &str,
    role: Role,
) -> Result<Member, ApiError> {
    let allowed = role.grantable_scopes();
    for attempt in 0..MEMBER_CHANGE_ATTEMPTS {
        let member = app.members.get_in(org, id).await?;
        if !member.is_active() {
            return Err(MemberError::Deactivated.into());
        }
        let trimmed: Vec<ApiKeyRecord> = live_keys(app, &member, time::now())
            .await?
            .into_iter()
            .filter(|key| !key.scopes.is_subset(&allowed))
            .collect();
        let trims = trimmed
            .iter()
            .map(|key| app.keys.trim_item(key, &allowed))
            .collect::<Result<Vec<_>, _>>()?;
        if member.role == role && trims.is_empty() {
            return Ok(member);
        }
        // The member's event, then one for each key whose scopes the new role cut.
        let changed = Member {
            role,
            ..member.clone()
        };
        // (The same role again, with keys left to trim, changes only the keys.)
        let mut events: Vec<Change> = [member.audit_change("member.role_changed", &changed)]
            .into_iter()
            .filter(|change| !change.is_empty())
            .collect();
        for key in &trimmed {
            let mut cut = key.clone();
            cut.scopes = key.scopes.intersection(&allowed).copied().collect();
            events.push(key.audit_change("api_key.updated", &cut));
        }
        if trims.len() > MAX_KEYS_PER_CHANGE {
            return Err(ApiError::conflict(format!(
                "This member has more than {MAX_KEYS_PER_CHANGE} keys the new role can't hold; revoke some first."
            )));
        }
        match app
            .members
            .apply(
                &app.audit,
                author,
                &member,
                &MemberChange::Role(role),
                trims,
                &events,
            )
            .await
        {
            Ok(()) => return Ok(changed),
            Err(MemberError::Contended) => pause_before_retry(attempt + 1).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(contended())
}

/// `POST /v1/org/members/{id}/deactivate`: `{transfer_keys_to?}` → the member can no longer
/// sign in or act; their active keys are revoked, or handed to `transfer_keys_to`.
pub async fn deactivate_member(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let body = optional_body(req)?;
    only_fields(&body, &["transfer_keys_to"])?;
    let id = path_id(req).ok_or_else(member_not_found)?;
    let heir = match body.get("transfer_keys_to") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.as_str().ok_or_else(|| {
            ApiError::invalid_param("transfer_keys_to", "transfer_keys_to must be a member id.")
        })?),
    };
    let fingerprinted = Value::Object(body.clone());
    once(app, req, member, meta, &fingerprinted, || async {
        let author = Author::member(member, meta);
        let outcome = deactivate(app, &author, &member.org_id, &id, heir, &member.id).await?;
        let mut answer = outcome.member.to_json();
        answer["keys_revoked"] = json!(outcome.keys_revoked);
        answer["keys_transferred"] = json!(outcome.keys_transferred);
        ok(StatusCode::OK, &answer, meta)
    })
    .await
}

/// The keys `member` answers for that still work.
async fn live_keys(
    app: &App,
    member: &Member,
    now: Timestamp,
) -> Result<Vec<ApiKeyRecord>, ApiError> {
    let mut live = Vec::new();
    for hash in &member.key_hashes {
        let Some(hash) = hex::decode(hash)
            .ok()
            .and_then(|bytes| crate::keys::token::KeyHash::from_slice(&bytes))
        else {
            tracing::error!(member_id = %member.id, "member holds an unreadable key hash");
            continue;
        };
        if let Some(key) = app.keys.find_by_hash(&hash).await? {
            if key.status(now) == "active" && key.owner() == member.id {
                live.push(key);
            }
        }
    }
    Ok(live)
}

/// What a deactivation did.
#[derive(Debug, Clone)]
pub struct Deactivation {
    pub member: Member,
    pub keys_revoked: Vec<String>,
    pub keys_transferred: Vec<String>,
}

/// Deactivates `org`'s member `id` in one transaction with their active keys: each
/// revoked by `by`, or handed to the member `heir` (whose role must cover each key's
/// scopes, and who must still have that role and be active when it commits). Then the pool
/// user is disabled. Repeating it finishes what an interrupted attempt left.
pub async fn deactivate(
    app: &App,
    author: &Author,
    org: &crate::org::OrgId,
    id: &str,
    heir: Option<&str>,
    by: &str,
) -> Result<Deactivation, ApiError> {
    let bad = |message: String| ApiError::invalid_param("transfer_keys_to", message);
    for attempt in 0..MEMBER_CHANGE_ATTEMPTS {
        let now = time::now();
        let target = app.members.get_in(org, id).await?;
        if !target.is_active() {
            // Already done; the pool user may not be disabled yet if that failed.
            app.pool()?.disable(&target.email).await?;
            return Ok(Deactivation {
                member: target,
                keys_revoked: Vec::new(),
                keys_transferred: Vec::new(),
            });
        }
        let heir = match heir {
            None => None,
            Some(heir_id) if heir_id == target.id => {
                return Err(bad(
                    "Keys can't be transferred to the member being deactivated.".into(),
                ))
            }
            Some(heir_id) => match app.members.get(heir_id).await? {
                Some(heir) if &heir.org_id == org && heir.is_active() => Some(heir),
                _ => {
                    return Err(bad(
                        "transfer_keys_to must be an active member of your org.".into(),
                    ))
                }
            },
        };
        let live = live_keys(app, &target, now).await?;
        if live.len() > MAX_KEYS_PER_CHANGE {
            return Err(ApiError::conflict(format!(
                "This member has more than {MAX_KEYS_PER_CHANGE} active keys; revoke some first."
            )));
        }
        let mut items = Vec::new();
        let mut moved = Vec::new();
        let (mut revoked, mut transferred) = (Vec::new(), Vec::new());
        let gone = Member {
            status: MemberStatus::Deactivated,
            deactivated_at: Some(now),
            ..target.clone()
        };
        let mut events = vec![target.audit_change("member.deactivated", &gone)];
        for key in &live {
            let mut after = key.clone();
            match &heir {
                Some(heir) => {
                    if let Some(scope) = key.scopes.iter().find(|s| !heir.role.covers(**s)) {
                        return Err(bad(format!(
                            "{}'s role ({}) can't hold key {} ({scope}); pick a member whose role covers its scopes, or let it be revoked.",
                            heir.email, heir.role, key.id
                        )));
                    }
                    items.push(app.keys.transfer_item(key, &heir.id, &heir.email)?);
                    moved.push(hex::encode(key.key_hash.as_bytes()));
                    transferred.push(key.id.clone());
                    after.owned_by = Some(heir.id.clone());
                    events.push(key.audit_change("api_key.transferred", &after));
                }
                None => {
                    items.push(app.keys.revoke_item(
                        key,
                        now,
                        by,
                        crate::keys::leak::RevocationReason::MemberDeactivated,
                    )?);
                    revoked.push(key.id.clone());
                    after.revoked_at = Some(now);
                    after.revoked_by = Some(by.to_owned());
                    after.revocation_reason =
                        Some(crate::keys::leak::RevocationReason::MemberDeactivated);
                    events.push(key.audit_change("api_key.revoked", &after));
                }
            }
        }
        if let Some(heir) = heir.as_ref().filter(|_| !moved.is_empty()) {
            items.push(app.members.receive_keys_item(heir, &moved)?);
        }
        let change = MemberChange::Deactivate {
            at: now,
            moved_keys: moved,
        };
        match app
            .members
            .apply(&app.audit, author, &target, &change, items, &events)
            .await
        {
            Ok(()) => {
                // The member record already refuses them; this stops new sign-ins as well.
                app.pool()?.disable(&target.email).await?;
                return Ok(Deactivation {
                    member: gone,
                    keys_revoked: revoked,
                    keys_transferred: transferred,
                });
            }
            Err(MemberError::Contended) => pause_before_retry(attempt + 1).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(contended())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_log_status_filters_are_a_code_or_a_class() {
        assert_eq!(status_range("403"), Some((403, 403)));
        assert_eq!(status_range("4xx"), Some((400, 499)));
        assert_eq!(status_range("2xx"), Some((200, 299)));
        for bad in [
            "6xx", "0xx", "4XX", "40", "4000", "099", "600", "x4x", "", "+403", "4x",
        ] {
            assert_eq!(status_range(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn pages_follow_positions_and_cursors_round_trip() {
        let items: Vec<(String, u32)> = (0..5).map(|i| (format!("p{i}"), i)).collect();
        let limit = Limit::parse(Some("2")).unwrap();
        let (first, next) = page(items.clone(), None, limit);
        assert_eq!(first, [0, 1]);
        let after = decode_cursor(next.as_deref()).unwrap();
        let (second, next) = page(items.clone(), after.as_deref(), limit);
        assert_eq!(second, [2, 3]);
        let after = decode_cursor(next.as_deref()).unwrap();
        let (last, next) = page(items, after.as_deref(), limit);
        assert_eq!((last, next), (vec![4], None));
        assert!(decode_cursor(Some("!!not base64")).is_err());
        assert!(decode_cursor(Some("")).is_err());
    }

    #[test]
    fn rate_limits_and_scopes_are_read_strictly() {
        assert_eq!(parse_rate_limit(&json!({"requests_per_second": 7})), Ok(7));
        for bad in [
            json!(7),
            json!({"requests_per_second": 0}),
            json!({"requests_per_second": 1001}),
            json!({"requests_per_second": 5, "x": 1}),
            json!({"requests_per_second": 2.5}),
        ] {
            assert!(parse_rate_limit(&bad).is_err(), "{bad}");
        }
        assert!(parse_scopes(&json!([])).is_err());
        assert!(parse_scopes(&json!(["customers:delete"])).is_err());
        assert_eq!(
            parse_scopes(&json!(["aml:read", "aml:read"]))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn allowlists_refuse_everyone_and_host_bits() {
        assert!(parse_allowlist(&json!(["0.0.0.0/0"])).is_err());
        assert!(parse_allowlist(&json!(["::/0"])).is_err());
        let err = parse_allowlist(&json!(["10.0.0.1/8"])).unwrap_err();
        assert_eq!(err.param(), Some("ip_allowlist"));
        assert_eq!(
            err.to_string(),
            "\"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?"
        );
        let err = parse_allowlist(&json!(["10.0.0.0/33"])).unwrap_err();
        assert!(err.to_string().ends_with("2001:db8::/32."), "{err}");
        assert!(parse_allowlist(&json!(["203.0.113.0/24", "2001:db8::/32"])).is_ok());
    }
}
