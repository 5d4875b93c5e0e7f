//! Key verification, in the contract's order: format and checksum (no database call), one
//! consistent read by hash with a constant-time compare (which counts the request in its
//! source's window), revoked/expired, IP allowlist, rate, scope.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use lambda_http::http::{header, HeaderMap};

use crate::error::ApiError;
use crate::keys::ip_allowlist::SourceBucket;
use crate::keys::scope::Scope;
use crate::keys::table::{ApiKeyRecord, ApiKeysTable, Lookup};
use crate::keys::token::ApiKeyToken;
use crate::org::OrgId;
use crate::request::{RateState, RequestLog};
use crate::time::Timestamp;

/// How long a bookkeeping write (last use, counter clean-up) may hold up a request.
const BOOKKEEPING_BUDGET_MILLIS: u64 = 300;

/// A write that keeps the key's item in order: a failure or a slow write must not fail or
/// hold up the request (the next request tries again).
async fn bookkeeping(
    key_id: &str,
    write: impl std::future::Future<Output = Result<(), crate::storage::StorageError>>,
) {
    match tokio::time::timeout(Duration::from_millis(BOOKKEEPING_BUDGET_MILLIS), write).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            tracing::warn!(key_id = %key_id, error = %err, "key bookkeeping write failed")
        }
        Err(_) => tracing::warn!(key_id = %key_id, "key bookkeeping write timed out"),
    }
}

/// The route's scope, for a request from a permitted source.
fn in_scope(record: &ApiKeyRecord, required: Option<Scope>) -> Result<(), ApiError> {
    match required.filter(|scope| !record.scopes.contains(scope)) {
        Some(required) => Err(ApiError::ForbiddenScope(required)),
        None => Ok(()),
    }
}

/// Whether a dead key's refusal is a repeat within its source's second (kept out of the
/// request log). `own` counts every request of this source this second; when the key died
/// within this very second (revoked, reported leaked, or expired), the earlier ones may have
/// been served, so its first refusal is never taken for a repeat.
fn refusal_is_repeated(record: &ApiKeyRecord, own: u64, now: Timestamp) -> bool {
    let died = record
        .revoked_at
        .or(record.expires_at.filter(|at| *at <= now));
    own > 1 && died.is_none_or(|at| at.timestamp() < now.timestamp())
}

fn rate_state(limit: u32, count: u64) -> RateState {
    RateState {
        limit,
        remaining: u32::try_from(u64::from(limit).saturating_sub(count)).unwrap_or(0),
        reset_secs: 1,
    }
}

/// Who is calling: the key that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub org_id: OrgId,
    pub scopes: BTreeSet<Scope>,
    /// The key as stored (never its plaintext; its hash is only ever compared).
    pub key: ApiKeyRecord,
}

impl Principal {
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Live or test: the key's own mode.
    pub fn mode(&self) -> crate::org::Mode {
        self.key.mode()
    }

    /// Where this key's customer data, cursors and idempotency records live: the org's
    /// live data, or its test data (never both).
    pub fn data_space(&self) -> OrgId {
        self.org_id.data_space(self.mode())
    }
}

/// Step 1: exactly one `Authorization: Bearer <key>` header whose key has a valid checksum.
pub fn bearer_token(headers: &HeaderMap) -> Result<ApiKeyToken, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ApiError::Unauthorized);
    };
    let value = value.to_str().map_err(|_| ApiError::Unauthorized)?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::Unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Unauthorized);
    }
    ApiKeyToken::parse(token.trim()).map_err(|_| ApiError::Unauthorized)
}

/// Runs the whole verification order for a route needing `required` (`None`: any valid
/// key). One DynamoDB call finds the key and counts the request in its source's window.
/// Once the key is identified, `log` names it and its org, so a refusal (revoked, expired,
/// IP, scope, rate) is as traceable as a success.
///
/// The allowlist decides before anything is spent: a request from a source the allowlist
/// refuses is counted in that source's own window, never in the allowed caller's budget,
/// and refusals are limited on their own, per key and source (past the key's rate they are
/// 429, and only the first of each source and second is kept in the request log).
pub async fn authenticate(
    keys: &ApiKeysTable,
    headers: &HeaderMap,
    source_ip: Option<IpAddr>,
    required: Option<Scope>,
    now: Timestamp,
    log: &mut RequestLog,
) -> Result<Principal, ApiError> {
    let token = bearer_token(headers)?;
    let hash = token.hash();
    let source = SourceBucket::of(source_ip);
    let counted = match keys.find_and_count(&hash, now, &source).await? {
        Lookup::Unknown => return Err(ApiError::Unauthorized),
        Lookup::Dead { record, own } => {
            if record.key_hash.matches(&hash) {
                log.identified(&record.org_id, &record.id);
                if refusal_is_repeated(&record, own, now) {
                    log.repeated_refusal();
                }
            }
            return Err(ApiError::Unauthorized);
        }
        Lookup::Counted(counted) => counted,
    };
    let record = &counted.record;
    if !record.key_hash.matches(&hash) {
        return Err(ApiError::Unauthorized);
    }
    log.identified(&record.org_id, &record.id);
    // Checked again in code: the stored expiry may have passed since the clock reading.
    if record.status(now) != "active" {
        return Err(ApiError::Unauthorized);
    }
    let limit = record.rate_limit_rps;
    if record.ip_allowlist.has_unreadable() {
        tracing::error!(key_id = %record.id, "stored IP allowlist has an unreadable entry; refusing");
    }
    let permitted = record.ip_allowlist.is_empty()
        || source_ip.is_some_and(|ip| record.ip_allowlist.permits(ip));
    let refusal = if !permitted {
        // The source's own refusals, against the key's rate: its budget is its own.
        log.set_rate(rate_state(limit, counted.own));
        if counted.own > 1 {
            log.repeated_refusal();
        }
        Some(if counted.own > u64::from(limit) {
            ApiError::RateLimited {
                retry_after_secs: 1,
            }
        } else {
            ApiError::IpNotAllowed
        })
    } else {
        let count = counted.allowed_count();
        log.set_rate(rate_state(limit, count));
        if count > u64::from(limit) {
            Some(ApiError::RateLimited {
                retry_after_secs: 1,
            })
        } else {
            in_scope(record, required).err()
        }
    };
    if refusal.is_none() && record.last_used_is_stale(now) {
        // Also takes the counter windows idle gaps left.
        let write = keys.record_use(&hash, now, source_ip, &counted.old_windows);
        bookkeeping(&record.id, write).await;
    } else if !counted.old_windows.is_empty() {
        bookkeeping(&record.id, keys.prune_windows(&hash, &counted.old_windows)).await;
    }
    if let Some(refusal) = refusal {
        return Err(refusal);
    }
    let record = counted.record;
    Ok(Principal {
        key_id: record.id.clone(),
        org_id: record.org_id.clone(),
        scopes: record.scopes.clone(),
        key: record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn a_key_that_died_this_second_has_its_first_refusal_logged() {
        let now = crate::time::parse("2026-12-07T10:00:05.500Z").unwrap();
        let new = crate::keys::table::NewApiKey::parse(
            "acme",
            "l",
            &["customers:read".to_owned()],
            None,
            &[],
            "tests",
            now - chrono::Duration::days(1),
        )
        .unwrap();
        let mut record = ApiKeysTable::prepare(new, now - chrono::Duration::days(1))
            .unwrap()
            .record;
        record.revoked_at = Some(now - chrono::Duration::milliseconds(200));
        // Served a request this second, then revoked: the next is this source's first refusal.
        assert!(!refusal_is_repeated(&record, 2, now));
        // Revoked in an earlier second: a second attempt within this one is a repeat.
        record.revoked_at = Some(now - chrono::Duration::seconds(3));
        assert!(refusal_is_repeated(&record, 2, now));
        assert!(!refusal_is_repeated(&record, 1, now));
        // Expired likewise.
        record.revoked_at = None;
        record.expires_at = Some(now - chrono::Duration::milliseconds(100));
        assert!(!refusal_is_repeated(&record, 3, now));
        record.expires_at = Some(now - chrono::Duration::seconds(2));
        assert!(refusal_is_repeated(&record, 3, now));
    }

    #[test]
    fn bearer_parsing() {
        let key = ApiKeyToken::generate(crate::org::Mode::Live).unwrap();
        let s = key.expose_secret();
        assert_eq!(
            bearer_token(&headers(&[&format!("Bearer {s}")])),
            Ok(key.clone())
        );
        assert_eq!(
            bearer_token(&headers(&[&format!("bearer {s}")])),
            Ok(key.clone())
        );
        for bad in [
            String::new(),
            s.to_owned(),
            format!("Basic {s}"),
            format!("Bearer{s}"),
            format!("Api-Key {s}"),
            "Bearer ic_live_short".to_owned(),
        ] {
            assert_eq!(
                bearer_token(&headers(&[&bad])),
                Err(ApiError::Unauthorized),
                "{bad:?}"
            );
        }
        assert_eq!(bearer_token(&HeaderMap::new()), Err(ApiError::Unauthorized));
        let twice = format!("Bearer {s}");
        assert_eq!(
            bearer_token(&headers(&[&twice, &twice])),
            Err(ApiError::Unauthorized)
        );
    }
}
