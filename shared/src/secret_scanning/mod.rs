//! GitHub's secret-scanning partner endpoint, `POST /v1/secret-scanning/github`: GitHub
//! reports tokens of our format it found in public, signed with one of its listed keys
//! (`github_keys`); every reported token that is one of our keys, live or test, is revoked
//! at once (reason `leaked`, where it was found), with a line in its request log, and the
//! answer is GitHub's feedback format. No token is ever echoed, logged or stored: the
//! answer names each by its SHA-256.

pub mod github_keys;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::edge::routes::Route;
use crate::error::{json_response, ApiError};
use crate::keys::leak::Recorded;
use crate::keys::table::ApiKeyRecord;
use crate::keys::token::{ApiKeyToken, KeyHash};
use crate::query::QueryParams;
use crate::request::{body_bytes, RequestMeta};
use crate::request_log::record::{truncate_chars, RequestRecord};
use github_keys::Rejected;

/// GitHub's limits for one report.
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;
pub const MAX_REPORTED_TOKENS: usize = 1000;
pub const IDENTIFIER_HEADER: &str = "github-public-key-identifier";
pub const SIGNATURE_HEADER: &str = "github-public-key-signature";
/// The scanner named on a leaked key.
pub const SOURCE: &str = "github";
/// The longest `url` kept (where the token was found); a longer or non-http one is dropped.
const MAX_URL_CHARS: usize = 2048;
/// The longest type name answered back.
const MAX_TYPE_CHARS: usize = 200;
/// Leaks recorded at once.
const CONCURRENT_RECORDS: usize = 16;

/// One reported token, as GitHub sends it. Its `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Reported {
    pub token: String,
    pub token_type: String,
    /// Where it was found; `None` unless an http(s) URL.
    pub url: Option<String>,
}

impl std::fmt::Debug for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reported")
            .field("token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("url", &self.url)
            .finish()
    }
}

/// Reads GitHub's report: a JSON array of `{token, type, url, source}` objects, at most
/// 1,000. Only what it cannot answer for is refused (not an array, too many entries, an
/// entry without a token): `param` names that entry (`[3].token`), never a value. Anything
/// else odd in an entry costs only that field (a `type` that is not a string is answered as
/// `""`, a `url` that is not an http(s) URL is not kept), so one strange entry never keeps
/// the batch's real leaks from being revoked.
pub fn parse_report(bytes: &[u8]) -> Result<Vec<Reported>, ApiError> {
    let value = crate::json::parse_strict(bytes)?;
    let Value::Array(entries) = value else {
        return Err(ApiError::invalid(
            "The report must be a JSON array of {token, type, url, source} objects.",
        ));
    };
    if entries.len() > MAX_REPORTED_TOKENS {
        return Err(ApiError::invalid(format!(
            "A report carries at most {MAX_REPORTED_TOKENS} tokens."
        )));
    }
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let token = match entry.get("token") {
                Some(Value::String(token)) if !token.is_empty() => token.clone(),
                _ => {
                    return Err(ApiError::invalid_param(
                        format!("[{i}].token"),
                        "Each reported entry needs its token, a non-empty string.",
                    ))
                }
            };
            let token_type = match entry.get("type") {
                Some(Value::String(kind)) => truncate_chars(kind, MAX_TYPE_CHARS),
                _ => String::new(),
            };
            let url = match entry.get("url") {
                Some(Value::String(url)) => public_url(url),
                _ => None,
            };
            Ok(Reported {
                token,
                token_type,
                url,
            })
        })
        .collect()
}

/// `url` if it is an http(s) URL of reasonable length (what the page may link to).
fn public_url(url: &str) -> Option<String> {
    (url.len() <= MAX_URL_CHARS)
        .then(|| url::Url::parse(url).ok())
        .flatten()
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
        .map(|u| u.to_string())
        .filter(|normalised| normalised.len() <= MAX_URL_CHARS)
}

/// Hex SHA-256 of a reported token: how the answer names it.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// A refusal: the envelope, and a log line that says why (never a token).
fn refuse(why: &str, err: ApiError) -> ApiError {
    tracing::warn!(reason = why, "secret-scanning report refused");
    err
}

/// `POST /v1/secret-scanning/github`.
pub async fn github(
    app: &App,
    req: &Request,
    meta: &RequestMeta,
) -> Result<Response<Body>, ApiError> {
    let started = std::time::Instant::now();
    let body = body_bytes(req);
    if body.len() > MAX_REPORT_BYTES {
        return Err(refuse(
            "too large",
            ApiError::PayloadTooLarge {
                limit_bytes: MAX_REPORT_BYTES,
            },
        ));
    }
    let (Some(identifier), Some(signature)) = (
        header(req, IDENTIFIER_HEADER),
        header(req, SIGNATURE_HEADER),
    ) else {
        return Err(refuse(
            "unsigned",
            ApiError::SignatureRejected(
                "Github-Public-Key-Identifier and Github-Public-Key-Signature are required.",
            ),
        ));
    };
    match app.scanning_keys.verify(identifier, signature, body).await {
        Ok(()) => {}
        Err(Rejected::Unavailable(_)) => {
            return Err(ApiError::ServiceUnavailable {
                retry_after_secs: 60,
            })
        }
        Err(rejected) => {
            let message = rejected.message();
            return Err(refuse(message, ApiError::SignatureRejected(message)));
        }
    }
    QueryParams::parse(req.uri().query(), &[])?;
    if !is_json(req) {
        return Err(refuse(
            "not JSON",
            ApiError::UnsupportedMediaType("The report must be sent as application/json."),
        ));
    }
    let reported = parse_report(body).map_err(|err| refuse("malformed report", err))?;
    let ours: Vec<Option<KeyHash>> = reported
        .iter()
        .map(|r| ApiKeyToken::parse(&r.token).ok().map(|token| token.hash()))
        .collect();
    let hashes: Vec<KeyHash> = ours.iter().flatten().cloned().collect();
    let found = app.keys.find_by_hashes(&hashes).await?;
    // Each key once, with the first URL reported for it.
    let mut leaks: Vec<(ApiKeyRecord, Option<String>)> = Vec::new();
    for (hash, report) in ours.iter().zip(&reported) {
        let Some(record) = hash.as_ref().and_then(|h| found.get(h)) else {
            continue;
        };
        if !leaks.iter().any(|(r, _)| r.id == record.id) {
            leaks.push((record.clone(), report.url.clone()));
        }
    }
    let revoked = record_all(app, leaks, meta, started).await?;
    let answer: Vec<Value> = reported
        .iter()
        .zip(&ours)
        .map(|(r, hash)| {
            let ours = hash.as_ref().is_some_and(|h| found.contains_key(h));
            json!({
                "token_hash": token_hash(&r.token),
                "token_type": r.token_type,
                "label": if ours { "true_positive" } else { "false_positive" },
            })
        })
        .collect();
    tracing::info!(
        reported = reported.len(),
        true_positives = found.len(),
        revoked_now = %revoked.join(","),
        "secret-scanning report"
    );
    Ok(json_response(
        StatusCode::OK,
        &Value::Array(answer),
        &meta.request_id,
    ))
}

fn is_json(req: &Request) -> bool {
    header(req, "content-type").is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// Records every leak, a few at a time; the ids of the keys this report revoked or marked.
async fn record_all(
    app: &App,
    leaks: Vec<(ApiKeyRecord, Option<String>)>,
    meta: &RequestMeta,
    started: std::time::Instant,
) -> Result<Vec<String>, ApiError> {
    let user_agent = meta.user_agent.clone();
    let origin = crate::audit::Origin::of(meta);
    let route = Route::GithubSecretScanning;
    let mut recorded = Vec::new();
    let mut pending = leaks.into_iter();
    loop {
        let mut tasks = tokio::task::JoinSet::new();
        for (record, url) in pending.by_ref().take(CONCURRENT_RECORDS) {
            let keys = app.keys.clone();
            let audit = app.audit.clone();
            let origin = origin.clone();
            let request_log = app.request_log.clone();
            let line = RequestRecord {
                id: meta.request_id.clone(),
                at: crate::time::truncate_to_millis(meta.now),
                org: record.org_id.to_string(),
                key_id: record.id.clone(),
                method: route.method().to_string(),
                route: route.key(),
                path: route.path().to_owned(),
                status: 200,
                error_code: None,
                source_ip: meta.source_ip.map(|ip| ip.to_string()),
                user_agent: user_agent.clone(),
                customer_ids: Vec::new(),
                idempotent_replayed: false,
                // Until the revocation is written: the line goes in with it.
                latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            };
            let now = crate::time::now();
            tasks.spawn(async move {
                keys.record_leak(
                    &audit,
                    &origin,
                    &request_log,
                    record,
                    SOURCE,
                    url.as_deref(),
                    now,
                    &line,
                )
                .await
            });
        }
        if tasks.is_empty() {
            return Ok(recorded);
        }
        while let Some(done) = tasks.join_next().await {
            match done.map_err(|_| ApiError::Internal)?? {
                Recorded::Now(record) => recorded.push(record.id),
                Recorded::Already(_) | Recorded::Missing => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_read_field_by_field() {
        let body = br#"[{"token":"ic_live_x","type":"instant_compliance_api_key","url":"https://github.com/o/r/blob/main/.env","source":"content"},
                        {"token":"t2","type":"x","url":null}]"#;
        let report = parse_report(body).unwrap();
        assert_eq!(report.len(), 2);
        assert_eq!(report[0].token, "ic_live_x");
        assert_eq!(report[0].token_type, "instant_compliance_api_key");
        assert_eq!(
            report[0].url.as_deref(),
            Some("https://github.com/o/r/blob/main/.env")
        );
        assert_eq!(report[1].url, None);
    }

    #[test]
    fn only_what_cannot_be_answered_is_refused_naming_the_entry_never_the_token() {
        let param = |body: &str| match parse_report(body.as_bytes()) {
            Err(ApiError::InvalidRequest { param, message }) => {
                assert!(!message.contains("secret-value"), "{message}");
                param
            }
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(param(r#"{"token":"secret-value"}"#), None);
        assert_eq!(param(r#"[{"type":"t"}]"#).as_deref(), Some("[0].token"));
        assert_eq!(
            param(r#"[{"token":"","type":"t"}]"#).as_deref(),
            Some("[0].token")
        );
        assert_eq!(
            param(r#"[{"token":7,"type":"t"}]"#).as_deref(),
            Some("[0].token")
        );
        assert_eq!(
            param(r#"[{"token":"a","type":"t"}, 7]"#).as_deref(),
            Some("[1].token")
        );
        assert!(parse_report(b"not json").is_err());
        let too_many = format!("[{}]", vec![r#"{"token":"a","type":"t"}"#; 1001].join(","));
        assert_eq!(param(&too_many), None);
        let most = format!("[{}]", vec![r#"{"token":"a","type":"t"}"#; 1000].join(","));
        assert_eq!(parse_report(most.as_bytes()).unwrap().len(), 1000);
        // Odd fields cost only themselves.
        let odd = parse_report(
            format!(
                r#"[{{"token":"secret-value"}},{{"token":"b","type":[1],"url":5,"source":{{}}}},{{"token":"c","type":"{}"}}]"#,
                "t".repeat(500)
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(odd.len(), 3);
        assert_eq!(
            (odd[0].token_type.as_str(), odd[0].url.as_deref()),
            ("", None)
        );
        assert_eq!(
            (odd[1].token_type.as_str(), odd[1].url.as_deref()),
            ("", None)
        );
        assert_eq!(odd[2].token_type.chars().count(), MAX_TYPE_CHARS);
        assert!(
            !format!("{odd:?}").contains("secret-value"),
            "Debug hides the token"
        );
    }

    #[test]
    fn only_http_urls_are_kept() {
        assert_eq!(public_url("javascript:alert(1)"), None);
        assert_eq!(public_url("ftp://example.com/x"), None);
        assert_eq!(
            public_url(&format!("https://e.com/{}", "a".repeat(3000))),
            None
        );
        assert_eq!(
            public_url("https://gist.github.com/u/1").as_deref(),
            Some("https://gist.github.com/u/1")
        );
    }

    #[test]
    fn tokens_are_named_by_their_sha256() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
