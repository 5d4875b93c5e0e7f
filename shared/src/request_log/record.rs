//! One request of one key, as the request log keeps it: read from the function's JSON log
//! line (the line every request writes; see `edge::http`). Ids only, never a secret.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::time::{self, Timestamp};

/// How long records are kept (DynamoDB TTL).
pub const REQUEST_LOG_TTL_DAYS: i64 = 90;
/// A user agent is kept to this many characters.
pub const MAX_USER_AGENT_CHARS: usize = 256;
/// Customer ids kept per request (a full list page is 100).
pub const MAX_CUSTOMER_IDS: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// The request id (API Gateway's, the `Request-Id` header).
    pub id: String,
    #[serde(with = "crate::time::millis")]
    pub at: Timestamp,
    pub org: String,
    pub key_id: String,
    pub method: String,
    pub route: String,
    pub path: String,
    pub status: u16,
    pub error_code: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub customer_ids: Vec<String>,
    pub idempotent_replayed: bool,
    pub latency_ms: f64,
}

/// `text` cut to `max` characters.
pub fn truncate_chars(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

fn non_empty(value: &Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

impl RequestRecord {
    /// The record a log line describes, if it is a request line in which a key was
    /// identified (others — other lines, requests with no key or an unknown one — are not
    /// any key's), and not a source's repeated refusal within one second (the first is
    /// kept; a flood of them can't fill the log). `fallback_at` is the log event's own time, for a line without one.
    pub fn from_log_line(line: &str, fallback_at: Option<Timestamp>) -> Option<Self> {
        let line: Value = serde_json::from_str(line).ok()?;
        if line["message"] != "request" || line["repeated_refusal"] == true {
            return None;
        }
        let key_id = non_empty(&line["key_id"])?;
        let org = non_empty(&line["org"])?;
        let at = line["timestamp"]
            .as_str()
            .and_then(time::parse)
            .or(fallback_at)
            .map(time::truncate_to_millis)?;
        let customer_ids = line["customer_ids"]
            .as_str()
            .unwrap_or_default()
            .split(',')
            .filter(|id| !id.is_empty())
            .take(MAX_CUSTOMER_IDS)
            .map(str::to_owned)
            .collect();
        Some(Self {
            id: non_empty(&line["request_id"])?,
            at,
            org,
            key_id,
            method: non_empty(&line["method"]).unwrap_or_default(),
            route: non_empty(&line["route"]).unwrap_or_default(),
            path: non_empty(&line["path"]).unwrap_or_default(),
            status: u16::try_from(line["status"].as_u64()?).ok()?,
            error_code: non_empty(&line["error_code"]),
            source_ip: non_empty(&line["source_ip"]),
            user_agent: non_empty(&line["user_agent"])
                .map(|ua| truncate_chars(&ua, MAX_USER_AGENT_CHARS)),
            customer_ids,
            idempotent_replayed: line["idempotent_replayed"].as_bool().unwrap_or(false),
            latency_ms: line["latency_ms"].as_f64().unwrap_or_default(),
        })
    }

    /// The API object.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "object": "request",
            "id": self.id,
            "at": time::format(&self.at),
            "key_id": self.key_id,
            "method": self.method,
            "route": self.route,
            "path": self.path,
            "status": self.status,
            "error_code": self.error_code,
            "source_ip": self.source_ip,
            "user_agent": self.user_agent,
            "customer_ids": self.customer_ids,
            "idempotent_replayed": self.idempotent_replayed,
            "latency_ms": self.latency_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(extra: Value) -> String {
        let mut base = serde_json::json!({
            "timestamp": "2026-11-23T10:00:00.123456Z", "level": "INFO", "message": "request",
            "request_id": "req-1", "route": "GET /v1/customers/{id}", "method": "GET",
            "path": "/v1/customers/0193", "status": 200, "latency_ms": 3.5, "org": "acme",
            "key_id": "key_abc", "source_ip": "203.0.113.9", "customer_ids": "0193",
            "user_agent": "Zapier", "error_code": "", "idempotent_replayed": false
        });
        if let (Value::Object(base), Value::Object(extra)) = (&mut base, extra) {
            base.extend(extra);
        }
        base.to_string()
    }

    #[test]
    fn a_request_line_with_a_key_is_a_record() {
        let record = RequestRecord::from_log_line(&line(serde_json::json!({})), None).unwrap();
        assert_eq!(record.id, "req-1");
        assert_eq!(time::format(&record.at), "2026-11-23T10:00:00.123Z");
        assert_eq!(record.customer_ids, ["0193"]);
        assert_eq!(record.error_code, None);
        assert_eq!(record.status, 200);
        assert_eq!(record.to_json()["object"], "request");
    }

    #[test]
    fn other_lines_and_keyless_requests_are_nobodys() {
        for extra in [
            serde_json::json!({"key_id": ""}),
            serde_json::json!({"org": ""}),
            serde_json::json!({"message": "request failed"}),
            serde_json::json!({"status": "200"}),
        ] {
            assert_eq!(
                RequestRecord::from_log_line(&line(extra.clone()), None),
                None,
                "{extra}"
            );
        }
        assert_eq!(RequestRecord::from_log_line("not json", None), None);
    }

    #[test]
    fn long_fields_are_bounded() {
        let ids: Vec<String> = (0..150).map(|i| format!("id{i}")).collect();
        let record = RequestRecord::from_log_line(
            &line(
                serde_json::json!({"user_agent": "é".repeat(300), "customer_ids": ids.join(",")}),
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            record.user_agent.unwrap().chars().count(),
            MAX_USER_AGENT_CHARS
        );
        assert_eq!(record.customer_ids.len(), MAX_CUSTOMER_IDS);
    }
}
