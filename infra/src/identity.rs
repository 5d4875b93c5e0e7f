//! The member identity of a local stack: the Cognito-API emulator with template.yaml's
//! pool and app client, the gateway's JWT authorizers configured as the template declares
//! them (issuer and audience resolved against the emulator's ids), and members added with a
//! password the way an operator does (`icadmin members add --password`).

use std::collections::BTreeMap;
use std::sync::Arc;

use developers_page::PageConfig;
use localdb::cognito_local::LOCAL_REGION;
use localdb::{CognitoLocal, PoolIds, Template};
use shared::members::pool::MemberPool;
use shared::members::role::Role;
use shared::members::table::Member;
use shared::org::OrgId;
use shared::App;

use crate::authorizer::JwtAuthorizer;
use crate::gateway::RouteTable;

/// The physical ids the template's `!Ref` and `!Sub` resolve to locally.
pub fn physical_ids(ids: &PoolIds) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("AWS::Region".to_owned(), LOCAL_REGION.to_owned()),
        (ids.pool_logical_id.clone(), ids.pool_id.clone()),
        (ids.client_logical_id.clone(), ids.client_id.clone()),
    ])
}

/// `routes` with every JWT authorizer of the template, checking tokens against the pool
/// the emulator holds, and the page signing members in to that pool through the app
/// client, at the emulator's endpoint.
pub fn with_member_identity(
    routes: RouteTable,
    template: &Template,
    cognito: &CognitoLocal,
    ids: &PoolIds,
) -> Result<RouteTable, String> {
    let physical = physical_ids(ids);
    let mut routes = routes;
    for spec in template.jwt_authorizers().map_err(|e| e.to_string())? {
        if spec.identity_source != "$request.header.Authorization" {
            return Err(format!(
                "authorizer {}: only $request.header.Authorization is supported locally",
                spec.name
            ));
        }
        let issuer = spec.issuer.resolve(&physical).map_err(|e| e.to_string())?;
        let audiences = spec
            .audience
            .iter()
            .map(|a| a.resolve(&physical))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let authorizer = JwtAuthorizer::new(issuer, audiences, cognito.jwks_url(&ids.pool_id));
        routes = routes.with_authorizer(&spec.name, Arc::new(authorizer));
    }
    // The local stack serves the docs site at /docs/ (make docs builds it).
    let page = PageConfig::new(&ids.client_id, &cognito.endpoint())?.with_docs_url("/docs/")?;
    Ok(routes.with_page(page))
}

/// The user pool as the API's functions use it.
pub fn member_pool(cognito: &CognitoLocal, ids: &PoolIds) -> MemberPool {
    MemberPool::new(cognito.client(), ids.pool_id.clone())
}

/// Adds a member who can sign in with `password` at once (the pool user, its permanent
/// password, the member record).
pub async fn add_member_with_password(
    app: &App,
    org: &OrgId,
    email: &str,
    role: Role,
    password: &str,
    invited_by: &str,
) -> Result<Member, String> {
    use shared::members::pool::PoolError;
    let pool = app.pool().map_err(|e| e.to_string())?;
    // The pool user and its password first, the member record last: a password the pool
    // refuses leaves nothing behind (a user made here is removed again), so the same
    // command can simply be run again with a better one.
    let (sub, made_here) = match pool.create_user(email, Some(password)).await {
        Ok(sub) => (Some(sub), true),
        Err(PoolError::Exists) => (None, false),
        Err(PoolError::Refused(why)) => {
            return Err(format!(
                "the user pool refused {email}: {why}; nothing was made"
            ))
        }
        Err(e) => return Err(e.to_string()),
    };
    if let Err(e) = pool.set_password(email, password).await {
        let undone = if made_here {
            match pool.delete_user(email).await {
                Ok(()) => "nothing was made",
                Err(_) => "the pool user made for it could not be removed; run the command again",
            }
        } else {
            "nothing was changed"
        };
        return Err(match e {
            PoolError::Refused(why) => {
                format!("the user pool refused the password: {why}; {undone}")
            }
            other => format!("{other}; {undone}"),
        });
    }
    let sub = match sub {
        Some(sub) => sub,
        None => pool
            .sub_of(email)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the pool has no user {email}"))?,
    };
    // A member made before, whose password was never set (the old order), is completed.
    if let Some(existing) = app.members.get(&sub).await.map_err(|e| e.to_string())? {
        if existing.org_id != *org {
            return Err(format!("{email} is a member of another org"));
        }
        return Ok(existing);
    }
    // The operator tool (or the stack, or a test) adds them: `invited_by` is its identity.
    let author = shared::audit::Author::operator(invited_by);
    shared::members::api::add_member_record(app, &author, org, &sub, email, role, invited_by)
        .await
        .map_err(|e| e.to_string())
}

/// A password the pool's policy takes: 20 random base62 characters with each class.
pub fn random_password() -> Result<String, String> {
    let random = shared::keys::token::random_base62(20).map_err(|e| e.to_string())?;
    Ok(format!("{random}aA1"))
}

/// An active member's record with a new id, no pool user behind it: for the bench and the
/// Lambda test, whose events carry the claims API Gateway's authorizer would pass on.
pub fn active_member(org: &OrgId, email: &str, role: Role) -> Member {
    Member {
        id: uuid::Uuid::new_v4().to_string(),
        org_id: org.clone(),
        email: email.to_owned(),
        role,
        status: shared::members::table::MemberStatus::Active,
        created_at: shared::time::now(),
        invited_by: None,
        deactivated_at: None,
        key_hashes: Default::default(),
    }
}
