//! What every handler is given about its request: ids, source, clock reading, and what the
//! request log line should say beyond the request itself.

use std::net::IpAddr;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use tokio::time::Instant;

use crate::error::ApiError;
use crate::org::OrgId;
use crate::time::{self, Timestamp};

/// The function's timeout (template.yaml `Globals.Function.Timeout`; a test holds them equal).
/// Used when an invocation carries no deadline (a test's default context).
pub const FUNCTION_TIMEOUT_SECS: u64 = 10;
/// Kept free at the end of an invocation to turn the outcome into a response.
pub const RESPONSE_MARGIN_MILLIS: u64 = 300;
/// Kept free after a write's own work to release or complete its idempotency record.
pub const CLEANUP_MARGIN_MILLIS: u64 = 1_200;

/// The request's body as bytes (none for an empty one).
pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// Facts about the request that every step may need.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    pub source_ip: Option<IpAddr>,
    /// The caller's `User-Agent`, cut to the request log's length (for the audit trail).
    pub user_agent: Option<String>,
    /// The clock reading at the start of the request: for checks (key expiry), never for
    /// stamping a write, which takes its own reading just before it is sent.
    pub now: Timestamp,
    /// When the Lambda invocation ends, from the runtime's context.
    pub deadline: Instant,
}

impl RequestMeta {
    /// Request id and source IP come from API Gateway's request context, never from headers
    /// a client could set; the deadline from the Lambda context.
    pub fn of(req: &Request) -> Self {
        let (request_id, source_ip) = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => (
                ctx.request_id.clone().filter(|id| !id.is_empty()),
                ctx.http.source_ip.as_deref().and_then(|ip| ip.parse().ok()),
            ),
            _ => (None, None),
        };
        let deadline_ms = req.lambda_context_ref().map_or(0, |ctx| ctx.deadline);
        let user_agent = req
            .headers()
            .get(lambda_http::http::header::USER_AGENT)
            .map(|ua| {
                crate::request_log::record::truncate_chars(
                    &String::from_utf8_lossy(ua.as_bytes()),
                    crate::request_log::record::MAX_USER_AGENT_CHARS,
                )
            })
            .filter(|ua| !ua.is_empty());
        Self {
            request_id: request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            source_ip,
            user_agent,
            now: time::now(),
            deadline: deadline_from_epoch_millis(deadline_ms),
        }
    }

    /// Until when the request may work; past it the answer is a 503.
    pub fn answer_by(&self) -> Instant {
        earlier(self.deadline, RESPONSE_MARGIN_MILLIS)
    }

    /// The frame's last resort, a little after `answer_by`: the route's own bound fires
    /// first and keeps what the request log line should say.
    pub fn backstop(&self) -> Instant {
        earlier(self.deadline, RESPONSE_MARGIN_MILLIS / 2)
    }

    /// Until when a write may run, leaving time to release its idempotency record.
    pub fn write_by(&self) -> Instant {
        earlier(self.answer_by(), CLEANUP_MARGIN_MILLIS)
    }
}

/// `at` less `millis`, or `at` itself where the platform's monotonic clock cannot
/// represent that far back (`Instant - Duration` would panic there).
fn earlier(at: Instant, millis: u64) -> Instant {
    at.checked_sub(Duration::from_millis(millis)).unwrap_or(at)
}

/// Lambda allows at most 15 minutes: a deadline further out is not one we believe.
const MAX_INVOCATION_MILLIS: u64 = 15 * 60 * 1000;

/// The Lambda deadline (milliseconds since the epoch) as an instant of this process's clock.
/// No deadline (0) means a whole function timeout from now.
pub fn deadline_from_epoch_millis(deadline_ms: u64) -> Instant {
    let now = Instant::now();
    if deadline_ms == 0 {
        return now + Duration::from_secs(FUNCTION_TIMEOUT_SECS);
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let left = deadline_ms
        .saturating_sub(now_ms)
        .min(MAX_INVOCATION_MILLIS);
    now + Duration::from_millis(left)
}

/// Runs `work` until `by`; running out of time is a 503, never a hang past the deadline.
/// The warning names the request, so an operator (and a test) can tell a 503 of the
/// deadline's bound from one of DynamoDB's.
pub async fn before<T>(
    by: Instant,
    request_id: &str,
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout_at(by, work).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(
                request_id,
                "request ran out of time before the function's deadline"
            );
            Err(ApiError::ServiceUnavailable {
                retry_after_secs: crate::error::SERVICE_UNAVAILABLE_RETRY_AFTER_SECS,
            })
        }
    }
}

/// Where a key stands against its rate limit after this request: the `RateLimit-*`
/// headers of every response to a request its key authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_secs: u32,
}

/// What the request log line says beyond the request itself: ids only, never secrets or
/// PII; and the key's rate state, for the response headers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoggedFacts {
    pub org: Option<String>,
    pub key_id: Option<String>,
    /// The signed-in member, on the member API.
    pub member_id: Option<String>,
    pub customer_ids: Vec<String>,
    pub rate: Option<RateState>,
    /// A refusal for the source after its first in the same second: logged for operators,
    /// but not kept in the key's request log (a flood can't fill it).
    pub repeated_refusal: bool,
}

/// The facts of one request as the work learns them, shared with the frame that writes its
/// log line: a handler that panics, or is stopped at the backstop, has already told the
/// frame which key made the request, so the line still lands in that key's request log.
#[derive(Debug, Default, Clone)]
pub struct RequestLog(std::sync::Arc<std::sync::Mutex<LoggedFacts>>);

impl RequestLog {
    fn with<T>(&self, f: impl FnOnce(&mut LoggedFacts) -> T) -> T {
        // A panic while the lock was held leaves facts that are still facts.
        let mut facts = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut facts)
    }

    /// The key was found: every later outcome, refusals included, is logged under it.
    pub fn identified(&self, org: &OrgId, key_id: &str) {
        self.with(|facts| {
            facts.org = Some(org.to_string());
            facts.key_id = Some(key_id.to_owned());
        });
    }

    /// The member session was read: the line names the member (an id, never the email).
    pub fn member(&self, member: &crate::members::table::Member) {
        self.with(|facts| {
            facts.org = Some(member.org_id.to_string());
            facts.member_id = Some(member.id.clone());
        });
    }

    /// A customer this request read or wrote (each once).
    pub fn customer(&self, id: &str) {
        self.with(|facts| {
            if !facts.customer_ids.iter().any(|logged| logged == id) {
                facts.customer_ids.push(id.to_owned());
            }
        });
    }

    pub fn repeated_refusal(&self) {
        self.with(|facts| facts.repeated_refusal = true);
    }

    pub fn set_rate(&self, rate: RateState) {
        self.with(|facts| facts.rate = Some(rate));
    }

    /// What is known so far.
    pub fn facts(&self) -> LoggedFacts {
        self.with(|facts| facts.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now_ms() -> u64 {
        u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap()
    }

    #[test]
    fn deadlines_are_read_from_the_context_and_kept_sane() {
        let before = Instant::now();
        let soon = deadline_from_epoch_millis(now_ms() + 2_000);
        assert!(soon >= before + Duration::from_millis(1_900));
        assert!(soon <= Instant::now() + Duration::from_millis(2_000));
        // Past deadlines mean no time left; absurd ones are capped; none means the timeout.
        assert!(deadline_from_epoch_millis(now_ms() - 60_000) <= Instant::now());
        assert!(
            deadline_from_epoch_millis(u64::MAX)
                <= Instant::now() + Duration::from_millis(MAX_INVOCATION_MILLIS)
        );
        let default = deadline_from_epoch_millis(0);
        assert!(default >= before + Duration::from_secs(FUNCTION_TIMEOUT_SECS));
    }

    #[test]
    fn margins_are_taken_without_ever_panicking() {
        let at = Instant::now();
        assert_eq!(earlier(at, 100), at - Duration::from_millis(100));
        // However far back a margin reaches, the arithmetic does not panic.
        let _ = earlier(at, u64::MAX);
    }
}
