//! The endpoint routes, for both planes: `/v1/webhook_endpoints` with a key holding
//! `webhooks:write` (a Zapier REST hook subscribes and unsubscribes with it; the key sees
//! its own mode's endpoints), and `/v1/org/webhook-endpoints` with a member session
//! holding `org.api-keys` (both modes; plus the secret, its rotation, and deliveries).

use std::collections::BTreeSet;

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{json, Map, Value};

use crate::app::App;
use crate::audit::{Audited, Author, Change, Origin};
use crate::customers::api::{json_object_body, Limit};
use crate::error::{json_response, ApiError};
use crate::keys::scope::Scope;
use crate::keys::verify::Principal;
use crate::members::api::{
    decode_cursor, list_body, newest_first, only_fields, optional_body, page, path_id,
};
use crate::members::role::Permission;
use crate::members::table::Member;
use crate::org::{Mode, OrgId};
use crate::query::QueryParams;
use crate::request::RequestMeta;
use crate::storage::TransactFailure;
use crate::time::{self, Timestamp};
use crate::webhooks::delivery::{is_delivery_id, Delivery, DeliveryStatus};
use crate::webhooks::endpoint::{
    is_endpoint_id, new_endpoint_id, Creator, WebhookEndpoint, MAX_DESCRIPTION_CHARS,
    MAX_ENDPOINTS_PER_ORG,
};
use crate::webhooks::event::EventType;
use crate::webhooks::signing::{StoredSecret, WebhookSecret};
use crate::webhooks::table::CreateError;
use crate::webhooks::target::TargetError;

/// The longest a rotated-out secret keeps signing: 7 days; by default 24 hours.
pub const MAX_ROTATION_OVERLAP_SECS: i64 = 7 * 24 * 60 * 60;
pub const DEFAULT_ROTATION_OVERLAP_SECS: i64 = 24 * 60 * 60;
/// Optimistic edits retried this often when another edit lands in between.
const EDIT_ATTEMPTS: usize = 5;

/// Who is managing endpoints, and what they may see and do.
pub struct Owner {
    pub org: OrgId,
    /// A key manages its own mode's endpoints only; a member both modes.
    pub mode: Option<Mode>,
    pub creator: Creator,
    /// Whether an endpoint this caller makes may carry AML data.
    pub sees_aml: bool,
    /// Whether this caller may see customers at all (customer events carry them).
    pub sees_customers: bool,
    /// Whether this caller may read the org's audit trail (a member with `org.audit`).
    pub sees_audit: bool,
    /// The plane's path, for `url` and `Location`.
    pub base: &'static str,
    /// The idempotency owner (a member's keys are their own).
    idempotency_owner: Option<String>,
    is_member: bool,
}

impl Owner {
    pub fn of_key(principal: &Principal) -> Self {
        Self {
            org: principal.org_id.clone(),
            mode: Some(principal.mode()),
            creator: Creator::ApiKey {
                id: principal.key_id.clone(),
            },
            sees_aml: principal.has(Scope::AmlRead),
            sees_customers: principal.has(Scope::CustomersRead),
            sees_audit: false,
            base: "/v1/webhook_endpoints",
            idempotency_owner: None,
            is_member: false,
        }
    }

    pub fn of_member(member: &Member) -> Self {
        Self {
            org: member.org_id.clone(),
            mode: None,
            creator: Creator::Member {
                id: member.id.clone(),
                email: member.email.clone(),
            },
            sees_aml: member.role.has(Permission::AmlRead),
            sees_customers: member.role.has(Permission::CustomersRead),
            sees_audit: member.role.has(Permission::OrgAudit),
            base: "/v1/org/webhook-endpoints",
            idempotency_owner: Some(format!("member:{}", member.id)),
            is_member: true,
        }
    }

    /// Who the audit trail names for this caller's changes, and from where.
    pub fn author(&self, meta: &RequestMeta) -> Author {
        Author {
            actor: self.creator.audit_actor(),
            origin: Origin::of(meta),
        }
    }

    fn visible(&self, endpoint: &WebhookEndpoint) -> bool {
        endpoint.org_id == self.org && self.mode.is_none_or(|mode| endpoint.mode() == mode)
    }

    /// Where this caller's idempotency records live.
    fn space(&self) -> OrgId {
        self.org.data_space(self.mode.unwrap_or(Mode::Live))
    }
}

/// An audit write that did not go through: the storage's error, or a 503 when other changes
/// of the org kept winning the chain.
fn audit_failed(failure: TransactFailure) -> ApiError {
    match failure {
        TransactFailure::Storage(err) => err.into(),
        _ => contended(),
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("No webhook endpoint with this id in your org.".into())
}

fn contended() -> ApiError {
    ApiError::conflict("The endpoint was changed by another request at the same time; try again.")
}

/// Routes whose answer holds a signing secret take no Idempotency-Key; what a retry does
/// instead is the route's own (`retry`).
fn refuse_idempotency_key(req: &Request, retry: &str) -> Result<(), ApiError> {
    crate::idempotency::refuse_key(
        req,
        &format!(
            "This route does not take an Idempotency-Key: its answer holds the endpoint's \
             signing secret, which is never stored with a response, so it can't be replayed. \
             {retry}"
        ),
    )
}

const CREATE_RETRY: &str = "A retry makes another endpoint: list the endpoints to find one \
     made by an attempt whose answer was lost, and delete it.";
const ROTATE_RETRY: &str = "A retry rotates again: the secret of a rotation whose answer was \
     lost can be revealed with GET …/secret, while the one before it still signs.";

async fn endpoint_of(app: &App, owner: &Owner, req: &Request) -> Result<WebhookEndpoint, ApiError> {
    let id = path_id(req)
        .filter(|id| is_endpoint_id(id))
        .ok_or_else(not_found)?;
    app.webhook_endpoints
        .get(&owner.org, &id)
        .await?
        .filter(|endpoint| owner.visible(endpoint))
        .ok_or_else(not_found)
}

fn target_error(err: TargetError) -> ApiError {
    ApiError::invalid_param("url", err.to_string())
}

fn parse_events(value: &Value) -> Result<BTreeSet<EventType>, ApiError> {
    let bad = |message: String| ApiError::invalid_param("events", message);
    let list = value.as_array().ok_or_else(|| {
        bad(format!(
            "events must be a list of event types such as [\"customer.verified\"]; types: {}.",
            EventType::names()
        ))
    })?;
    if list.is_empty() {
        return Err(bad("An endpoint needs at least one event type.".into()));
    }
    list.iter()
        .map(|event| {
            let name = event
                .as_str()
                .ok_or_else(|| bad("Each event type is a string.".into()))?;
            name.parse::<EventType>().map_err(|_| {
                bad(format!(
                    "Unknown event type {name:?}; types: {}.",
                    EventType::names()
                ))
            })
        })
        .collect()
}

/// The events `owner` may not receive, refused with 403 naming them: `customer.*` carry
/// customers (`customers:read` / `customers.read`), and `customer.verified` states an AML
/// result (`aml:read` / `aml.read`).
fn permit_events(events: &BTreeSet<EventType>, owner: &Owner) -> Result<(), ApiError> {
    if events.iter().any(|e| e.carries_audit()) && !owner.sees_audit {
        let param = Some("events".to_owned());
        return Err(if owner.is_member {
            ApiError::ForbiddenPermission {
                message: "Your role may not receive audit_event.created: the audit trail needs org.audit.".into(),
                param,
            }
        } else {
            ApiError::ForbiddenScopeFor {
                message: "An API key may not receive audit_event.created: the audit trail goes only to endpoints a member with org.audit sets up.".into(),
                param,
            }
        });
    }
    let refused: Vec<&str> = events
        .iter()
        .filter(|e| {
            (e.carries_customer() && !owner.sees_customers) || (e.states_aml() && !owner.sees_aml)
        })
        .map(|e| e.as_str())
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    let names = refused.join(", ");
    // Customers first: without them no customer event goes, AML or not.
    let (scope, permission) = if owner.sees_customers {
        (Scope::AmlRead, Permission::AmlRead)
    } else {
        (Scope::CustomersRead, Permission::CustomersRead)
    };
    let param = Some("events".to_owned());
    Err(if owner.is_member {
        ApiError::ForbiddenPermission {
            message: format!(
                "Your role may not receive {names}: that needs {permission} (customer events \
                 carry customers; customer.verified states an AML result)."
            ),
            param,
        }
    } else {
        ApiError::ForbiddenScopeFor {
            message: format!(
                "This API key may not receive {names}: that needs the {scope} scope (customer \
                 events carry customers; customer.verified states an AML result)."
            ),
            param,
        }
    })
}

/// Revealing or rotating the secret of an endpoint that carries more than the member may
/// see would let them read what it carries: refused.
fn permit_secret(endpoint: &WebhookEndpoint, owner: &Owner) -> Result<(), ApiError> {
    let lacking = if endpoint.include_aml && !owner.sees_aml {
        Some(Permission::AmlRead)
    } else if endpoint.carries_customers() && !owner.sees_customers {
        Some(Permission::CustomersRead)
    } else if endpoint.events.iter().any(|e| e.carries_audit()) && !owner.sees_audit {
        Some(Permission::OrgAudit)
    } else {
        None
    };
    match lacking {
        None => Ok(()),
        Some(permission) => Err(ApiError::ForbiddenPermission {
            message: format!(
                "This endpoint carries data your role may not see ({permission}), so its \
                 signing secret is not yours to read or rotate: ask a member who has \
                 {permission}, or point the endpoint yourself (changing its url or events \
                 binds it to what you may see)."
            ),
            param: None,
        }),
    }
}

fn parse_description(value: &Value) -> Result<Option<String>, ApiError> {
    if value.is_null() {
        return Ok(None);
    }
    let bad = || {
        ApiError::invalid_param(
            "description",
            format!("description must be text of at most {MAX_DESCRIPTION_CHARS} characters, without control characters."),
        )
    };
    let text = value.as_str().ok_or_else(bad)?.trim();
    if text.chars().count() > MAX_DESCRIPTION_CHARS
        || crate::customers::input::has_forbidden_chars(text)
    {
        return Err(bad());
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

fn parse_enabled(value: &Value) -> Result<bool, ApiError> {
    value
        .as_bool()
        .ok_or_else(|| ApiError::invalid_param("enabled", "enabled must be true or false."))
}

fn parse_url_value(value: Option<&Value>) -> Result<&str, ApiError> {
    value.and_then(Value::as_str).ok_or_else(|| {
        ApiError::invalid_param("url", "url is required: the https URL to deliver to.")
    })
}

/// `GET …`: the caller's endpoints, oldest first; a member may filter by `mode`.
pub async fn list(
    app: &App,
    req: &Request,
    owner: &Owner,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    let allowed: &[&str] = if owner.is_member {
        &["limit", "cursor", "mode"]
    } else {
        &["limit", "cursor"]
    };
    let query = QueryParams::parse(req.uri().query(), allowed)?;
    let limit = Limit::parse(query.get("limit"))?;
    let after = decode_cursor(query.get("cursor"))?;
    let mode = match query.get("mode") {
        None => owner.mode,
        Some(text) => Some(Mode::parse(text).ok_or_else(|| {
            ApiError::invalid_param("mode", "mode must be \"live\" or \"test\".")
        })?),
    };
    let endpoints = app.webhook_endpoints.list(&owner.org).await?;
    let positioned = endpoints
        .into_iter()
        .filter(|e| owner.visible(e) && mode.is_none_or(|m| e.mode() == m))
        .map(|e| {
            (
                format!("{:020}|{}", e.created_at.timestamp_millis(), e.endpoint_id),
                e,
            )
        })
        .collect();
    let (endpoints, next) = page(positioned, after.as_deref(), limit);
    let data = endpoints.iter().map(WebhookEndpoint::to_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &list_body(data, next, owner.base),
        &meta.request_id,
    ))
}

/// `POST …`: `{url, events, description?, enabled?, mode?}` → 201 with `secret`, this once.
pub async fn create(
    app: &App,
    req: &Request,
    owner: &Owner,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    refuse_idempotency_key(req, CREATE_RETRY)?;
    QueryParams::parse(req.uri().query(), &[])?;
    let (_, body) = json_object_body(req)?;
    only_fields(&body, &["url", "events", "description", "enabled", "mode"])?;
    let events = parse_events(body.get("events").ok_or_else(|| {
        ApiError::invalid_param(
            "events",
            format!("events is required; types: {}.", EventType::names()),
        )
    })?)?;
    permit_events(&events, owner)?;
    let description = body
        .get("description")
        .map(parse_description)
        .transpose()?
        .flatten();
    let enabled = body
        .get("enabled")
        .map(parse_enabled)
        .transpose()?
        .unwrap_or(true);
    let mode = match (body.get("mode"), owner.mode) {
        (None | Some(Value::Null), own) => own.unwrap_or(Mode::Live),
        (Some(value), own) => {
            let mode = value.as_str().and_then(Mode::parse).ok_or_else(|| {
                ApiError::invalid_param("mode", "mode must be \"live\" or \"test\".")
            })?;
            if own.is_some_and(|own| own != mode) {
                return Err(ApiError::invalid_param(
                    "mode",
                    format!(
                        "A {} key makes {} endpoints only.",
                        own.unwrap_or_default(),
                        own.unwrap_or_default()
                    ),
                ));
            }
            mode
        }
    };
    let url = app
        .webhook_targets
        .check(parse_url_value(body.get("url"))?)
        .await
        .map_err(target_error)?;
    let secret = WebhookSecret::generate().map_err(|_| ApiError::Internal)?;
    let endpoint_id = new_endpoint_id().map_err(|_| ApiError::Internal)?;
    // Sealed before anything is stored: KMS down is a 503 with nothing made.
    let sealed = StoredSecret::seal(app.vault()?, &owner.org, &endpoint_id, &secret).await?;
    let now = time::now();
    let endpoint = WebhookEndpoint {
        org_id: owner.org.clone(),
        endpoint_id,
        mode: mode.as_str().to_owned(),
        url: url.to_string(),
        events,
        description,
        enabled,
        include_aml: owner.sees_aml,
        secret: sealed,
        previous_secret: None,
        previous_secret_expires_at: None,
        created_at: now,
        updated_at: now,
        created_by: owner.creator.clone(),
        bound_to: None,
        bound_at: None,
        disabled_reason: None,
        disabled_at: None,
        failing_since: None,
        version: 0,
    };
    match app
        .webhook_endpoints
        .create(&app.audit, &owner.author(meta), &endpoint)
        .await
    {
        Ok(()) => {}
        Err(CreateError::Full) => {
            return Err(ApiError::conflict(format!(
                "Your org has {MAX_ENDPOINTS_PER_ORG} {mode} webhook endpoints, the most it may \
                 have in {mode} mode; \
                 delete one first (one endpoint can take several event types)."
            )))
        }
        Err(CreateError::Contended) => return Err(contended()),
        Err(CreateError::Storage(e)) => return Err(e.into()),
    }
    let mut body = endpoint.to_json();
    body["secret"] = Value::String(secret.expose().to_owned());
    let mut response = json_response(StatusCode::CREATED, &body, &meta.request_id);
    if let Ok(location) = HeaderValue::from_str(&format!("{}/{}", owner.base, endpoint.endpoint_id))
    {
        response.headers_mut().insert("location", location);
    }
    Ok(response)
}

/// `GET …/{id}`.
pub async fn get(
    app: &App,
    req: &Request,
    owner: &Owner,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let endpoint = endpoint_of(app, owner, req).await?;
    Ok(json_response(
        StatusCode::OK,
        &endpoint.to_json(),
        &meta.request_id,
    ))
}

/// Reads the endpoint, applies `change`, stores it over what was read with the audit
/// event `event` makes of (before, after); again when another edit landed in between.
async fn edit<F, E>(
    app: &App,
    owner: &Owner,
    req: &Request,
    meta: &RequestMeta,
    mut change: F,
    event: E,
) -> Result<WebhookEndpoint, ApiError>
where
    F: FnMut(&mut WebhookEndpoint, Timestamp) -> Result<(), ApiError>,
    E: Fn(&WebhookEndpoint, &WebhookEndpoint) -> Change,
{
    let author = owner.author(meta);
    for _ in 0..EDIT_ATTEMPTS {
        let read = endpoint_of(app, owner, req).await?;
        let mut endpoint = read.clone();
        let now = time::now();
        change(&mut endpoint, now)?;
        endpoint.updated_at = now.max(endpoint.updated_at);
        let change = event(&read, &endpoint);
        if app
            .webhook_endpoints
            .replace(&app.audit, &author, &mut endpoint, change)
            .await?
        {
            return Ok(endpoint);
        }
    }
    Err(contended())
}

/// `PATCH …/{id}`: `url`, `events`, `description`, `enabled` (true again clears a
/// platform-disabled endpoint's reason and failure clock). A change of `url` or `events`
/// re-binds the endpoint to the editor: what it carries (its events, `includes_aml`) is
/// derived again from the editor's rights, and events the editor may not receive → 403.
pub async fn update(
    app: &App,
    req: &Request,
    owner: &Owner,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let (value, body) = json_object_body(req)?;
    only_fields(&body, &["url", "events", "description", "enabled"])?;
    let events = body.get("events").map(parse_events).transpose()?;
    let description = body.get("description").map(parse_description).transpose()?;
    let enabled = body.get("enabled").map(parse_enabled).transpose()?;
    let url = match body.get("url") {
        None => None,
        Some(value) => Some(
            app.webhook_targets
                .check(parse_url_value(Some(value))?)
                .await
                .map_err(target_error)?
                .to_string(),
        ),
    };
    let space = owner.space();
    crate::idempotency::once(
        app,
        req,
        &space,
        owner.idempotency_owner.as_deref(),
        meta,
        &value,
        || async {
            let endpoint = edit(
                app,
                owner,
                req,
                meta,
                |endpoint, now| {
                    if url.is_some() || events.is_some() {
                        // Whoever chooses where it sends answers for what it carries.
                        let events = events.as_ref().unwrap_or(&endpoint.events);
                        permit_events(events, owner)?;
                        endpoint.bound_to = Some(owner.creator.clone());
                        endpoint.bound_at = Some(now);
                        endpoint.include_aml = owner.sees_aml;
                    }
                    if let Some(url) = &url {
                        endpoint.url.clone_from(url);
                    }
                    if let Some(events) = &events {
                        endpoint.events.clone_from(events);
                    }
                    if let Some(description) = &description {
                        endpoint.description.clone_from(description);
                    }
                    if let Some(enabled) = enabled {
                        if enabled && !endpoint.enabled {
                            endpoint.disabled_reason = None;
                            endpoint.disabled_at = None;
                            endpoint.failing_since = None;
                        }
                        if !enabled && endpoint.enabled {
                            endpoint.disabled_at = Some(now);
                        }
                        endpoint.enabled = enabled;
                    }
                    Ok(())
                },
                |read, after| read.audit_change("webhook_endpoint.updated", after),
            )
            .await?;
            Ok(json_response(
                StatusCode::OK,
                &endpoint.to_json(),
                &meta.request_id,
            ))
        },
    )
    .await
}

/// `DELETE …/{id}`: it receives nothing more (deliveries already queued are dropped when
/// they come up). Deleting it again is a 404.
pub async fn delete(
    app: &App,
    req: &Request,
    owner: &Owner,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let endpoint = endpoint_of(app, owner, req).await?;
    if !app
        .webhook_endpoints
        .delete(&app.audit, &owner.author(meta), &endpoint)
        .await?
    {
        return Err(not_found());
    }
    let body = json!({"object": "webhook_endpoint", "id": endpoint.endpoint_id, "deleted": true});
    Ok(json_response(StatusCode::OK, &body, &meta.request_id))
}

/// `GET /v1/org/webhook-endpoints/{id}/secret`: the signing secret, for a member who needs
/// it again (`Cache-Control: no-store`).
pub async fn reveal_secret(
    app: &App,
    req: &Request,
    owner: &Owner,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let endpoint = endpoint_of(app, owner, req).await?;
    permit_secret(&endpoint, owner)?;
    let secret = endpoint
        .secret
        .open(Some(app.vault()?), &owner.org, &endpoint.endpoint_id)
        .await?;
    // Who saw the secret is on the record before they get it: no reveal without its event.
    let revealed = Change::noted(
        "webhook_endpoint.secret_revealed",
        endpoint.audit_target(),
        Value::Null,
    );
    app.audit
        .record(
            &owner.org,
            &owner.author(meta),
            revealed,
            "TransactWriteItems webhook secret revealed",
        )
        .await
        .map_err(audit_failed)?;
    let body = json!({
        "object": "webhook_endpoint_secret",
        "endpoint_id": endpoint.endpoint_id,
        "secret": secret.expose(),
        "previous_secret_expires_at": endpoint
            .previous_secret_expires_at
            .filter(|until| *until > meta.now)
            .as_ref()
            .map(time::format),
    });
    Ok(json_response(StatusCode::OK, &body, &meta.request_id))
}

/// `POST /v1/org/webhook-endpoints/{id}/rotate-secret`: `{expire_previous_in_seconds?}`
/// (0-604800, default 86400) → a new secret, answered once; the previous one keeps
/// signing alongside it until then, so receivers can switch without missing a delivery.
pub async fn rotate_secret(
    app: &App,
    req: &Request,
    owner: &Owner,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    refuse_idempotency_key(req, ROTATE_RETRY)?;
    QueryParams::parse(req.uri().query(), &[])?;
    let body: Map<String, Value> = optional_body(req)?;
    only_fields(&body, &["expire_previous_in_seconds"])?;
    let overlap = match body.get("expire_previous_in_seconds") {
        None | Some(Value::Null) => DEFAULT_ROTATION_OVERLAP_SECS,
        Some(value) => value
            .as_i64()
            .filter(|secs| (0..=MAX_ROTATION_OVERLAP_SECS).contains(secs))
            .ok_or_else(|| {
                ApiError::invalid_param(
                    "expire_previous_in_seconds",
                    format!("expire_previous_in_seconds must be a whole number from 0 to {MAX_ROTATION_OVERLAP_SECS}."),
                )
            })?,
    };
    let fresh = WebhookSecret::generate().map_err(|_| ApiError::Internal)?;
    // The endpoint as it stands (a 404 or 403 before KMS is asked for anything), then the
    // new secret sealed for it.
    let current = endpoint_of(app, owner, req).await?;
    permit_secret(&current, owner)?;
    let sealed = StoredSecret::seal(app.vault()?, &owner.org, &current.endpoint_id, &fresh).await?;
    let endpoint = edit(
        app,
        owner,
        req,
        meta,
        |endpoint, now| {
            permit_secret(endpoint, owner)?;
            let old = std::mem::replace(&mut endpoint.secret, sealed.clone());
            if overlap > 0 {
                endpoint.previous_secret = Some(old);
                endpoint.previous_secret_expires_at =
                    Some(now + chrono::Duration::seconds(overlap));
            } else {
                endpoint.previous_secret = None;
                endpoint.previous_secret_expires_at = None;
            }
            Ok(())
        },
        // The secrets themselves never: when the previous one stops signing.
        |read, _| {
            Change::noted(
                "webhook_endpoint.secret_rotated",
                read.audit_target(),
                json!({"previous_secret_expires_in_seconds": overlap}),
            )
        },
    )
    .await?;
    let mut body = endpoint.to_json();
    body["secret"] = Value::String(fresh.expose().to_owned());
    Ok(json_response(StatusCode::OK, &body, &meta.request_id))
}

fn delivery_not_found() -> ApiError {
    ApiError::NotFound("No delivery with this id for this webhook endpoint.".into())
}

/// `GET /v1/org/webhook-endpoints/{id}/deliveries`: the endpoint's deliveries of the last
/// 30 days, newest first, each with its attempts (status code, latency, error excerpt);
/// `?status=pending|succeeded|failed|dropped` filters. Never the payload.
pub async fn list_deliveries(
    app: &App,
    req: &Request,
    owner: &Owner,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    let query = QueryParams::parse(req.uri().query(), &["limit", "cursor", "status"])?;
    let limit = Limit::parse(query.get("limit"))?;
    let after = decode_cursor(query.get("cursor"))?;
    let status = match query.get("status") {
        None => None,
        Some(text) => Some(
            serde_json::from_value::<DeliveryStatus>(Value::String(text.to_owned())).map_err(
                |_| {
                    ApiError::invalid_param(
                        "status",
                        "status must be one of pending, succeeded, failed, dropped.",
                    )
                },
            )?,
        ),
    };
    let endpoint = endpoint_of(app, owner, req).await?;
    let deliveries = app.webhook_deliveries.list(&endpoint.endpoint_id).await?;
    let positioned = deliveries
        .into_iter()
        .filter(|d| status.is_none_or(|s| d.status == s))
        .map(|d| (newest_first(&d.created_at, &d.delivery_id), d))
        .collect();
    let (deliveries, next) = page(positioned, after.as_deref(), limit);
    let data = deliveries.iter().map(Delivery::to_json).collect();
    let url = format!("{}/{}/deliveries", owner.base, endpoint.endpoint_id);
    Ok(json_response(
        StatusCode::OK,
        &list_body(data, next, &url),
        &meta.request_id,
    ))
}

/// `POST /v1/org/webhook-endpoints/{id}/deliveries/{delivery_id}/resend`: one more attempt
/// of a finished delivery (succeeded, failed or dropped), with the same `webhook-id` and
/// body, made by the next sweep; `202` with the delivery, now pending. A pending delivery
/// is `409` (its next attempt is coming), as is one of a disabled endpoint (enable it
/// first).
pub async fn resend_delivery(
    app: &App,
    req: &Request,
    owner: &Owner,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    QueryParams::parse(req.uri().query(), &[])?;
    let body: Map<String, Value> = optional_body(req)?;
    only_fields(&body, &[])?;
    let endpoint = endpoint_of(app, owner, req).await?;
    let delivery_id = req
        .path_parameters_ref()
        .and_then(|params| params.first("delivery_id"))
        .filter(|id| is_delivery_id(id))
        .ok_or_else(delivery_not_found)?
        .to_owned();
    let current = app
        .webhook_deliveries
        .get(&endpoint.endpoint_id, &delivery_id)
        .await?
        .ok_or_else(delivery_not_found)?;
    if !endpoint.enabled {
        return Err(ApiError::conflict(
            "This webhook endpoint is disabled: enable it first, then re-send.",
        ));
    }
    let pending = || {
        ApiError::conflict(
            "This delivery is pending: its next attempt is already scheduled (next_attempt_at).",
        )
    };
    if current.status == DeliveryStatus::Pending {
        return Err(pending());
    }
    let resent = app
        .webhook_deliveries
        .resend(&endpoint.endpoint_id, &delivery_id, meta.now)
        .await?
        .ok_or_else(pending)?;
    // The re-send changes a delivery, not the endpoint: its event follows it.
    let resend = Change::noted(
        "webhook_endpoint.delivery_resent",
        endpoint.audit_target(),
        json!({"delivery_id": delivery_id, "event_type": resent.event_type}),
    );
    app.audit
        .record(
            &owner.org,
            &owner.author(meta),
            resend,
            "TransactWriteItems webhook delivery resent",
        )
        .await
        .map_err(audit_failed)?;
    Ok(json_response(
        StatusCode::ACCEPTED,
        &resent.to_json(),
        &meta.request_id,
    ))
}
