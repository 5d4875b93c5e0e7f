//! The route table: every route the API serves, its method, path template and scope.
//! template.yaml declares the same routes (a test holds them equal); the `$default` route
//! answers everything else with a JSON 404 or 405.

use lambda_http::http::Method;

use crate::error::ApiError;
use crate::keys::scope::Scope;
use crate::members::role::Permission;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    ListCustomers,
    CreateCustomer,
    GetCustomer,
    UpdateCustomer,
    GetCustomerAml,
    Me,
    // Test mode's helpers: move a test customer as the back office would.
    TestHelperKyc,
    TestHelperAml,
    // The member API (`/v1/org/…`, a member session).
    OrgMe,
    ListApiKeys,
    CreateApiKey,
    GetApiKey,
    UpdateApiKey,
    RevokeApiKey,
    RollApiKey,
    DismissKeyLeak,
    ApiKeyRequests,
    ListMembers,
    InviteMember,
    UpdateMember,
    DeactivateMember,
    ListAuditEvents,
    // Webhook endpoints: with a key holding webhooks:write...
    ListWebhookEndpoints,
    CreateWebhookEndpoint,
    GetWebhookEndpoint,
    UpdateWebhookEndpoint,
    DeleteWebhookEndpoint,
    // ...and on the member API, with the secret and its rotation.
    OrgListWebhookEndpoints,
    OrgCreateWebhookEndpoint,
    OrgGetWebhookEndpoint,
    OrgUpdateWebhookEndpoint,
    OrgDeleteWebhookEndpoint,
    OrgWebhookEndpointSecret,
    OrgRotateWebhookSecret,
    OrgListWebhookDeliveries,
    OrgResendWebhookDelivery,
    // Provider keys: the org's credentials for its data providers.
    ListProviderKeys,
    CreateProviderKey,
    GetProviderKey,
    UpdateProviderKey,
    RotateProviderKey,
    ProviderKeyCallSummaries,
    VerifyProviderKey,
    // GitHub secret scanning's partner endpoint: no key or session, the signature is the
    // authentication.
    GithubSecretScanning,
    // Settings → Developers, the page on the member API (its own function serves it).
    DevelopersPage,
    DevelopersAsset,
}

impl Route {
    pub const ALL: &'static [Route] = &[
        Route::ListCustomers,
        Route::CreateCustomer,
        Route::GetCustomer,
        Route::UpdateCustomer,
        Route::GetCustomerAml,
        Route::Me,
        Route::TestHelperKyc,
        Route::TestHelperAml,
        Route::OrgMe,
        Route::ListApiKeys,
        Route::CreateApiKey,
        Route::GetApiKey,
        Route::UpdateApiKey,
        Route::RevokeApiKey,
        Route::RollApiKey,
        Route::DismissKeyLeak,
        Route::ApiKeyRequests,
        Route::ListMembers,
        Route::InviteMember,
        Route::UpdateMember,
        Route::DeactivateMember,
        Route::ListAuditEvents,
        Route::ListWebhookEndpoints,
        Route::CreateWebhookEndpoint,
        Route::GetWebhookEndpoint,
        Route::UpdateWebhookEndpoint,
        Route::DeleteWebhookEndpoint,
        Route::OrgListWebhookEndpoints,
        Route::OrgCreateWebhookEndpoint,
        Route::OrgGetWebhookEndpoint,
        Route::OrgUpdateWebhookEndpoint,
        Route::OrgDeleteWebhookEndpoint,
        Route::OrgWebhookEndpointSecret,
        Route::OrgRotateWebhookSecret,
        Route::OrgListWebhookDeliveries,
        Route::OrgResendWebhookDelivery,
        Route::ListProviderKeys,
        Route::CreateProviderKey,
        Route::GetProviderKey,
        Route::UpdateProviderKey,
        Route::RotateProviderKey,
        Route::ProviderKeyCallSummaries,
        Route::VerifyProviderKey,
        Route::GithubSecretScanning,
        Route::DevelopersPage,
        Route::DevelopersAsset,
    ];

    /// Whether the route is the member API's (a member session, not an API key).
    pub fn is_member_route(self) -> bool {
        self.path().starts_with("/v1/org/")
    }

    /// Whether the route is the page's (served by its own function, not the library's
    /// handlers: it takes neither a key nor a session, and the page signs in itself).
    pub fn is_page(self) -> bool {
        matches!(self, Route::DevelopersPage | Route::DevelopersAsset)
    }

    /// Whether the route's request authenticates itself (GitHub's signed report): it
    /// takes neither a key nor a session.
    pub fn is_signed_report(self) -> bool {
        matches!(self, Route::GithubSecretScanning)
    }

    /// Whether the route takes an API key (the integration API).
    pub fn takes_key(self) -> bool {
        !self.is_member_route() && !self.is_page() && !self.is_signed_report()
    }

    pub fn method(self) -> Method {
        match self {
            Route::ListCustomers
            | Route::GetCustomer
            | Route::GetCustomerAml
            | Route::Me
            | Route::OrgMe
            | Route::ListApiKeys
            | Route::GetApiKey
            | Route::ApiKeyRequests
            | Route::ListMembers
            | Route::ListAuditEvents
            | Route::ListWebhookEndpoints
            | Route::GetWebhookEndpoint
            | Route::OrgListWebhookEndpoints
            | Route::OrgGetWebhookEndpoint
            | Route::OrgWebhookEndpointSecret
            | Route::OrgListWebhookDeliveries
            | Route::ListProviderKeys
            | Route::GetProviderKey
            | Route::ProviderKeyCallSummaries
            | Route::DevelopersPage
            | Route::DevelopersAsset => Method::GET,
            Route::CreateCustomer
            | Route::TestHelperKyc
            | Route::TestHelperAml
            | Route::CreateApiKey
            | Route::RevokeApiKey
            | Route::RollApiKey
            | Route::DismissKeyLeak
            | Route::GithubSecretScanning
            | Route::InviteMember
            | Route::DeactivateMember
            | Route::CreateWebhookEndpoint
            | Route::OrgCreateWebhookEndpoint
            | Route::OrgRotateWebhookSecret
            | Route::OrgResendWebhookDelivery
            | Route::CreateProviderKey
            | Route::RotateProviderKey
            | Route::VerifyProviderKey => Method::POST,
            Route::UpdateCustomer
            | Route::UpdateApiKey
            | Route::UpdateMember
            | Route::UpdateWebhookEndpoint
            | Route::OrgUpdateWebhookEndpoint
            | Route::UpdateProviderKey => Method::PATCH,
            Route::DeleteWebhookEndpoint | Route::OrgDeleteWebhookEndpoint => Method::DELETE,
        }
    }

    /// The path as API Gateway declares it, `{name}` for a path parameter.
    pub fn path(self) -> &'static str {
        match self {
            Route::ListCustomers | Route::CreateCustomer => "/v1/customers",
            Route::GetCustomer | Route::UpdateCustomer => "/v1/customers/{id}",
            Route::GetCustomerAml => "/v1/customers/{id}/aml",
            Route::Me => "/v1/me",
            Route::TestHelperKyc => "/v1/test_helpers/customers/{id}/kyc",
            Route::TestHelperAml => "/v1/test_helpers/customers/{id}/aml",
            Route::OrgMe => "/v1/org/me",
            Route::ListApiKeys | Route::CreateApiKey => "/v1/org/api-keys",
            Route::GetApiKey | Route::UpdateApiKey => "/v1/org/api-keys/{id}",
            Route::RevokeApiKey => "/v1/org/api-keys/{id}/revoke",
            Route::RollApiKey => "/v1/org/api-keys/{id}/roll",
            Route::DismissKeyLeak => "/v1/org/api-keys/{id}/dismiss-leak",
            Route::ApiKeyRequests => "/v1/org/api-keys/{id}/requests",
            Route::ListMembers | Route::InviteMember => "/v1/org/members",
            Route::UpdateMember => "/v1/org/members/{id}",
            Route::DeactivateMember => "/v1/org/members/{id}/deactivate",
            Route::ListAuditEvents => "/v1/org/audit-events",
            Route::ListWebhookEndpoints | Route::CreateWebhookEndpoint => "/v1/webhook_endpoints",
            Route::GetWebhookEndpoint
            | Route::UpdateWebhookEndpoint
            | Route::DeleteWebhookEndpoint => "/v1/webhook_endpoints/{id}",
            Route::OrgListWebhookEndpoints | Route::OrgCreateWebhookEndpoint => {
                "/v1/org/webhook-endpoints"
            }
            Route::OrgGetWebhookEndpoint
            | Route::OrgUpdateWebhookEndpoint
            | Route::OrgDeleteWebhookEndpoint => "/v1/org/webhook-endpoints/{id}",
            Route::OrgWebhookEndpointSecret => "/v1/org/webhook-endpoints/{id}/secret",
            Route::OrgRotateWebhookSecret => "/v1/org/webhook-endpoints/{id}/rotate-secret",
            Route::OrgListWebhookDeliveries => "/v1/org/webhook-endpoints/{id}/deliveries",
            Route::OrgResendWebhookDelivery => {
                "/v1/org/webhook-endpoints/{id}/deliveries/{delivery_id}/resend"
            }
            Route::ListProviderKeys | Route::CreateProviderKey => "/v1/org/provider-keys",
            Route::GetProviderKey | Route::UpdateProviderKey => "/v1/org/provider-keys/{id}",
            Route::RotateProviderKey => "/v1/org/provider-keys/{id}/rotate",
            Route::ProviderKeyCallSummaries => "/v1/org/provider-keys/{id}/call-summaries",
            Route::VerifyProviderKey => "/v1/org/provider-keys/{id}/verify",
            Route::GithubSecretScanning => "/v1/secret-scanning/github",
            Route::DevelopersPage => "/settings/developers",
            Route::DevelopersAsset => "/settings/developers/{asset}",
        }
    }

    /// The scope a key needs for this route; `None`: any valid key.
    pub fn scope(self) -> Option<Scope> {
        match self {
            Route::ListCustomers | Route::GetCustomer => Some(Scope::CustomersRead),
            Route::CreateCustomer
            | Route::UpdateCustomer
            | Route::TestHelperKyc
            | Route::TestHelperAml => Some(Scope::CustomersWrite),
            Route::GetCustomerAml => Some(Scope::AmlRead),
            Route::ListWebhookEndpoints
            | Route::CreateWebhookEndpoint
            | Route::GetWebhookEndpoint
            | Route::UpdateWebhookEndpoint
            | Route::DeleteWebhookEndpoint => Some(Scope::WebhooksWrite),
            Route::Me => None,
            // Member routes take no key at all.
            _ => None,
        }
    }

    /// The permission a member needs for this member route; `None`: any member (and every
    /// integration route, which takes keys instead).
    pub fn permission(self) -> Option<Permission> {
        match self {
            Route::ListApiKeys
            | Route::CreateApiKey
            | Route::GetApiKey
            | Route::UpdateApiKey
            | Route::RevokeApiKey
            | Route::RollApiKey
            | Route::DismissKeyLeak
            | Route::ApiKeyRequests
            | Route::OrgListWebhookEndpoints
            | Route::OrgCreateWebhookEndpoint
            | Route::OrgGetWebhookEndpoint
            | Route::OrgUpdateWebhookEndpoint
            | Route::OrgDeleteWebhookEndpoint
            | Route::OrgWebhookEndpointSecret
            | Route::OrgRotateWebhookSecret
            | Route::OrgListWebhookDeliveries
            | Route::OrgResendWebhookDelivery => Some(Permission::OrgApiKeys),
            Route::ListMembers
            | Route::InviteMember
            | Route::UpdateMember
            | Route::DeactivateMember => Some(Permission::OrgMembers),
            Route::ListAuditEvents => Some(Permission::OrgAudit),
            Route::ListProviderKeys
            | Route::CreateProviderKey
            | Route::GetProviderKey
            | Route::UpdateProviderKey
            | Route::RotateProviderKey
            | Route::ProviderKeyCallSummaries
            | Route::VerifyProviderKey => Some(Permission::OrgProviderKeys),
            _ => None,
        }
    }

    /// API Gateway's route key, e.g. `GET /v1/customers`.
    pub fn key(self) -> String {
        format!("{} {}", self.method(), self.path())
    }

    pub fn from_declaration(method: &str, path: &str) -> Option<Route> {
        Route::ALL
            .iter()
            .copied()
            .find(|r| r.method().as_str().eq_ignore_ascii_case(method) && r.path() == path)
    }
}

/// Matches a concrete path against a template; `Some(params)` on a match.
pub fn match_path(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let mut params = Vec::new();
    let mut want = template.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) => {
                if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                    if g.is_empty() {
                        return None;
                    }
                    params.push((name.to_owned(), g.to_owned()));
                } else if w != g {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// The answer for a request no route took: 405 naming the allowed methods when the path
/// exists, 404 otherwise.
pub fn unrouted(method: &Method, path: &str) -> ApiError {
    let allowed: Vec<Method> = Route::ALL
        .iter()
        .filter(|r| match_path(r.path(), path).is_some())
        .map(|r| r.method())
        .collect();
    if allowed.is_empty() {
        ApiError::NotFound(format!("No route for {method} {path}."))
    } else {
        ApiError::MethodNotAllowed {
            method: method.clone(),
            allowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_templates_match_exactly() {
        assert_eq!(match_path("/v1/customers", "/v1/customers"), Some(vec![]));
        assert_eq!(match_path("/v1/customers", "/v1/customers/"), None);
        assert_eq!(match_path("/v1/customers", "/v1/customer"), None);
        assert_eq!(
            match_path("/v1/customers/{id}/aml", "/v1/customers/abc/aml"),
            Some(vec![("id".to_owned(), "abc".to_owned())])
        );
        assert_eq!(match_path("/v1/customers/{id}", "/v1/customers/"), None);
        assert_eq!(match_path("/v1/customers/{id}", "/v1/customers/a/b"), None);
    }

    #[test]
    fn unrouted_requests_get_404_or_405() {
        let err = unrouted(&Method::DELETE, "/v1/customers");
        assert_eq!(
            err,
            ApiError::MethodNotAllowed {
                method: Method::DELETE,
                allowed: vec![Method::GET, Method::POST]
            }
        );
        let err = unrouted(&Method::PUT, "/v1/customers/abc");
        assert_eq!(
            err,
            ApiError::MethodNotAllowed {
                method: Method::PUT,
                allowed: vec![Method::GET, Method::PATCH]
            }
        );
        assert_eq!(unrouted(&Method::GET, "/v2/things").code(), "not_found");
    }

    #[test]
    fn member_routes_need_the_contracts_permissions_and_only_they_do() {
        for &route in Route::ALL {
            let expected = match route.path() {
                "/v1/org/me" => None,
                path if path.starts_with("/v1/org/api-keys") => Some(Permission::OrgApiKeys),
                path if path.starts_with("/v1/org/webhook-endpoints") => {
                    Some(Permission::OrgApiKeys)
                }
                path if path.starts_with("/v1/org/members") => Some(Permission::OrgMembers),
                path if path.starts_with("/v1/org/provider-keys") => {
                    Some(Permission::OrgProviderKeys)
                }
                "/v1/org/audit-events" => Some(Permission::OrgAudit),
                _ => None,
            };
            assert_eq!(route.permission(), expected, "{route:?}");
            if !route.is_member_route() {
                assert_eq!(route.permission(), None);
            }
        }
    }

    #[test]
    fn declarations_resolve_to_routes() {
        for &route in Route::ALL {
            assert_eq!(
                Route::from_declaration(route.method().as_str(), route.path()),
                Some(route)
            );
            assert_eq!(
                Route::from_declaration(&route.method().as_str().to_lowercase(), route.path()),
                Some(route)
            );
        }
        assert_eq!(Route::from_declaration("GET", "/v1/nothing"), None);
    }
}
