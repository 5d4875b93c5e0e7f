//! Who a member-API request comes from. API Gateway's JWT authorizer has checked the token
//! (signature by the pool's keys, issuer, audience or client id, expiry) and put its claims
//! in the event; this takes the member's `sub` from them, insists on an access token (the
//! authorizer would let a pool's ID token through, as its audience is the client too), and
//! reads the member record: the org, role and status come from there, never from the token.

use std::collections::HashMap;

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use crate::error::ApiError;
use crate::members::role::Permission;
use crate::members::table::{Member, MembersTable};
use crate::request::RequestLog;

/// The authorizer's claims, if the request passed one.
pub fn claims(req: &Request) -> Option<&HashMap<String, String>> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|authorizer| authorizer.jwt.as_ref())
            .map(|jwt| &jwt.claims),
        _ => None,
    }
}

/// The member behind the request: an access token's `sub` naming an active member.
pub async fn authenticate(
    members: &MembersTable,
    req: &Request,
    log: &mut RequestLog,
) -> Result<Member, ApiError> {
    let claims = claims(req).ok_or(ApiError::SessionUnauthorized)?;
    if claims.get("token_use").map(String::as_str) != Some("access") {
        return Err(ApiError::SessionUnauthorized);
    }
    let sub = claims
        .get("sub")
        .filter(|sub| !sub.is_empty() && sub.len() <= 128)
        .ok_or(ApiError::SessionUnauthorized)?;
    let member = members
        .get(sub)
        .await?
        .ok_or(ApiError::SessionUnauthorized)?;
    log.member(&member);
    if !member.is_active() {
        return Err(ApiError::SessionUnauthorized);
    }
    Ok(member)
}

/// 403 `forbidden_permission` unless the member's role has `permission`.
pub fn require(member: &Member, permission: Permission) -> Result<(), ApiError> {
    if member.role.has(permission) {
        Ok(())
    } else {
        Err(ApiError::lacks(permission))
    }
}
