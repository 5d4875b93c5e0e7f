//! `ApiError`: every failure a client can see, and the one JSON envelope it becomes.

use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Response};
use serde_json::json;

use crate::keys::scope::Scope;
use crate::storage::StorageError;

/// Seconds a client should wait after a 503 before retrying.
pub const SERVICE_UNAVAILABLE_RETRY_AFTER_SECS: u32 = 1;
pub const REQUEST_ID_HEADER: &str = "request-id";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<String>,
    },
    #[error("Missing, malformed, unknown, revoked or expired API key.")]
    Unauthorized,
    /// A member-API request without a usable member session.
    #[error("Missing or invalid member session (sign in again), or the member is not active.")]
    SessionUnauthorized,
    /// A signed report (GitHub secret scanning) whose signature is missing or does not
    /// verify; the message says which.
    #[error("{0}")]
    SignatureRejected(&'static str),
    #[error("This API key may not be used from this IP address.")]
    IpNotAllowed,
    #[error("This API key lacks the {0} scope required by this route.")]
    ForbiddenScope(Scope),
    /// A key's scopes don't cover what the request asks for (`param`), said in full.
    #[error("{message}")]
    ForbiddenScopeFor {
        message: String,
        param: Option<String>,
    },
    /// The member's role lacks a permission; `param` names the field asking for too much.
    #[error("{message}")]
    ForbiddenPermission {
        message: String,
        param: Option<String>,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{method} is not allowed on this route.")]
    MethodNotAllowed {
        method: Method,
        allowed: Vec<Method>,
    },
    #[error("{message}")]
    Conflict {
        message: String,
        param: Option<String>,
    },
    #[error("A request with this Idempotency-Key is still being processed; retry later.")]
    IdempotencyKeyInUse,
    #[error("Request bodies are limited to {limit_bytes} bytes.")]
    PayloadTooLarge { limit_bytes: usize },
    /// The message says what is wrong with the declared type.
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("This Idempotency-Key was already used with a different request.")]
    IdempotencyKeyReused,
    #[error("Too many requests; retry after {}.", seconds(*.retry_after_secs))]
    RateLimited { retry_after_secs: u32 },
    #[error("Something went wrong on our side. It has been logged.")]
    Internal,
    #[error("The service is temporarily unavailable; retry after {}.", seconds(*.retry_after_secs))]
    ServiceUnavailable { retry_after_secs: u32 },
}

/// "1 second", "5 seconds".
fn seconds(n: u32) -> String {
    if n == 1 {
        "1 second".to_owned()
    } else {
        format!("{n} seconds")
    }
}

/// Every `code` the envelope can carry.
pub const ERROR_CODES: &[&str] = &[
    "invalid_request",
    "unauthorized",
    "ip_not_allowed",
    "forbidden_scope",
    "forbidden_permission",
    "not_found",
    "method_not_allowed",
    "conflict",
    "idempotency_key_in_use",
    "payload_too_large",
    "unsupported_media_type",
    "idempotency_key_reused",
    "rate_limited",
    "internal_error",
    "service_unavailable",
];

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::InvalidRequest {
            message: message.into(),
            param: None,
        }
    }

    pub fn invalid_param(param: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::InvalidRequest {
            message: message.into(),
            param: Some(param.into()),
        }
    }

    /// 403 `forbidden_permission`: the member's role lacks `permission`.
    pub fn lacks(permission: crate::members::role::Permission) -> Self {
        ApiError::ForbiddenPermission {
            message: format!("Your role lacks the {permission} permission this needs."),
            param: None,
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::Conflict {
            message: message.into(),
            param: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized
            | ApiError::SessionUnauthorized
            | ApiError::SignatureRejected(_) => StatusCode::UNAUTHORIZED,
            ApiError::IpNotAllowed
            | ApiError::ForbiddenScope(_)
            | ApiError::ForbiddenScopeFor { .. }
            | ApiError::ForbiddenPermission { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } | ApiError::IdempotencyKeyInUse => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::ServiceUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest { .. } => "invalid_request",
            ApiError::Unauthorized
            | ApiError::SessionUnauthorized
            | ApiError::SignatureRejected(_) => "unauthorized",
            ApiError::ForbiddenPermission { .. } => "forbidden_permission",
            ApiError::IpNotAllowed => "ip_not_allowed",
            ApiError::ForbiddenScope(_) | ApiError::ForbiddenScopeFor { .. } => "forbidden_scope",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Conflict { .. } => "conflict",
            ApiError::IdempotencyKeyInUse => "idempotency_key_in_use",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Internal => "internal_error",
            ApiError::ServiceUnavailable { .. } => "service_unavailable",
        }
    }

    pub fn param(&self) -> Option<&str> {
        match self {
            ApiError::InvalidRequest { param, .. }
            | ApiError::Conflict { param, .. }
            | ApiError::ForbiddenScopeFor { param, .. }
            | ApiError::ForbiddenPermission { param, .. } => param.as_deref(),
            _ => None,
        }
    }

    /// The envelope, with `Request-Id` and the headers the error calls for.
    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let body = json!({
            "error": {
                "code": self.code(),
                "message": self.to_string(),
                "param": self.param(),
                "request_id": request_id,
            }
        });
        let mut response = json_response(self.status(), &body, request_id);
        let headers = response.headers_mut();
        match &self {
            ApiError::RateLimited { retry_after_secs }
            | ApiError::ServiceUnavailable { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::MethodNotAllowed { allowed, .. } => {
                let allow = allowed
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                if let Ok(value) = HeaderValue::from_str(&allow) {
                    headers.insert(header::ALLOW, value);
                }
            }
            ApiError::Unauthorized | ApiError::SessionUnauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "storage unavailable");
                ApiError::ServiceUnavailable {
                    retry_after_secs: SERVICE_UNAVAILABLE_RETRY_AFTER_SECS,
                }
            }
            StorageError::Other(detail) | StorageError::Corrupt(detail) => {
                tracing::error!(error = %detail, "storage error");
                ApiError::Internal
            }
        }
    }
}

/// A JSON response with the headers every response carries.
pub fn json_response(
    status: StatusCode,
    body: &serde_json::Value,
    request_id: &str,
) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(err: ApiError) -> (StatusCode, serde_json::Value, lambda_http::http::HeaderMap) {
        let response = err.into_response("req-1");
        let status = response.status();
        let headers = response.headers().clone();
        let Body::Text(text) = response.into_body() else {
            panic!("text body")
        };
        (status, serde_json::from_str(&text).unwrap(), headers)
    }

    #[test]
    fn envelope_has_the_contract_shape() {
        let (status, body, headers) =
            envelope(ApiError::invalid_param("limit", "limit must be 1-100"));
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!({"error": {"code": "invalid_request", "message": "limit must be 1-100", "param": "limit", "request_id": "req-1"}})
        );
        assert_eq!(headers["request-id"], "req-1");
        assert_eq!(headers["content-type"], "application/json");
    }

    #[test]
    fn a_wait_of_one_second_is_said_in_the_singular() {
        let said = |err: ApiError| err.to_string();
        assert_eq!(
            said(ApiError::RateLimited {
                retry_after_secs: 1
            }),
            "Too many requests; retry after 1 second."
        );
        assert_eq!(
            said(ApiError::RateLimited {
                retry_after_secs: 3
            }),
            "Too many requests; retry after 3 seconds."
        );
        assert_eq!(
            said(ApiError::ServiceUnavailable {
                retry_after_secs: 1
            }),
            "The service is temporarily unavailable; retry after 1 second."
        );
    }

    #[test]
    fn every_variant_maps_to_its_contract_status_and_code() {
        let cases = [
            (ApiError::invalid("x"), 400, "invalid_request"),
            (ApiError::Unauthorized, 401, "unauthorized"),
            (ApiError::SessionUnauthorized, 401, "unauthorized"),
            (ApiError::SignatureRejected("x"), 401, "unauthorized"),
            (ApiError::IpNotAllowed, 403, "ip_not_allowed"),
            (
                ApiError::lacks(crate::members::role::Permission::OrgMembers),
                403,
                "forbidden_permission",
            ),
            (
                ApiError::ForbiddenScope(Scope::AmlRead),
                403,
                "forbidden_scope",
            ),
            (ApiError::NotFound("x".into()), 404, "not_found"),
            (
                ApiError::MethodNotAllowed {
                    method: Method::PUT,
                    allowed: vec![Method::GET],
                },
                405,
                "method_not_allowed",
            ),
            (
                ApiError::Conflict {
                    message: "x".into(),
                    param: None,
                },
                409,
                "conflict",
            ),
            (ApiError::IdempotencyKeyInUse, 409, "idempotency_key_in_use"),
            (
                ApiError::PayloadTooLarge { limit_bytes: 65536 },
                413,
                "payload_too_large",
            ),
            (
                ApiError::UnsupportedMediaType("Request bodies must be application/json."),
                415,
                "unsupported_media_type",
            ),
            (
                ApiError::IdempotencyKeyReused,
                422,
                "idempotency_key_reused",
            ),
            (
                ApiError::RateLimited {
                    retry_after_secs: 2,
                },
                429,
                "rate_limited",
            ),
            (ApiError::Internal, 500, "internal_error"),
            (
                ApiError::ServiceUnavailable {
                    retry_after_secs: 1,
                },
                503,
                "service_unavailable",
            ),
        ];
        for (err, status, code) in cases {
            let (got_status, body, _) = envelope(err);
            assert_eq!(got_status.as_u16(), status);
            assert_eq!(body["error"]["code"], code);
            assert!(ERROR_CODES.contains(&code), "{code} is listed");
            assert!(!body["error"]["message"].as_str().unwrap().is_empty());
        }
    }

    #[test]
    fn forbidden_scope_names_the_scope() {
        let (_, body, _) = envelope(ApiError::ForbiddenScope(Scope::CustomersWrite));
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("customers:write"));
    }

    #[test]
    fn retry_after_and_allow_headers() {
        let (_, _, headers) = envelope(ApiError::ServiceUnavailable {
            retry_after_secs: 1,
        });
        assert_eq!(headers["retry-after"], "1");
        let (_, _, headers) = envelope(ApiError::RateLimited {
            retry_after_secs: 7,
        });
        assert_eq!(headers["retry-after"], "7");
        let (_, _, headers) = envelope(ApiError::MethodNotAllowed {
            method: Method::DELETE,
            allowed: vec![Method::GET, Method::POST],
        });
        assert_eq!(headers["allow"], "GET, POST");
    }

    #[test]
    fn storage_failures_hide_their_detail() {
        let (status, body, headers) =
            envelope(StorageError::Unavailable("throttled: table X".into()).into());
        assert_eq!(status, 503);
        assert!(headers.contains_key("retry-after"));
        assert!(!body.to_string().contains("table X"));
        let (status, body, _) = envelope(StorageError::Corrupt("bad attr key_hash".into()).into());
        assert_eq!(status, 500);
        assert!(!body.to_string().contains("key_hash"));
    }
}
