//! What every handler is given about its request: ids, source, clock reading, and what the
//! request log line should say beyond the request itself.

use std::net::IpAddr;

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use crate::keys::verify::Principal;
use crate::time::{self, Timestamp};

/// Facts about the request that every step may need.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    pub source_ip: Option<IpAddr>,
    pub now: Timestamp,
}

impl RequestMeta {
    /// Request id and source IP come from API Gateway's request context, never from headers
    /// a client could set.
    pub fn of(req: &Request) -> Self {
        let (request_id, source_ip) = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => (
                ctx.request_id.clone().filter(|id| !id.is_empty()),
                ctx.http.source_ip.as_deref().and_then(|ip| ip.parse().ok()),
            ),
            _ => (None, None),
        };
        Self {
            request_id: request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            source_ip,
            now: time::now(),
        }
    }
}

/// What the request log line says beyond the request itself: ids only, never secrets or PII.
#[derive(Debug, Default, Clone)]
pub struct RequestLog {
    pub org: Option<String>,
    pub key_id: Option<String>,
    pub customer_ids: Vec<String>,
}

impl RequestLog {
    pub fn principal(&mut self, principal: &Principal) {
        self.org = Some(principal.org_id.to_string());
        self.key_id = Some(principal.key_id.clone());
    }
}
