//! `/v1/org/provider-keys`, on the member API with `org.provider-keys`: the org's
//! credentials for its data providers. A secret goes in on create and rotate and never
//! comes out: every answer shows the masked form. No delete: `enabled: false` retires a
//! key and keeps its history.

use chrono::{Duration, NaiveDate};
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Map, Value};

use crate::app::App;
use crate::audit::{Audited, Author, Change};
use crate::customers::api::{json_object_body, Limit};
use crate::error::{json_response, ApiError};
use crate::members::api::{
    decode_cursor, list_body, newest_first, once, only_fields, optional_body, page, parse_label,
    path_id,
};
use crate::members::table::Member;
use crate::org::OrgId;
use crate::providers::client::{CallError, Outcome};
use crate::providers::kind::KeyType;
use crate::providers::secret::ProviderSecret;
use crate::providers::table::{
    is_provider_key_id, new_provider_key_id, Creator, Edit, ProviderKey,
};
use crate::providers::vault::Vault;
use crate::query::QueryParams;
use crate::request::RequestMeta;
use crate::time;

const BASE: &str = "/v1/org/provider-keys";
/// The widest call-summary window: a year and a day.
pub const MAX_SUMMARY_DAYS: i64 = 366;
/// The window when none is asked for: the last 30 days, today included.
pub const DEFAULT_SUMMARY_DAYS: i64 = 30;
const EDIT_ATTEMPTS: usize = 5;

fn not_found() -> ApiError {
    ApiError::NotFound("No provider key with this id in your org.".into())
}

fn contended() -> ApiError {
    ApiError::conflict(
        "The provider key was changed by another request at the same time; try again.",
    )
}

impl From<CallError> for ApiError {
    fn from(err: CallError) -> Self {
        match err {
            CallError::NotFound => not_found(),
            CallError::NoEnabledKey => ApiError::conflict(
                "Your org has no enabled key for this provider: add one or enable one.",
            ),
            CallError::Disabled => ApiError::conflict(
                "This provider key is disabled, and a disabled key is never used: enable it \
                 (PATCH {\"enabled\": true}) to verify it.",
            ),
            CallError::Vault(e) => e.into(),
            CallError::Storage(e) => e.into(),
        }
    }
}

pub fn parse_key_type(value: Option<&Value>) -> Result<KeyType, ApiError> {
    let bad = || {
        ApiError::invalid_param(
            "key_type",
            format!("key_type must be one of {}.", KeyType::names()),
        )
    };
    value
        .and_then(Value::as_str)
        .and_then(KeyType::from_code)
        .ok_or_else(bad)
}

/// The secret of a create or rotate, checked for `key_type`.
pub fn parse_secret(value: Option<&Value>, key_type: KeyType) -> Result<ProviderSecret, ApiError> {
    let text = match value {
        None | Some(Value::Null) => {
            return Err(ApiError::invalid_param(
                "secret",
                "secret is required: the key the provider gave you, as text.",
            ))
        }
        Some(Value::String(text)) => text,
        Some(_) => {
            return Err(ApiError::invalid_param(
                "secret",
                "secret must be a string: the key exactly as the provider gave it, in quotes.",
            ))
        }
    };
    parse_secret_text(text, key_type)
}

pub fn parse_secret_text(text: &str, key_type: KeyType) -> Result<ProviderSecret, ApiError> {
    let secret =
        ProviderSecret::parse(text).map_err(|why| ApiError::invalid_param("secret", why))?;
    key_type
        .check_form(secret.expose())
        .map_err(|why| ApiError::invalid_param("secret", why))?;
    Ok(secret)
}

/// What an Idempotency-Key's fingerprint is taken over: the body with the secret replaced
/// by a keyed digest of all of it (HMAC under the server secret): a retry with another
/// secret is another request (422), yet neither the secret nor an unkeyed hash of it, which
/// could be tested against guesses, is ever stored.
fn fingerprint_body(app: &App, body: &Value) -> Result<Value, ApiError> {
    let mut body = body.clone();
    if let Some(secret) = body.get_mut("secret") {
        if let Some(text) = secret.as_str() {
            let digest = app
                .cursor_key()?
                .digest("provider-secret-fingerprint", text.as_bytes());
            *secret = json!({ "keyed_digest": digest });
        }
    }
    Ok(body)
}

async fn org_key(app: &App, member: &Member, req: &Request) -> Result<ProviderKey, ApiError> {
    find(app, &member.org_id, &path_id(req).unwrap_or_default()).await
}

/// `GET /v1/org/provider-keys`: newest first; `key_type` and `enabled` filter.
pub async fn list(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    let query = QueryParams::parse(
        req.uri().query(),
        &["limit", "cursor", "key_type", "enabled"],
    )?;
    let limit = Limit::parse(query.get("limit"))?;
    let after = decode_cursor(query.get("cursor"))?;
    let key_type = query
        .get("key_type")
        .map(|code| parse_key_type(Some(&Value::String(code.to_owned()))))
        .transpose()?;
    let enabled = match query.get("enabled") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(ApiError::invalid_param(
                "enabled",
                "enabled must be true or false.",
            ))
        }
    };
    let keys = app.provider_keys.list(&member.org_id).await?;
    let mut positioned: Vec<(String, ProviderKey)> = keys
        .into_iter()
        .filter(|k| key_type.is_none_or(|t| k.key_type == t))
        .filter(|k| enabled.is_none_or(|e| k.enabled == e))
        .map(|k| (newest_first(&k.created_at, &k.id), k))
        .collect();
    positioned.sort_by(|a, b| a.0.cmp(&b.0));
    let (keys, next) = page(positioned, after.as_deref(), limit);
    let data = keys.iter().map(ProviderKey::to_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &list_body(data, next, BASE),
        &meta.request_id,
    ))
}

/// `POST /v1/org/provider-keys`: `{key_type, label, secret}` → 201, masked.
pub async fn create(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let (value, body) = json_object_body(req)?;
    only_fields(&body, &["key_type", "label", "secret"])?;
    let key_type = parse_key_type(body.get("key_type"))?;
    let label = parse_label(body.get("label").unwrap_or(&Value::Null))?;
    let secret = parse_secret(body.get("secret"), key_type)?;
    let vault = app.vault()?;
    once(
        app,
        req,
        member,
        meta,
        &fingerprint_body(app, &value)?,
        || async {
            let key = add_key(
                app,
                vault,
                &member.org_id,
                key_type,
                label,
                &secret,
                &Actor::member(member, meta),
            )
            .await?;
            let mut response = json_response(StatusCode::CREATED, &key.to_json(), &meta.request_id);
            if let Ok(location) = HeaderValue::from_str(&format!("{BASE}/{}", key.id)) {
                response.headers_mut().insert("location", location);
            }
            Ok(response)
        },
    )
    .await
}

/// Who changes a provider key, for the line each change writes to the log: a member (with
/// the request's id, to join the request line) or an operator (their AWS principal).
/// A key it creates records it as `created_by`.
#[derive(Debug, Clone)]
pub struct Actor {
    pub creator: Creator,
    pub who: String,
    pub request_id: Option<String>,
    /// Who the audit trail names, and from where.
    pub author: Author,
}

impl Actor {
    pub fn member(member: &Member, meta: &RequestMeta) -> Self {
        Self {
            creator: Creator {
                id: member.id.clone(),
                email: Some(member.email.clone()),
            },
            who: format!("member:{}", member.id),
            request_id: Some(meta.request_id.clone()),
            author: Author::member(member, meta),
        }
    }

    pub fn operator(principal: &str) -> Self {
        Self {
            creator: Creator {
                id: principal.to_owned(),
                email: None,
            },
            who: format!("operator:{principal}"),
            request_id: None,
            author: Author::operator(principal),
        }
    }

    fn request_id(&self) -> &str {
        self.request_id.as_deref().unwrap_or("")
    }
}

/// Seals `secret` under a new id and stores the key, enabled (the member API's create and
/// `icadmin providers add`).
pub async fn add_key(
    app: &App,
    vault: &Vault,
    org: &OrgId,
    key_type: KeyType,
    label: String,
    secret: &ProviderSecret,
    by: &Actor,
) -> Result<ProviderKey, ApiError> {
    let id = new_provider_key_id().map_err(|_| ApiError::Internal)?;
    let sealed = vault.seal(org, &id, secret).await?;
    let now = time::now();
    let key = ProviderKey {
        org_id: org.clone(),
        id,
        key_type,
        label,
        masked_key: secret.masked(),
        enabled: true,
        usage_count: 0,
        last_used_at: None,
        created_at: now,
        created_by: by.creator.clone(),
        rotated_at: None,
        updated_at: now,
        version: 0,
    };
    app.provider_keys
        .create(&app.audit, &by.author, &key, &sealed)
        .await?;
    tracing::info!(
        provider_key = %key.id,
        key_type = key_type.code(),
        by = %by.who,
        request_id = by.request_id(),
        "provider key created"
    );
    Ok(key)
}

/// Changes label and state over the version read, again when another edit lands between.
pub async fn edit_key(
    app: &App,
    org: &OrgId,
    id: &str,
    edit: &Edit,
    by: &Actor,
) -> Result<ProviderKey, ApiError> {
    for _ in 0..EDIT_ATTEMPTS {
        let key = find(app, org, id).await?;
        if let Some(updated) = app
            .provider_keys
            .edit(&app.audit, &by.author, &key, edit, time::now())
            .await?
        {
            tracing::info!(
                provider_key = %key.id,
                enabled = updated.enabled,
                state_changed = updated.enabled != key.enabled,
                label_changed = updated.label != key.label,
                by = %by.who,
                request_id = by.request_id(),
                "provider key updated"
            );
            return Ok(updated);
        }
    }
    Err(contended())
}

/// Seals `secret` (checked for the key's type) in place of the key's secret.
pub async fn rotate_key(
    app: &App,
    vault: &Vault,
    org: &OrgId,
    id: &str,
    secret: Option<&Value>,
    by: &Actor,
) -> Result<ProviderKey, ApiError> {
    let mut key = find(app, org, id).await?;
    let secret = parse_secret(secret, key.key_type)?;
    rotate_to(app, vault, &mut key, &secret, by).await
}

/// Seals `secret` in place of `key`'s (read just before), again over a newer read when
/// another edit lands in between.
pub async fn rotate_to(
    app: &App,
    vault: &Vault,
    key: &mut ProviderKey,
    secret: &ProviderSecret,
    by: &Actor,
) -> Result<ProviderKey, ApiError> {
    let (org, id) = (key.org_id.clone(), key.id.clone());
    key.key_type
        .check_form(secret.expose())
        .map_err(|why| ApiError::invalid_param("secret", why))?;
    let sealed = vault.seal(&org, &id, secret).await?;
    for _ in 0..EDIT_ATTEMPTS {
        if let Some(rotated) = app
            .provider_keys
            .rotate(
                &app.audit,
                &by.author,
                key,
                &sealed,
                &secret.masked(),
                time::now(),
            )
            .await?
        {
            tracing::info!(
                provider_key = %rotated.id,
                by = %by.who,
                request_id = by.request_id(),
                "provider key rotated"
            );
            return Ok(rotated);
        }
        *key = find(app, &org, &id).await?;
    }
    Err(contended())
}

async fn find(app: &App, org: &OrgId, id: &str) -> Result<ProviderKey, ApiError> {
    if !is_provider_key_id(id) {
        return Err(not_found());
    }
    app.provider_keys.get(org, id).await?.ok_or_else(not_found)
}

/// `GET /v1/org/provider-keys/{id}`.
pub async fn get(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let key = org_key(app, member, req).await?;
    Ok(json_response(
        StatusCode::OK,
        &key.to_json(),
        &meta.request_id,
    ))
}

/// `PATCH /v1/org/provider-keys/{id}`: `label`, `enabled`. Nothing else changes here: the
/// secret through rotate, the type never.
pub async fn update(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let (value, body) = json_object_body(req)?;
    if body.contains_key("secret") {
        return Err(ApiError::invalid_param(
            "secret",
            "A secret changes through POST /v1/org/provider-keys/{id}/rotate, not PATCH.",
        ));
    }
    only_fields(&body, &["label", "enabled"])?;
    let edit = Edit {
        label: body.get("label").map(parse_label).transpose()?,
        enabled: body
            .get("enabled")
            .map(|v| {
                v.as_bool().ok_or_else(|| {
                    ApiError::invalid_param("enabled", "enabled must be true or false.")
                })
            })
            .transpose()?,
    };
    let id = path_id(req).unwrap_or_default();
    once(app, req, member, meta, &value, || async {
        let updated = edit_key(
            app,
            &member.org_id,
            &id,
            &edit,
            &Actor::member(member, meta),
        )
        .await?;
        Ok(json_response(
            StatusCode::OK,
            &updated.to_json(),
            &meta.request_id,
        ))
    })
    .await
}

/// `POST /v1/org/provider-keys/{id}/rotate`: `{secret}` → the key with its new mask and
/// `rotated_at`; same id, same history. The old secret is gone at once.
pub async fn rotate(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let (value, body) = json_object_body(req)?;
    only_fields(&body, &["secret"])?;
    let vault = app.vault()?;
    let id = path_id(req).unwrap_or_default();
    once(
        app,
        req,
        member,
        meta,
        &fingerprint_body(app, &value)?,
        || async {
            let by = Actor::member(member, meta);
            let rotated =
                rotate_key(app, vault, &member.org_id, &id, body.get("secret"), &by).await?;
            Ok(json_response(
                StatusCode::OK,
                &rotated.to_json(),
                &meta.request_id,
            ))
        },
    )
    .await
}

fn parse_date(query: &QueryParams, name: &str) -> Result<Option<NaiveDate>, ApiError> {
    query
        .get(name)
        .map(|text| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .filter(|_| text.len() == 10)
                .ok_or_else(|| {
                    ApiError::invalid_param(
                        name,
                        format!("{name} must be a date, YYYY-MM-DD (UTC days)."),
                    )
                })
        })
        .transpose()
}

/// `GET /v1/org/provider-keys/{id}/call-summaries?since&until`: one row per UTC day, oldest
/// first, days without calls included; by default the last 30 days, at most 366.
pub async fn call_summaries(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    let query = QueryParams::parse(req.uri().query(), &["since", "until"])?;
    let until = parse_date(&query, "until")?.unwrap_or_else(|| meta.now.date_naive());
    let since = parse_date(&query, "since")?
        .unwrap_or_else(|| until - Duration::days(DEFAULT_SUMMARY_DAYS - 1));
    if since > until {
        return Err(ApiError::invalid_param("since", "since is after until."));
    }
    if (until - since).num_days() + 1 > MAX_SUMMARY_DAYS {
        return Err(ApiError::invalid_param(
            "since",
            format!("At most {MAX_SUMMARY_DAYS} days at a time: narrow since and until."),
        ));
    }
    let id = path_id(req)
        .filter(|id| is_provider_key_id(id))
        .ok_or_else(not_found)?;
    let days = app
        .provider_keys
        .summaries(&member.org_id, &id, since, until)
        .await?
        .ok_or_else(not_found)?;
    let data = days.iter().map(|d| d.to_json()).collect();
    Ok(json_response(
        StatusCode::OK,
        &list_body(data, None, &format!("{BASE}/{id}/call-summaries")),
        &meta.request_id,
    ))
}

/// `POST /v1/org/provider-keys/{id}/verify`: the provider's cheapest authenticated request
/// with this key, counted like any call: `ok` (2xx), `rejected` (401, 403) or
/// `unreachable` (anything else, or no answer).
pub async fn verify(
    app: &App,
    req: &Request,
    member: &Member,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let body: Map<String, Value> = optional_body(req)?;
    only_fields(&body, &[])?;
    let providers = app.providers()?;
    let id = path_id(req)
        .filter(|id| is_provider_key_id(id))
        .ok_or_else(not_found)?;
    once(app, req, member, meta, &Value::Object(body), || async {
        let (key, outcome) = providers.verify(&member.org_id, &id).await?;
        let (result, status) = match &outcome {
            Outcome::Answered { status, .. } if (200..300).contains(status) => {
                ("ok", Some(*status))
            }
            Outcome::Answered {
                status: status @ (401 | 403),
                ..
            } => ("rejected", Some(*status)),
            Outcome::Answered { status, .. } => ("unreachable", Some(*status)),
            Outcome::Unreachable(_) => ("unreachable", None),
        };
        let detail = match &outcome {
            Outcome::Unreachable(why) => Some(why.clone()),
            Outcome::Answered { status, .. } if result == "unreachable" => Some(format!(
                "{} answered {status}: not an answer about the key.",
                key.key_type.provider()
            )),
            _ => None,
        };
        // The verification changes no setting of the key (its call is counted like any
        // other): its event is its own transaction, after the call.
        let checked = Change::noted(
            "provider_key.verified",
            key.audit_target(),
            json!({"result": result, "http_status": status}),
        );
        app.audit
            .record(
                &member.org_id,
                &Author::member(member, meta),
                checked,
                "TransactWriteItems provider key verified",
            )
            .await
            .map_err(|failure| match failure {
                crate::storage::TransactFailure::Storage(err) => ApiError::from(err),
                _ => contended(),
            })?;
        let body = json!({
            "object": "provider_key_verification",
            "result": result,
            "http_status": status,
            "detail": detail,
            "checked_at": time::format(&time::now()),
            "provider_key": key.to_json(),
        });
        Ok(json_response(StatusCode::OK, &body, &meta.request_id))
    })
    .await
}
