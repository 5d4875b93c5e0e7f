//! API Gateway HTTP API (payload v2) events, both ways, through lambda_http's own parsing:
//! the local gateway and the tests invoke handlers exactly as the Lambda runtime does.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use lambda_http::request::LambdaRequest;
use lambda_http::tower::Service;
pub use lambda_http::Context;
use lambda_http::{service_fn, Adapter, Body, LambdaEvent, Request, Response};
use serde_json::{json, Map, Value};

use crate::app::App;
use crate::edge::http::{handle, Endpoint};

/// The parts of an HTTP request that API Gateway passes on.
#[derive(Debug, Clone)]
pub struct GatewayRequest {
    pub method: String,
    pub raw_path: String,
    pub raw_query: String,
    /// Names as received; API Gateway lowercases them and joins repeats with commas.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub source_ip: IpAddr,
    /// `GET /v1/customers`, or `$default` for the catch-all.
    pub route_key: String,
    pub path_parameters: BTreeMap<String, String>,
    pub request_id: String,
}

/// Builds the event API Gateway would send for `req`.
pub fn v2_event(req: &GatewayRequest) -> Value {
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &req.headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(value.split("; ").map(|c| Value::from(c.to_owned())));
            continue;
        }
        let joined = match headers.get(&name).and_then(Value::as_str) {
            Some(prior) => format!("{prior},{value}"),
            None => value.clone(),
        };
        headers.insert(name, Value::from(joined));
    }
    let mut query = Map::new();
    for (name, value) in form_urlencoded::parse(req.raw_query.as_bytes()) {
        let joined = match query.get(name.as_ref()).and_then(Value::as_str) {
            Some(prior) => format!("{prior},{value}"),
            None => value.into_owned(),
        };
        query.insert(name.into_owned(), Value::from(joined));
    }
    let (body, is_base64) = match std::str::from_utf8(&req.body) {
        Ok(_) if req.body.is_empty() => (Value::Null, false),
        Ok(text) => (Value::from(text), false),
        Err(_) => (
            Value::from(base64::engine::general_purpose::STANDARD.encode(&req.body)),
            true,
        ),
    };
    let now = chrono::Utc::now();
    let user_agent = headers
        .get("user-agent")
        .cloned()
        .unwrap_or(Value::from(""));
    let host = headers
        .get("host")
        .cloned()
        .unwrap_or(Value::from("localhost"));
    let mut event = json!({
        "version": "2.0",
        "routeKey": req.route_key,
        "rawPath": req.raw_path,
        "rawQueryString": req.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": "local",
            "http": {
                "method": req.method,
                "path": req.raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": req.source_ip.to_string(),
                "userAgent": user_agent,
            },
            "requestId": req.request_id,
            "routeKey": req.route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": is_base64,
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::from(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !req.path_parameters.is_empty() {
        event["pathParameters"] = json!(req.path_parameters);
    }
    if !body.is_null() {
        event["body"] = body;
    }
    event
}

/// Invokes the endpoint's handler with an event, as the Lambda runtime does in production
/// (`run_function` calls this very function). Never fails: an event lambda_http cannot turn
/// into a request gets a 400 envelope instead of an invocation error.
pub async fn invoke(app: Arc<App>, endpoint: Endpoint, event: Value, context: Context) -> Value {
    invoke_with(
        move |req| {
            let app = app.clone();
            async move { handle(app, endpoint, req).await }
        },
        event,
        context,
    )
    .await
}

/// Invokes any request handler with an event, as [`invoke`] does the library's routes (a
/// function that serves something other than a library route, such as the page, runs
/// through this).
pub async fn invoke_with<F, Fut>(handler: F, mut event: Value, context: Context) -> Value
where
    F: FnMut(Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send,
{
    let request_id = event["requestContext"]["requestId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    repair(&mut event);
    if let Err(reason) = check_url(&event) {
        return malformed_event_response(&request_id, reason);
    }
    let request: LambdaRequest = match serde_json::from_value(event) {
        Ok(request) => request,
        Err(_) => return malformed_event_response(&request_id, MALFORMED),
    };
    let mut handler = handler;
    let service = service_fn(move |req| {
        let answer = handler(req);
        async move { Ok::<_, Infallible>(answer.await) }
    });
    let mut adapter = Adapter::from(service);
    // lambda_http builds the http::Request inside `call` and panics on what `repair` missed.
    let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        adapter.call(LambdaEvent::new(request, context))
    }));
    let response = match call {
        Ok(future) => future.await,
        Err(_) => return malformed_event_response(&request_id, MALFORMED),
    };
    match response.map(serde_json::to_value) {
        Ok(Ok(value)) => value,
        _ => malformed_event_response(&request_id, MALFORMED),
    }
}

const MALFORMED: &str = "The request could not be read (malformed path, query string or headers).";

/// lambda_http builds the request's URL as `{x-forwarded-proto or https}://{host or the
/// domain name}{path}`, unwraps `Url::parse` of it and then expects `http::Uri` to take the
/// result: a Host header no URL can hold (`a:b`, `[::1`, a port past 65535, `a{b`…) would
/// panic inside it, and one carrying `/`, `?`, `#` or `@` would quietly change the path
/// and query the handler sees. Refuse any Host that is not a bare `host[:port]`, and any
/// URL that would not survive both parses, with a 400 before the conversion.
fn check_url(event: &Value) -> Result<(), &'static str> {
    const BAD_HOST: &str = "The Host header is not a valid host name (with an optional port).";
    let headers = &event["headers"];
    let host = headers["host"]
        .as_str()
        .or_else(|| event["requestContext"]["domainName"].as_str());
    let Some(host) = host else {
        return Ok(());
    };
    let bare = host
        .parse::<lambda_http::http::uri::Authority>()
        .is_ok_and(|authority| authority.as_str() == host && !host.contains('@'));
    if !bare {
        return Err(BAD_HOST);
    }
    let scheme = headers["x-forwarded-proto"].as_str().unwrap_or("https");
    let path = event["rawPath"].as_str().unwrap_or_default();
    let stage = event["requestContext"]["stage"]
        .as_str()
        .unwrap_or("$default");
    let path = if stage == "$default" || path.starts_with(&format!("/{stage}/")) {
        path.to_owned()
    } else {
        format!("/{stage}{path}")
    };
    let url = url::Url::parse(&format!("{scheme}://{host}{path}")).map_err(|_| BAD_HOST)?;
    lambda_http::http::Uri::try_from(url.as_str()).map_err(|_| BAD_HOST)?;
    Ok(())
}

/// The 400 for an event that is not a request we can read, as a v2 response event.
fn malformed_event_response(request_id: &str, reason: &str) -> Value {
    let request_id = if request_id.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        request_id.to_owned()
    };
    let err = crate::ApiError::invalid(reason);
    let response = err.into_response(&request_id);
    let body = match response.body() {
        lambda_http::Body::Text(text) => text.clone(),
        _ => String::new(),
    };
    let headers: Map<String, Value> = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                Value::from(v.to_str().unwrap_or_default()),
            )
        })
        .collect();
    json!({"statusCode": response.status().as_u16(), "headers": headers, "body": body, "isBase64Encoded": false})
}

/// Characters RFC 3986 allows unescaped in a path or query, besides letters and digits.
const URI_SAFE: &[u8] = b"-._~!$&'()*+,;=:@/";

/// Percent-encodes what a URI cannot hold, leaving valid `%XX` escapes alone.
fn escape_uri_part(text: &str, also_allowed: &[u8]) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        let escape_ok = b == b'%'
            && bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        if b.is_ascii_alphanumeric()
            || URI_SAFE.contains(&b)
            || also_allowed.contains(&b)
            || escape_ok
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// API Gateway passes on what clients send; lambda_http expects a valid URI. Escape the path
/// and query, and drop X-Forwarded-Proto values that are not a scheme we serve. A Host that
/// no URL can hold is left for `check_url` to refuse.
fn repair(event: &mut Value) {
    for (field, also) in [("rawPath", &b""[..]), ("rawQueryString", &b"?"[..])] {
        if let Some(text) = event.get(field).and_then(Value::as_str) {
            let fixed = escape_uri_part(text, also);
            event[field] = Value::from(fixed);
        }
    }
    if let Some(headers) = event.get_mut("headers").and_then(Value::as_object_mut) {
        if headers
            .get("x-forwarded-proto")
            .and_then(Value::as_str)
            .is_some_and(|p| p != "http" && p != "https")
        {
            headers.remove("x-forwarded-proto");
        }
    }
    let domain_ok = event["requestContext"]["domainName"]
        .as_str()
        .is_none_or(|d| {
            d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
    if !domain_ok {
        event["requestContext"]["domainName"] = Value::from("localhost");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parts_are_escaped_only_where_needed() {
        assert_eq!(
            escape_uri_part("limit=5&cursor=a-b_c", b"?"),
            "limit=5&cursor=a-b_c"
        );
        assert_eq!(
            escape_uri_part("q={x}|\"y\" z", b"?"),
            "q=%7Bx%7D%7C%22y%22%20z"
        );
        assert_eq!(escape_uri_part("a=%41%zz%", b"?"), "a=%41%25zz%25");
        assert_eq!(escape_uri_part("é", b""), "%C3%A9");
        assert_eq!(escape_uri_part("/v1/a?b#c", b""), "/v1/a%3Fb%23c");
    }
}

/// An HTTP response read back from a v2 response event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl GatewayResponse {
    pub fn from_event(event: &Value) -> Result<Self, String> {
        let status = event["statusCode"]
            .as_u64()
            .ok_or("response has no statusCode")?;
        let status = u16::try_from(status).map_err(|_| "statusCode out of range")?;
        let mut headers = Vec::new();
        if let Some(map) = event["headers"].as_object() {
            for (name, value) in map {
                headers.push((name.clone(), value.as_str().unwrap_or_default().to_owned()));
            }
        }
        if let Some(cookies) = event["cookies"].as_array() {
            for cookie in cookies.iter().filter_map(Value::as_str) {
                headers.push(("set-cookie".to_owned(), cookie.to_owned()));
            }
        }
        let body = match event["body"].as_str() {
            None => Vec::new(),
            Some(text) if event["isBase64Encoded"].as_bool() == Some(true) => {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| format!("bad base64 body: {e}"))?
            }
            Some(text) => text.as_bytes().to_vec(),
        };
        Ok(Self {
            status,
            headers,
            body,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}
