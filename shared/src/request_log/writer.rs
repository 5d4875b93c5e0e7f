//! The log-writer's handler: a CloudWatch Logs subscription event (base64 of gzip of JSON,
//! as Lambda receives it) in, request records out into the table. Deployed, each route
//! function's log group feeds it through a subscription filter; locally, the stack builds
//! the same events from its own log lines (`subscription_event`) and calls the same handler.

use std::io::{Read, Write};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde_json::{json, Value};

use crate::request_log::record::RequestRecord;
use crate::request_log::table::RequestLogTable;

/// The subscription filter pattern that selects the lines the writer keeps (template.yaml
/// uses the same): request lines in which a key was identified.
pub const FILTER_PATTERN: &str = r#"{ $.message = "request" && $.key_id = "key_*" }"#;

/// Whether a log line passes `FILTER_PATTERN` (what CloudWatch Logs would forward).
pub fn passes_filter(line: &str) -> bool {
    serde_json::from_str::<Value>(line).is_ok_and(|v| {
        v["message"] == "request" && v["key_id"].as_str().is_some_and(|k| k.starts_with("key_"))
    })
}

/// The log events a subscription event carries: `(epoch millis, message)`; none for a
/// control message (CloudWatch Logs' check that the destination is reachable).
pub fn decode(event: &Value) -> Result<Vec<(i64, String)>, String> {
    let data = event["awslogs"]["data"]
        .as_str()
        .ok_or("not a CloudWatch Logs subscription event (no awslogs.data)")?;
    let gzipped = STANDARD
        .decode(data)
        .map_err(|e| format!("awslogs.data is not base64: {e}"))?;
    let mut text = String::new();
    GzDecoder::new(gzipped.as_slice())
        .read_to_string(&mut text)
        .map_err(|e| format!("awslogs.data is not gzip of UTF-8: {e}"))?;
    let payload: Value =
        serde_json::from_str(&text).map_err(|e| format!("awslogs payload is not JSON: {e}"))?;
    if payload["messageType"] == "CONTROL_MESSAGE" {
        return Ok(Vec::new());
    }
    Ok(payload["logEvents"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| Some((e["timestamp"].as_i64()?, e["message"].as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default())
}

/// A subscription event for `lines` of `log_group`, exactly as CloudWatch Logs delivers one.
pub fn subscription_event(log_group: &str, lines: &[(i64, String)]) -> Result<Value, String> {
    let payload = json!({
        "messageType": "DATA_MESSAGE",
        "owner": "000000000000",
        "logGroup": log_group,
        "logStream": "local",
        "subscriptionFilters": ["RequestLog"],
        "logEvents": lines
            .iter()
            .enumerate()
            .map(|(i, (at, message))| json!({"id": i.to_string(), "timestamp": at, "message": message}))
            .collect::<Vec<_>>(),
    });
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(payload.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    let gzipped = gz.finish().map_err(|e| e.to_string())?;
    Ok(json!({"awslogs": {"data": STANDARD.encode(gzipped)}}))
}

/// Stores the request records of one subscription event; returns how many. An error fails
/// the invocation, so Lambda retries the event; writing a record twice is harmless (it
/// lands on the same item).
pub async fn handle(table: &RequestLogTable, event: &Value) -> Result<usize, String> {
    let records: Vec<RequestRecord> = decode(event)?
        .into_iter()
        .filter_map(|(at, line)| {
            let fallback = chrono::DateTime::from_timestamp_millis(at);
            RequestRecord::from_log_line(&line, fallback)
        })
        .collect();
    table.put_all(&records).await.map_err(|e| e.to_string())?;
    Ok(records.len())
}

/// The whole `main` of the log-writer function: logs, the table once, then one
/// subscription event per invocation until Lambda stops the process.
pub async fn run() -> Result<(), lambda_http::Error> {
    crate::edge::telemetry::init();
    let name = std::env::var(crate::request_log::table::REQUEST_LOG_TABLE_ENV)
        .map_err(|_| "REQUEST_LOG_TABLE is not set")?;
    let settings = crate::sdk::LambdaSettings::from_env()?;
    let table = RequestLogTable::new(crate::sdk::dynamodb(&settings), name);
    let table = &table;
    lambda_http::lambda_runtime::run(lambda_http::lambda_runtime::service_fn(
        move |event: lambda_http::lambda_runtime::LambdaEvent<Value>| async move {
            let stored = handle(table, &event.payload).await?;
            tracing::info!(records = stored, "request log batch stored");
            Ok::<_, lambda_http::Error>(())
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_control_messages_carry_nothing() {
        let lines = vec![(1_795_000_000_000, "{\"message\":\"request\"}".to_owned())];
        let event = subscription_event("/aws/lambda/x", &lines).unwrap();
        assert_eq!(decode(&event).unwrap(), lines);
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(br#"{"messageType":"CONTROL_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":"CWL CONTROL MESSAGE"}]}"#)
            .unwrap();
        let control = json!({"awslogs": {"data": STANDARD.encode(gz.finish().unwrap())}});
        assert_eq!(decode(&control).unwrap(), vec![]);
        for bad in [
            json!({}),
            json!({"awslogs": {"data": "!!"}}),
            json!({"awslogs": {"data": "aGVsbG8="}}),
        ] {
            assert!(decode(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_filter_keeps_request_lines_with_a_key() {
        assert!(passes_filter(r#"{"message":"request","key_id":"key_1"}"#));
        assert!(!passes_filter(r#"{"message":"request","key_id":""}"#));
        assert!(!passes_filter(r#"{"message":"request","key_id":"other"}"#));
        assert!(!passes_filter(
            r#"{"message":"request failed","key_id":"key_1"}"#
        ));
        assert!(!passes_filter("plain text"));
    }
}
