//! The customer routes: parse the request, call storage, shape the answer.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use crate::app::App;
use crate::auth::Principal;
use crate::error::{json_response, ApiError};
use crate::http::{RequestLog, RequestMeta};
use crate::query::QueryParams;
use crate::scope::Scope;

pub const DEFAULT_LIST_LIMIT: usize = 50;
pub const MAX_LIST_LIMIT: usize = 100;

/// A page size the API accepts: 1-100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(usize);

impl Limit {
    pub fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        let Some(text) = text else {
            return Ok(Limit(DEFAULT_LIST_LIMIT));
        };
        let invalid = || {
            ApiError::invalid_param(
                "limit",
                format!("limit must be a whole number from 1 to {MAX_LIST_LIMIT}."),
            )
        };
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.len() > 3 {
            return Err(invalid());
        }
        match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIST_LIMIT).contains(&n) => Ok(Limit(n)),
            _ => Err(invalid()),
        }
    }

    pub fn get(self) -> usize {
        self.0
    }
}

/// `GET /v1/customers`
pub async fn list(
    app: &App,
    req: &Request,
    principal: &Principal,
    meta: &RequestMeta,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let query = QueryParams::parse(req.uri().query(), &["limit"])?;
    let limit = Limit::parse(query.get("limit"))?;
    let page = app
        .customers
        .list_by_creation(&principal.org_id, limit.get())
        .await?;
    log.customer_ids = page.customers.iter().map(|c| c.id.to_string()).collect();
    let with_aml = principal.has(Scope::AmlRead);
    let data: Vec<Value> = page.customers.iter().map(|c| c.to_json(with_aml)).collect();
    let body = json!({
        "object": "list",
        "data": data,
        "has_more": page.has_more,
        "next_cursor": null,
        "limit": limit.get(),
    });
    Ok(json_response(StatusCode::OK, &body, &meta.request_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_bounds() {
        assert_eq!(Limit::parse(None).unwrap().get(), 50);
        assert_eq!(Limit::parse(Some("1")).unwrap().get(), 1);
        assert_eq!(Limit::parse(Some("100")).unwrap().get(), 100);
        for bad in [
            "0",
            "101",
            "-1",
            "+5",
            "5.0",
            "",
            "abc",
            "99999999999999999999999",
        ] {
            let err = Limit::parse(Some(bad)).unwrap_err();
            assert_eq!(err.param(), Some("limit"), "{bad:?}");
        }
    }
}
