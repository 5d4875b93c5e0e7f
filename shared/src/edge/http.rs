//! The edge every function shares: request id, authentication, dispatch to the route's
//! handler, errors turned into the envelope, and one log line per request.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use lambda_http::http::HeaderValue;
use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::edge::routes::{unrouted, Route};
use crate::edge::telemetry::REQUEST_LINE_TARGET;
use crate::error::ERROR_CODES;
use crate::error::{ApiError, REQUEST_ID_HEADER, SERVICE_UNAVAILABLE_RETRY_AFTER_SECS};
use crate::functions::{self, Function, Handler};
use crate::idempotency::record::REPLAYED_HEADER;
use crate::keys::verify::authenticate;
use crate::request::{before, RequestLog, RequestMeta};
use crate::request_log::record::{truncate_chars, MAX_USER_AGENT_CHARS};

/// What a function serves: one route, or API Gateway's `$default` catch-all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Route(Route),
    Fallback,
}

impl Endpoint {
    pub fn name(self) -> String {
        match self {
            Endpoint::Route(route) => route.key(),
            Endpoint::Fallback => "$default".to_owned(),
        }
    }
}

/// Serves one request to `endpoint`, for a process that serves them all (the local
/// gateway, the tests). Never fails: every outcome, a panic included, is a response.
pub async fn handle(app: Arc<App>, endpoint: Endpoint, req: Request) -> Response<Body> {
    serve(app, functions::of(endpoint), req).await
}

/// Serves one request to `function`: what a function's binary runs for each event.
pub async fn serve(app: Arc<App>, function: Function, req: Request) -> Response<Body> {
    answer(function.endpoint.name(), req, move |req, meta| async move {
        let mut log = RequestLog::default();
        let result = dispatch(&app, function, &req, &meta, &mut log).await;
        (result, log)
    })
    .await
}

/// The frame around every request: its meta, the deadline, panic isolation, the envelope,
/// `Request-Id`, and the one log line. `work` is the route's part.
pub async fn answer<F, Fut>(route: String, req: Request, work: F) -> Response<Body>
where
    F: FnOnce(Request, RequestMeta) -> Fut,
    Fut: Future<Output = (Result<Response<Body>, ApiError>, RequestLog)> + Send + 'static,
{
    let started = Instant::now();
    let meta = RequestMeta::of(&req);
    let method = req.method().to_string();
    let path = loggable_path(req.uri().path());
    let user_agent = req
        .headers()
        .get(lambda_http::http::header::USER_AGENT)
        .map(|ua| {
            truncate_chars(
                &String::from_utf8_lossy(ua.as_bytes()),
                MAX_USER_AGENT_CHARS,
            )
        })
        .unwrap_or_default();
    let backstop = meta.backstop();
    // A panic in the handler ends its task, not the function: it is answered as a 500. The
    // release profile unwinds (Cargo.toml) so that this holds in the build that ships.
    let mut task = tokio::spawn(work(req, meta.clone()));
    let (result, log) = match tokio::time::timeout_at(backstop, &mut task).await {
        Ok(Ok(done)) => done,
        Ok(Err(_)) => {
            tracing::error!(request_id = %meta.request_id, "handler panicked");
            (Err(ApiError::Internal), RequestLog::default())
        }
        Err(_) => {
            // Out of time: stop the work at its next await rather than let it run on into
            // the next invocation of a frozen-and-thawed Lambda process.
            task.abort();
            tracing::warn!(request_id = %meta.request_id, "request ran out of time");
            (
                Err(ApiError::ServiceUnavailable {
                    retry_after_secs: SERVICE_UNAVAILABLE_RETRY_AFTER_SECS,
                }),
                RequestLog::default(),
            )
        }
    };
    let mut error_code = result.as_ref().err().map(ApiError::code);
    let mut response = result.unwrap_or_else(|err| {
        if err.status().is_server_error() {
            tracing::error!(request_id = %meta.request_id, code = err.code(), "request failed");
        }
        err.into_response(&meta.request_id)
    });
    if let Ok(value) = HeaderValue::from_str(&meta.request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    if let Some(rate) = log.rate {
        let headers = response.headers_mut();
        headers.insert("ratelimit-limit", HeaderValue::from(rate.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(rate.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(rate.reset_secs));
    }
    if error_code.is_none() && !response.status().is_success() {
        // A replayed error: its code is in the stored envelope.
        error_code = stored_error_code(&response);
    }
    let replayed = response.headers().contains_key(REPLAYED_HEADER);
    tracing::info!(
        target: REQUEST_LINE_TARGET,
        request_id = %meta.request_id,
        route = %route,
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        error_code = error_code.unwrap_or(""),
        idempotent_replayed = replayed,
        user_agent = %user_agent,
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        org = log.org.as_deref().unwrap_or(""),
        key_id = log.key_id.as_deref().unwrap_or(""),
        member_id = log.member_id.as_deref().unwrap_or(""),
        source_ip = %meta.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        customer_ids = %log.customer_ids.join(","),
        "request"
    );
    response
}

/// The path as logged and kept in the request log: our routes' own segments and ids as
/// they are, anything else (a client can put an email, or a key, in a path) redacted.
pub fn loggable_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            let ours = segment.len() <= 24
                && segment.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            let key_id = ["key_", "we_", "msg_"].iter().any(|prefix| {
                segment.strip_prefix(prefix).is_some_and(|rest| {
                    !rest.is_empty()
                        && rest.len() <= 60
                        && rest.bytes().all(|b| b.is_ascii_alphanumeric())
                })
            });
            if ours || key_id || uuid::Uuid::parse_str(segment).is_ok() {
                segment
            } else {
                "{redacted}"
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The error code of a stored (replayed) error envelope.
fn stored_error_code(response: &Response<Body>) -> Option<&'static str> {
    let Body::Text(text) = response.body() else {
        return None;
    };
    let code = serde_json::from_str::<serde_json::Value>(text).ok()?["error"]["code"]
        .as_str()?
        .to_owned();
    ERROR_CODES.iter().copied().find(|known| *known == code)
}

async fn dispatch(
    app: &App,
    function: Function,
    req: &Request,
    meta: &RequestMeta,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let route = match function.endpoint {
        Endpoint::Route(route) => route,
        Endpoint::Fallback => return Err(unrouted(req.method(), req.uri().path())),
    };
    // Everything, authentication included, answers by the route's deadline: out of time
    // is a 503 whose log line still names the key (writes set a tighter bound of their
    // own, so they can release an idempotency record in the time left).
    match function.handler {
        Handler::Key(handler) => {
            let work = async {
                let principal = authenticate(
                    &app.keys,
                    req.headers(),
                    meta.source_ip,
                    route.scope(),
                    meta.now,
                    log,
                )
                .await?;
                handler(app, req, &principal, meta, log).await
            };
            before(meta.answer_by(), &meta.request_id, work).await
        }
        // The member API: the session (the authorizer's claims, then the member record),
        // then the route's permission, then the route.
        Handler::Member(handler) => {
            let work = async {
                let member = crate::members::session::authenticate(&app.members, req, log).await?;
                if let Some(permission) = route.permission() {
                    crate::members::session::require(&member, permission)?;
                }
                handler(app, req, &member, meta).await
            };
            before(meta.answer_by(), &meta.request_id, work).await
        }
        Handler::Unrouted => Err(unrouted(req.method(), req.uri().path())),
        // The page's own function serves it; the library's handlers never do.
        Handler::Page => Err(ApiError::Internal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_paths_keep_our_segments_and_ids_only() {
        let id = "0193f1d2-7a2b-7c3d-8e4f-5a6b7c8d9e0f";
        assert_eq!(
            loggable_path(&format!("/v1/customers/{id}/aml")),
            format!("/v1/customers/{id}/aml")
        );
        assert_eq!(loggable_path("/v1/me"), "/v1/me");
        assert_eq!(
            loggable_path("/v1/customers/jane@example.com"),
            "/v1/customers/{redacted}"
        );
        let key = format!("ic_live_{}", "a".repeat(38));
        assert_eq!(
            loggable_path(&format!("/v1/customers/{key}")),
            "/v1/customers/{redacted}"
        );
        assert_eq!(loggable_path("/v1/Customers"), "/v1/{redacted}");
        // Key ids (mixed case) are ours too; a key itself never is.
        assert_eq!(
            loggable_path("/v1/org/api-keys/key_4f8Kx2LmQ9sT1vWzA0bC/requests"),
            "/v1/org/api-keys/key_4f8Kx2LmQ9sT1vWzA0bC/requests"
        );
        assert_eq!(
            loggable_path("/v1/org/api-keys/key_AB.c"),
            "/v1/org/api-keys/{redacted}"
        );
    }
}
