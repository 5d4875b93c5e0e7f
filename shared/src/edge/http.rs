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
    answer(function.endpoint.name(), req, move |req, meta, mut log| async move {
        dispatch(&app, function, &req, &meta, &mut log).await
    })
    .await
}

/// The frame around every request: its meta, the deadline, panic isolation, the envelope,
/// `Request-Id`, and the one log line. `work` is the route's part; what it tells the log it
/// is given (the key, the member, the customers) reaches the line even when it panics or
/// runs out of time.
pub async fn answer<F, Fut>(route: String, req: Request, work: F) -> Response<Body>
where
    F: FnOnce(Request, RequestMeta, RequestLog) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>> + Send + 'static,
{
    let started = Instant::now();
    let meta = RequestMeta::of(&req);
    let method = req.method().to_string();
    let path = loggable_path(req.uri().path());
    let user_agent = meta.user_agent.clone().unwrap_or_default();
    let backstop = meta.backstop();
    // A panic in the handler ends its task, not the function: it is answered as a 500. The
    // release profile unwinds (Cargo.toml) so that this holds in the build that ships.
    let log = RequestLog::default();
    let mut task = tokio::spawn(work(req, meta.clone(), log.clone()));
    let result = match tokio::time::timeout_at(backstop, &mut task).await {
        Ok(Ok(done)) => done,
        Ok(Err(_)) => {
            tracing::error!(request_id = %meta.request_id, "handler panicked");
            Err(ApiError::Internal)
        }
        Err(_) => {
            // Out of time: stop the work at its next await rather than let it run on into
            // the next invocation of a frozen-and-thawed Lambda process.
            task.abort();
            tracing::warn!(request_id = %meta.request_id, "request ran out of time");
            Err(ApiError::ServiceUnavailable {
                retry_after_secs: SERVICE_UNAVAILABLE_RETRY_AFTER_SECS,
            })
        }
    };
    let log = log.facts();
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
        repeated_refusal = log.repeated_refusal,
        "request"
    );
    response
}

/// The path as logged and kept in the request log: the fixed words of our routes, and
/// segments shaped like our own ids (customer and member UUIDs, `key_…`, `we_…`, `pk_…`,
/// `msg_…`); any other segment is `{redacted}`, so a name, a birth date or a card number a
/// client typed into a URL is never stored.
pub fn loggable_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.is_empty() || is_route_word(segment) || is_our_id(segment) {
                segment
            } else {
                "{redacted}"
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The literal segments of every route's path (`v1`, `customers`, `api-keys`, …).
fn is_route_word(segment: &str) -> bool {
    static WORDS: std::sync::OnceLock<std::collections::BTreeSet<&'static str>> =
        std::sync::OnceLock::new();
    WORDS
        .get_or_init(|| {
            Route::ALL
                .iter()
                .flat_map(|route| route.path().split('/'))
                .filter(|word| !word.is_empty() && !word.starts_with('{'))
                .collect()
        })
        .contains(segment)
}

/// A customer or member id (a UUID), or one of our prefixed ids, by the same checks the
/// routes make of them.
fn is_our_id(segment: &str) -> bool {
    crate::keys::table::is_key_id(segment)
        || crate::webhooks::endpoint::is_endpoint_id(segment)
        || crate::webhooks::delivery::is_delivery_id(segment)
        || crate::providers::table::is_provider_key_id(segment)
        || (segment.len() == 36 && uuid::Uuid::parse_str(segment).is_ok())
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
                // A write's key is a read's too: the instance remembers its data space.
                app.key_facts
                    .remember(&principal.key.key_hash, &principal.data_space());
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
        // A read: authentication, and on a warm instance the data call beside it.
        Handler::Read(read) => {
            let work = crate::edge::speculation::serve_read(app, route, read, req, meta, log);
            before(meta.answer_by(), &meta.request_id, work).await
        }
        // A signed report: the handler checks the signature before anything else.
        Handler::Public(handler) => {
            before(meta.answer_by(), &meta.request_id, handler(app, req, meta)).await
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
        // Short lowercase segments that are no route's word: a name with a birth date, a
        // card number, a bare word.
        assert_eq!(
            loggable_path("/v1/customers/jane-doe-1985-05-17"),
            "/v1/customers/{redacted}"
        );
        assert_eq!(
            loggable_path("/v1/customers/4111111111111111"),
            "/v1/customers/{redacted}"
        );
        assert_eq!(
            loggable_path("/v1/customers/jane"),
            "/v1/customers/{redacted}"
        );
        assert_eq!(loggable_path("/v2/customers"), "/{redacted}/customers");
        // Every route's own path is kept word for word, with ids of each kind.
        for path in [
            "/v1/org/webhook-endpoints/we_4f8Kx2LmQ9sT1vWzA0bC/deliveries/msg_0123456789abcdef0123456789abcdef/resend",
            "/v1/org/provider-keys/pk_7Hq/call-summaries",
        ] {
            assert_eq!(loggable_path(path), path);
        }
        for route in Route::ALL {
            if route.path().contains("{asset}") {
                continue;
            }
            let path = route
                .path()
                .replace("{id}", id)
                .replace("{delivery_id}", "msg_0123456789abcdef0123456789abcdef");
            assert_eq!(loggable_path(&path), path, "{route:?}");
        }
        // A UUID's shape, not any hex: a 32-digit number is not an id.
        assert_eq!(
            loggable_path(&format!("/v1/customers/{}", "1".repeat(32))),
            "/v1/customers/{redacted}"
        );
    }
}
