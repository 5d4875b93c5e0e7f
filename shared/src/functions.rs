//! What each function serves: its route and its handler, as a plain function pointer. A
//! function's `main` names its own constant here (`run_function(functions::GET_CUSTOMER)`),
//! so its binary links that route's code and nothing else: no runtime selector reaches a
//! dispatcher that mentions every route. The local gateway and the tests, which serve every
//! route from one process, look the function up with [`of`].

use std::future::Future;
use std::pin::Pin;

use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::customers::{self, test_helpers};
use crate::edge::http::Endpoint;
use crate::edge::routes::Route;
use crate::edge::speculation::ReadRoute;
use crate::error::ApiError;
use crate::keys;
use crate::keys::verify::Principal;
use crate::members::{self, table::Member};
use crate::providers::api as providers;
use crate::request::{RequestLog, RequestMeta};
use crate::webhooks::api::{self as webhooks, Owner};

/// A handler's answer: the response, or the error the edge turns into the envelope.
pub type Answer<'a> = Pin<Box<dyn Future<Output = Result<Response<Body>, ApiError>> + Send + 'a>>;

/// A route of the integrator API, once the key is verified for the route's scope.
pub type KeyHandler = for<'a> fn(
    &'a App,
    &'a Request,
    &'a Principal,
    &'a RequestMeta,
    &'a mut RequestLog,
) -> Answer<'a>;

/// A route that takes neither a key nor a session: its request authenticates itself (a
/// signed report).
pub type PublicHandler = for<'a> fn(&'a App, &'a Request, &'a RequestMeta) -> Answer<'a>;

/// A route of the member API, once the member is known and holds the route's permission.
pub type MemberHandler =
    for<'a> fn(&'a App, &'a Request, &'a Member, &'a RequestMeta) -> Answer<'a>;

#[derive(Clone, Copy)]
pub enum Handler {
    Key(KeyHandler),
    Member(MemberHandler),
    Public(PublicHandler),
    /// A read of the integration API, in two halves, so that a warm instance can fetch
    /// beside authentication (`edge::speculation`).
    Read(ReadRoute),
    /// API Gateway's `$default`: a JSON 404 or 405.
    Unrouted,
    /// The page's routes: its own function serves them, never the library's handlers.
    Page,
}

#[derive(Clone, Copy)]
pub struct Function {
    pub endpoint: Endpoint,
    pub handler: Handler,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Function {
    const fn key(route: Route, handler: KeyHandler) -> Self {
        Self {
            endpoint: Endpoint::Route(route),
            handler: Handler::Key(handler),
        }
    }

    const fn member(route: Route, handler: MemberHandler) -> Self {
        Self {
            endpoint: Endpoint::Route(route),
            handler: Handler::Member(handler),
        }
    }

    /// Whether the function needs the server secret: to issue or read listing cursors, or
    /// to key the fingerprint of a request carrying a provider secret.
    pub fn needs_cursor_key(self) -> bool {
        matches!(
            self.endpoint,
            Endpoint::Route(
                Route::ListCustomers | Route::CreateProviderKey | Route::RotateProviderKey
            )
        )
    }

    /// Whether the function seals or opens secrets, provider keys' or webhook endpoints'
    /// (and so builds a KMS client).
    pub fn needs_vault(self) -> bool {
        matches!(
            self.endpoint,
            Endpoint::Route(
                Route::CreateProviderKey
                    | Route::RotateProviderKey
                    | Route::VerifyProviderKey
                    | Route::CreateWebhookEndpoint
                    | Route::OrgCreateWebhookEndpoint
                    | Route::OrgRotateWebhookSecret
                    | Route::OrgWebhookEndpointSecret
            )
        )
    }

    /// Whether the function reaches the user pool (and so builds a Cognito client).
    pub fn needs_pool(self) -> bool {
        matches!(
            self.endpoint,
            Endpoint::Route(Route::InviteMember | Route::DeactivateMember)
        )
    }
}

macro_rules! key {
    ($route:ident, $handler:path) => {
        Function::key(Route::$route, |app, req, principal, meta, log| {
            Box::pin($handler(app, req, principal, meta, log))
        })
    };
}

macro_rules! member {
    ($route:ident, $handler:path) => {
        Function::member(Route::$route, |app, req, member, meta| {
            Box::pin($handler(app, req, member, meta))
        })
    };
}

/// A webhook endpoint route, owned by the key that calls it.
macro_rules! key_webhook {
    ($route:ident, $handler:path) => {
        Function::key(Route::$route, |app, req, principal, meta, _log| {
            Box::pin(async move { $handler(app, req, &Owner::of_key(principal), meta).await })
        })
    };
}

/// A webhook endpoint route on the member API, owned by the org.
macro_rules! member_webhook {
    ($route:ident, $handler:path) => {
        Function::member(Route::$route, |app, req, member, meta| {
            Box::pin(async move { $handler(app, req, &Owner::of_member(member), meta).await })
        })
    };
}

/// A read route: its fetch and its render.
macro_rules! read {
    ($route:ident, $fetch:path, $render:path) => {
        Function {
            endpoint: Endpoint::Route(Route::$route),
            handler: Handler::Read(ReadRoute {
                fetch: |app, req, space| Box::pin($fetch(app, req, space)),
                render: $render,
            }),
        }
    };
}

pub const LIST_CUSTOMERS: Function = read!(
    ListCustomers,
    customers::api::fetch_page,
    customers::api::render_page
);
pub const CREATE_CUSTOMER: Function = key!(CreateCustomer, customers::api::create);
pub const GET_CUSTOMER: Function = read!(
    GetCustomer,
    customers::api::fetch_one,
    customers::api::render_customer
);
pub const UPDATE_CUSTOMER: Function = key!(UpdateCustomer, customers::api::update);
pub const GET_CUSTOMER_AML: Function = read!(
    GetCustomerAml,
    customers::api::fetch_one,
    customers::api::render_aml
);
pub const ME: Function = Function::key(Route::Me, |_app, req, principal, meta, _log| {
    Box::pin(std::future::ready(keys::api::me(req, principal, meta)))
});
pub const TEST_HELPER_KYC: Function = key!(TestHelperKyc, test_helpers::move_kyc);
pub const TEST_HELPER_AML: Function = key!(TestHelperAml, test_helpers::move_aml);

pub const ORG_ME: Function = Function::member(Route::OrgMe, |_app, req, member, meta| {
    Box::pin(std::future::ready(members::api::me(req, member, meta)))
});
pub const LIST_API_KEYS: Function = member!(ListApiKeys, members::api::list_keys);
pub const CREATE_API_KEY: Function = member!(CreateApiKey, members::api::create_key);
pub const GET_API_KEY: Function = member!(GetApiKey, members::api::get_key);
pub const UPDATE_API_KEY: Function = member!(UpdateApiKey, members::api::update_key);
pub const REVOKE_API_KEY: Function = member!(RevokeApiKey, members::api::revoke_key);
pub const ROLL_API_KEY: Function = member!(RollApiKey, members::api::roll_key);
pub const DISMISS_KEY_LEAK: Function = member!(DismissKeyLeak, members::api::dismiss_leak);
pub const GITHUB_SECRET_SCANNING: Function = Function {
    endpoint: Endpoint::Route(Route::GithubSecretScanning),
    handler: Handler::Public(|app, req, meta| {
        Box::pin(crate::secret_scanning::github(app, req, meta))
    }),
};
pub const API_KEY_REQUESTS: Function = member!(ApiKeyRequests, members::api::key_requests);
pub const LIST_MEMBERS: Function = member!(ListMembers, members::api::list_members);
pub const INVITE_MEMBER: Function = member!(InviteMember, members::api::invite_member);
pub const UPDATE_MEMBER: Function = member!(UpdateMember, members::api::update_member);
pub const DEACTIVATE_MEMBER: Function = member!(DeactivateMember, members::api::deactivate_member);
pub const LIST_AUDIT_EVENTS: Function = member!(ListAuditEvents, crate::audit::api::list_events);

pub const LIST_WEBHOOK_ENDPOINTS: Function = key_webhook!(ListWebhookEndpoints, webhooks::list);
pub const CREATE_WEBHOOK_ENDPOINT: Function = key_webhook!(CreateWebhookEndpoint, webhooks::create);
pub const GET_WEBHOOK_ENDPOINT: Function = key_webhook!(GetWebhookEndpoint, webhooks::get);
pub const UPDATE_WEBHOOK_ENDPOINT: Function = key_webhook!(UpdateWebhookEndpoint, webhooks::update);
pub const DELETE_WEBHOOK_ENDPOINT: Function = key_webhook!(DeleteWebhookEndpoint, webhooks::delete);

pub const ORG_LIST_WEBHOOK_ENDPOINTS: Function =
    member_webhook!(OrgListWebhookEndpoints, webhooks::list);
pub const ORG_CREATE_WEBHOOK_ENDPOINT: Function =
    member_webhook!(OrgCreateWebhookEndpoint, webhooks::create);
pub const ORG_GET_WEBHOOK_ENDPOINT: Function =
    member_webhook!(OrgGetWebhookEndpoint, webhooks::get);
pub const ORG_UPDATE_WEBHOOK_ENDPOINT: Function =
    member_webhook!(OrgUpdateWebhookEndpoint, webhooks::update);
pub const ORG_DELETE_WEBHOOK_ENDPOINT: Function =
    member_webhook!(OrgDeleteWebhookEndpoint, webhooks::delete);
pub const ORG_WEBHOOK_ENDPOINT_SECRET: Function =
    member_webhook!(OrgWebhookEndpointSecret, webhooks::reveal_secret);
pub const ORG_ROTATE_WEBHOOK_SECRET: Function =
    member_webhook!(OrgRotateWebhookSecret, webhooks::rotate_secret);
pub const ORG_LIST_WEBHOOK_DELIVERIES: Function =
    member_webhook!(OrgListWebhookDeliveries, webhooks::list_deliveries);
pub const ORG_RESEND_WEBHOOK_DELIVERY: Function =
    member_webhook!(OrgResendWebhookDelivery, webhooks::resend_delivery);

pub const LIST_PROVIDER_KEYS: Function = member!(ListProviderKeys, providers::list);
pub const CREATE_PROVIDER_KEY: Function = member!(CreateProviderKey, providers::create);
pub const GET_PROVIDER_KEY: Function = member!(GetProviderKey, providers::get);
pub const UPDATE_PROVIDER_KEY: Function = member!(UpdateProviderKey, providers::update);
pub const ROTATE_PROVIDER_KEY: Function = member!(RotateProviderKey, providers::rotate);
pub const PROVIDER_KEY_CALL_SUMMARIES: Function =
    member!(ProviderKeyCallSummaries, providers::call_summaries);
pub const VERIFY_PROVIDER_KEY: Function = member!(VerifyProviderKey, providers::verify);

/// API Gateway's `$default` route.
pub const FALLBACK: Function = Function {
    endpoint: Endpoint::Fallback,
    handler: Handler::Unrouted,
};

/// The function that serves `endpoint`, for a process that serves them all (the local
/// gateway, the tests). A function's own binary never calls this.
pub fn of(endpoint: Endpoint) -> Function {
    let Endpoint::Route(route) = endpoint else {
        return FALLBACK;
    };
    match route {
        Route::ListCustomers => LIST_CUSTOMERS,
        Route::CreateCustomer => CREATE_CUSTOMER,
        Route::GetCustomer => GET_CUSTOMER,
        Route::UpdateCustomer => UPDATE_CUSTOMER,
        Route::GetCustomerAml => GET_CUSTOMER_AML,
        Route::Me => ME,
        Route::TestHelperKyc => TEST_HELPER_KYC,
        Route::TestHelperAml => TEST_HELPER_AML,
        Route::OrgMe => ORG_ME,
        Route::ListApiKeys => LIST_API_KEYS,
        Route::CreateApiKey => CREATE_API_KEY,
        Route::GetApiKey => GET_API_KEY,
        Route::UpdateApiKey => UPDATE_API_KEY,
        Route::RevokeApiKey => REVOKE_API_KEY,
        Route::RollApiKey => ROLL_API_KEY,
        Route::DismissKeyLeak => DISMISS_KEY_LEAK,
        Route::GithubSecretScanning => GITHUB_SECRET_SCANNING,
        Route::ApiKeyRequests => API_KEY_REQUESTS,
        Route::ListMembers => LIST_MEMBERS,
        Route::InviteMember => INVITE_MEMBER,
        Route::UpdateMember => UPDATE_MEMBER,
        Route::DeactivateMember => DEACTIVATE_MEMBER,
        Route::ListAuditEvents => LIST_AUDIT_EVENTS,
        Route::ListWebhookEndpoints => LIST_WEBHOOK_ENDPOINTS,
        Route::CreateWebhookEndpoint => CREATE_WEBHOOK_ENDPOINT,
        Route::GetWebhookEndpoint => GET_WEBHOOK_ENDPOINT,
        Route::UpdateWebhookEndpoint => UPDATE_WEBHOOK_ENDPOINT,
        Route::DeleteWebhookEndpoint => DELETE_WEBHOOK_ENDPOINT,
        Route::OrgListWebhookEndpoints => ORG_LIST_WEBHOOK_ENDPOINTS,
        Route::OrgCreateWebhookEndpoint => ORG_CREATE_WEBHOOK_ENDPOINT,
        Route::OrgGetWebhookEndpoint => ORG_GET_WEBHOOK_ENDPOINT,
        Route::OrgUpdateWebhookEndpoint => ORG_UPDATE_WEBHOOK_ENDPOINT,
        Route::OrgDeleteWebhookEndpoint => ORG_DELETE_WEBHOOK_ENDPOINT,
        Route::OrgWebhookEndpointSecret => ORG_WEBHOOK_ENDPOINT_SECRET,
        Route::OrgRotateWebhookSecret => ORG_ROTATE_WEBHOOK_SECRET,
        Route::OrgListWebhookDeliveries => ORG_LIST_WEBHOOK_DELIVERIES,
        Route::OrgResendWebhookDelivery => ORG_RESEND_WEBHOOK_DELIVERY,
        Route::ListProviderKeys => LIST_PROVIDER_KEYS,
        Route::CreateProviderKey => CREATE_PROVIDER_KEY,
        Route::GetProviderKey => GET_PROVIDER_KEY,
        Route::UpdateProviderKey => UPDATE_PROVIDER_KEY,
        Route::RotateProviderKey => ROTATE_PROVIDER_KEY,
        Route::ProviderKeyCallSummaries => PROVIDER_KEY_CALL_SUMMARIES,
        Route::VerifyProviderKey => VERIFY_PROVIDER_KEY,
        Route::DevelopersPage | Route::DevelopersAsset => Function {
            endpoint,
            handler: Handler::Page,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_its_own_function_on_its_own_plane() {
        for route in Route::ALL.iter().copied() {
            let function = of(Endpoint::Route(route));
            assert_eq!(function.endpoint, Endpoint::Route(route));
            match function.handler {
                Handler::Key(_) | Handler::Read(_) => {
                    assert!(route.takes_key(), "{route:?}");
                    // Every key route but `/v1/me` (any key may ask who it is) has a scope.
                    assert_eq!(route.scope().is_none(), route == Route::Me, "{route:?}");
                }
                Handler::Member(_) => {
                    assert!(route.is_member_route() && !route.is_page(), "{route:?}")
                }
                Handler::Page => assert!(route.is_page(), "{route:?}"),
                Handler::Public(_) => {
                    assert!(route.is_signed_report(), "{route:?}");
                    assert!(route.scope().is_none() && route.permission().is_none());
                }
                Handler::Unrouted => panic!("{route:?} is unrouted"),
            }
        }
        assert!(matches!(of(Endpoint::Fallback).handler, Handler::Unrouted));
    }

    #[test]
    fn only_the_functions_that_reach_the_pool_build_its_client() {
        let with_pool: Vec<Route> = Route::ALL
            .iter()
            .copied()
            .filter(|route| of(Endpoint::Route(*route)).needs_pool())
            .collect();
        assert_eq!(
            with_pool,
            vec![Route::InviteMember, Route::DeactivateMember]
        );
    }

    #[test]
    fn only_the_functions_that_seal_or_open_secrets_build_a_kms_client() {
        let with_vault: Vec<Route> = Route::ALL
            .iter()
            .copied()
            .filter(|route| of(Endpoint::Route(*route)).needs_vault())
            .collect();
        let mut expected = vec![
            Route::CreateProviderKey,
            Route::RotateProviderKey,
            Route::VerifyProviderKey,
            Route::CreateWebhookEndpoint,
            Route::OrgCreateWebhookEndpoint,
            Route::OrgRotateWebhookSecret,
            Route::OrgWebhookEndpointSecret,
        ];
        expected.sort_by_key(|route| Route::ALL.iter().position(|r| r == route));
        assert_eq!(with_vault, expected);
    }
}
