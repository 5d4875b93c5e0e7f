//! Idempotency-Key semantics that need no storage: the key's form, the request fingerprint
//! (method + path + canonical JSON body), and the stored response.

use lambda_http::http::{HeaderMap, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;
/// How long a completed request is remembered.
pub const IDEMPOTENCY_TTL_SECS: i64 = 24 * 60 * 60;
/// How long an in-progress record holds the key: past the function timeout (template.yaml's
/// `Timeout`) plus a margin for clock differences between instances, so the request that
/// took it can no longer be running when another takes it over.
pub const IN_PROGRESS_LOCK_SECS: i64 = crate::request::FUNCTION_TIMEOUT_SECS as i64 + 5;
/// Response headers worth replaying; Request-Id is always the new request's own.
const REPLAYED_HEADERS: &[&str] = &["content-type", "location", "cache-control"];

/// 1-255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The request's key, if it sent one. Sent twice or malformed is a 400.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let mut values = headers.get_all(IDEMPOTENCY_KEY_HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        let bad = || {
            ApiError::invalid_param(
                "Idempotency-Key",
                format!("Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters, sent once."),
            )
        };
        if values.next().is_some() {
            return Err(bad());
        }
        let text = value.to_str().map_err(|_| bad())?;
        if text.is_empty()
            || text.len() > MAX_IDEMPOTENCY_KEY_CHARS
            || !text.bytes().all(|b| (0x20..=0x7e).contains(&b))
        {
            return Err(bad());
        }
        Ok(Some(Self(text.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same key within `scope` (a member's own keys, apart from every key's and from
    /// other members'): `scope` never contains the separator's neighbour forms of a key.
    pub fn within(&self, scope: &str) -> Self {
        Self(format!("{scope}\u{1f}{}", self.0))
    }
}

/// JSON with object keys sorted at every level and no whitespace: the same request written
/// differently gets the same fingerprint.
pub fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(v, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

pub fn fingerprint(method: &str, path: &str, body: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b"\n");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_json(body).as_bytes());
    hex::encode(hasher.finalize())
}

/// A completed response, kept to be replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl StoredResponse {
    pub fn capture(response: &Response<Body>) -> Self {
        let headers = REPLAYED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = response.headers().get(*name)?.to_str().ok()?;
                Some(((*name).to_owned(), value.to_owned()))
            })
            .collect();
        let body = match response.body() {
            Body::Text(text) => text.clone(),
            Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            _ => String::new(),
        };
        Self {
            status: response.status().as_u16(),
            headers,
            body,
        }
    }

    /// The stored response as it was, byte for byte, with `Idempotent-Replayed: true`.
    pub fn replay(&self) -> Response<Body> {
        let mut response = Response::new(Body::Text(self.body.clone()));
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                lambda_http::http::HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(IDEMPOTENCY_KEY_HEADER, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn keys_are_printable_ascii_up_to_255() {
        assert_eq!(IdempotencyKey::from_headers(&HeaderMap::new()), Ok(None));
        let key = IdempotencyKey::from_headers(&headers(&["550e8400-e29b-41d4-a716-446655440000"]))
            .unwrap()
            .unwrap();
        assert_eq!(key.as_str(), "550e8400-e29b-41d4-a716-446655440000");
        assert!(IdempotencyKey::from_headers(&headers(&[&"k".repeat(255)]))
            .unwrap()
            .is_some());
        for bad in ["".to_owned(), "k".repeat(256), "tab\there".to_owned()] {
            let err = IdempotencyKey::from_headers(&headers(&[&bad])).unwrap_err();
            assert_eq!(err.param(), Some("Idempotency-Key"), "{bad:?}");
        }
        assert!(IdempotencyKey::from_headers(&headers(&["a", "b"])).is_err());
    }

    #[test]
    fn fingerprints_ignore_layout_and_key_order_only() {
        let a: Value =
            serde_json::from_str(r#"{"fullName":"Jane","metadata":{"b":"2","a":"1"}}"#).unwrap();
        let b: Value = serde_json::from_str(
            "{ \"metadata\" : {\"a\":\"1\", \"b\":\"2\"},\n \"fullName\": \"Jane\" }",
        )
        .unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"fullName":"Jane","metadata":{"a":"1","b":"2"}}"#
        );
        assert_eq!(
            fingerprint("POST", "/v1/customers", &a),
            fingerprint("POST", "/v1/customers", &b)
        );
        assert_ne!(
            fingerprint("POST", "/v1/customers", &a),
            fingerprint("POST", "/v1/customers", &json!({"fullName": "Jane"}))
        );
        assert_ne!(
            fingerprint("POST", "/v1/customers", &a),
            fingerprint("PATCH", "/v1/customers", &a)
        );
        assert_ne!(
            fingerprint("PATCH", "/v1/customers/1", &a),
            fingerprint("PATCH", "/v1/customers/2", &a)
        );
        // A renamed field is another request, even if it means the same.
        assert_ne!(
            fingerprint("POST", "/", &json!({"fullName": "J"})),
            fingerprint("POST", "/", &json!({"full_name": "J"}))
        );
    }

    #[test]
    fn replays_carry_the_stored_bytes_and_the_replayed_header() {
        let mut original = Response::new(Body::Text("{\"id\": 1}".into()));
        *original.status_mut() = StatusCode::CREATED;
        original
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        original
            .headers_mut()
            .insert("request-id", HeaderValue::from_static("first"));
        let stored = StoredResponse::capture(&original);
        assert!(stored.headers.iter().all(|(n, _)| n != "request-id"));
        let replay = stored.replay();
        assert_eq!(replay.status(), StatusCode::CREATED);
        assert_eq!(replay.headers()["idempotent-replayed"], "true");
        assert_eq!(replay.headers()["content-type"], "application/json");
        assert_eq!(replay.body(), &Body::Text("{\"id\": 1}".into()));
    }

    #[test]
    fn the_lock_outlives_the_function() {
        assert!(IN_PROGRESS_LOCK_SECS > crate::request::FUNCTION_TIMEOUT_SECS as i64);
    }
}
