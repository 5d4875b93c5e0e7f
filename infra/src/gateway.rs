//! A local stand-in for API Gateway (HTTP API): serves the routes template.yaml declares by
//! turning each request into a payload-v2 event (source IP = the TCP peer) and invoking the
//! route's handler through lambda_http's own event parsing, as Lambda would.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use localdb::Template;
use shared::edge::gateway_event::{
    invoke, invoke_with, v2_event, Context, GatewayRequest, GatewayResponse,
};
use shared::edge::routes::{match_path, Route};
use shared::{App, Endpoint};
use tokio::net::TcpListener;

use developers_page::PageConfig;

use crate::authorizer::{JwtAuthorizer, Refusal};

/// API Gateway's own payload limit for HTTP APIs; the API's 64 KiB rule is the handler's.
pub const GATEWAY_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone)]
struct DeclaredRoute {
    method: String,
    path: String,
    route: Route,
    /// The function serving it (its logical id).
    function: String,
    /// The authorizer the template puts in front of the route.
    authorizer: Option<String>,
}

/// What the gateway resolved a request to.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub endpoint: Endpoint,
    /// The function API Gateway would invoke (its logical id in template.yaml).
    pub function: String,
    pub route_key: String,
    pub path_parameters: BTreeMap<String, String>,
    pub authorizer: Option<String>,
}

/// The routes of template.yaml, each bound to the library handler of its function.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<DeclaredRoute>,
    /// The `$default` route's function, if the template declares one.
    default_function: Option<String>,
    /// The functions' timeout, from the template.
    timeout_secs: u64,
    /// The JWT authorizers by name, once the stack knows its pool's ids.
    authorizers: BTreeMap<String, Arc<JwtAuthorizer>>,
    /// Where the page signs members in, once the stack knows its pool's ids.
    page: Option<Arc<PageConfig>>,
    /// The built docs site, served at /docs/ (the local stack's alone).
    docs: Option<std::path::PathBuf>,
}

impl RouteTable {
    pub fn from_template(template: &Template) -> Result<Self, String> {
        let mut routes = Vec::new();
        let mut default_function = None;
        for declared in template.routes() {
            match (declared.method, declared.path) {
                (None, None) => default_function = Some(declared.function),
                (Some(method), Some(path)) => {
                    let route = Route::from_declaration(&method, &path).ok_or_else(|| {
                        format!("template.yaml declares {method} {path} ({}) but the library has no such route", declared.function)
                    })?;
                    if route.is_member_route() != declared.authorizer.is_some() {
                        return Err(format!(
                            "{}: {method} {path} must sit behind the member authorizer exactly when it is a member route",
                            declared.function
                        ));
                    }
                    routes.push(DeclaredRoute {
                        method: method.to_uppercase(),
                        path,
                        route,
                        function: declared.function,
                        authorizer: declared.authorizer,
                    });
                }
                _ => {
                    return Err(format!(
                        "{}: an HttpApi event needs both Method and Path, or neither",
                        declared.function
                    ))
                }
            }
        }
        Ok(Self {
            routes,
            default_function,
            timeout_secs: template
                .function_timeout_secs()
                .unwrap_or(shared::request::FUNCTION_TIMEOUT_SECS),
            authorizers: BTreeMap::new(),
            page: None,
            docs: None,
        })
    }

    /// Puts the authorizer `name` in front of the routes that declare it. A route whose
    /// authorizer was never given refuses every request (it never runs unchecked).
    pub fn with_authorizer(mut self, name: &str, authorizer: Arc<JwtAuthorizer>) -> Self {
        self.authorizers.insert(name.to_owned(), authorizer);
        self
    }

    /// Serves the page's routes with `config` (without it they answer 503: there is no
    /// pool to sign in to).
    pub fn with_page(mut self, config: PageConfig) -> Self {
        self.page = Some(Arc::new(config));
        self
    }

    /// Serves the docs site built in `dir` at /docs/ (docs_site.rs).
    pub fn with_docs(mut self, dir: std::path::PathBuf) -> Self {
        self.docs = Some(dir);
        self
    }

    /// The endpoint API Gateway would invoke, its route key and path parameters.
    pub fn resolve(&self, method: &str, path: &str) -> Option<Resolved> {
        for declared in &self.routes {
            if declared.method == method {
                if let Some(params) = match_path(&declared.path, path) {
                    return Some(Resolved {
                        endpoint: Endpoint::Route(declared.route),
                        function: declared.function.clone(),
                        route_key: format!("{} {}", declared.method, declared.path),
                        path_parameters: params.into_iter().collect(),
                        authorizer: declared.authorizer.clone(),
                    });
                }
            }
        }
        self.default_function.clone().map(|function| Resolved {
            endpoint: Endpoint::Fallback,
            function,
            route_key: "$default".to_owned(),
            path_parameters: BTreeMap::new(),
            authorizer: None,
        })
    }
}

/// Each function's state: the stack's, its AWS calls signed as the function (its logical
/// id), as each function has its own role when deployed. Made once per function.
#[derive(Debug)]
pub struct FunctionApps {
    base: Arc<App>,
    made: std::sync::Mutex<BTreeMap<String, Arc<App>>>,
}

impl FunctionApps {
    pub fn new(base: Arc<App>) -> Self {
        Self {
            base,
            made: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// `function`'s state.
    pub fn of(&self, function: &str) -> Arc<App> {
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        made.entry(function.to_owned())
            .or_insert_with(|| Arc::new(self.base.signing_as(function)))
            .clone()
    }
}

/// Serves until `shutdown` completes, each route by its function's state (`app` signing as
/// that function).
pub async fn serve(
    listener: TcpListener,
    table: Arc<RouteTable>,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) {
    let apps = Arc::new(FunctionApps::new(app));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    continue;
                }
            },
        };
        let table = table.clone();
        let apps = apps.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, peer, table.clone(), apps.clone()));
            if let Err(err) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
}

/// API Gateway's own bare answers, for what never reaches a function.
fn gateway_error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(
        serde_json::json!({ "message": message }).to_string(),
    )));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// API Gateway's 401 for a request its JWT authorizer refused.
fn unauthorized(refusal: &Refusal) -> Response<Full<Bytes>> {
    let mut response = gateway_error(StatusCode::UNAUTHORIZED, "Unauthorized");
    let challenge = match refusal {
        Refusal::Missing => "Bearer".to_owned(),
        Refusal::Invalid(reason) => format!(
            "Bearer scope=\"\" error=\"invalid_token\" error_description=\"{}\"",
            reason.replace('"', "'")
        ),
    };
    if let Ok(value) = hyper::header::HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(hyper::header::WWW_AUTHENTICATE, value);
    }
    response
}

async fn answer(
    req: Request<Incoming>,
    peer: SocketAddr,
    table: Arc<RouteTable>,
    apps: Arc<FunctionApps>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().as_str().to_owned();
    let raw_path = req.uri().path().to_owned();
    let raw_query = req.uri().query().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    if let Some(site) = table
        .docs
        .as_deref()
        .and_then(|dir| crate::docs_site::answer(dir, &method, &raw_path))
    {
        return Ok(site);
    }
    let Some(resolved) = table.resolve(&method, &raw_path) else {
        return Ok(gateway_error(StatusCode::NOT_FOUND, "Not Found"));
    };
    // The authorizer runs before the function, as in API Gateway; its 401 is API
    // Gateway's own body, not the API's envelope.
    let claims = match &resolved.authorizer {
        None => None,
        Some(name) => {
            let authorization = req
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
            let checked = match table.authorizers.get(name) {
                Some(authorizer) => authorizer.check(authorization, now).await,
                None => Err(Refusal::Invalid("no authorizer configured".into())),
            };
            match checked {
                Ok(claims) => Some(claims),
                Err(refusal) => return Ok(unauthorized(&refusal)),
            }
        }
    };
    let Resolved {
        endpoint,
        function,
        route_key,
        path_parameters,
        ..
    } = resolved;
    let body = match Limited::new(req.into_body(), GATEWAY_MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => {
            return Ok(gateway_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request Entity Too Large",
            ))
        }
    };
    let mut event = v2_event(&GatewayRequest {
        method,
        raw_path,
        raw_query,
        headers,
        body,
        source_ip: peer.ip(),
        route_key,
        path_parameters,
        request_id: uuid::Uuid::new_v4().to_string(),
    });
    if let Some(claims) = claims {
        event["requestContext"]["authorizer"] =
            serde_json::json!({"jwt": {"claims": claims, "scopes": null}});
    }
    // As Lambda does: the invocation's deadline is the function timeout from now.
    let mut context = Context::default();
    let deadline = chrono::Utc::now() + chrono::Duration::seconds(table.timeout_secs as i64);
    context.deadline = u64::try_from(deadline.timestamp_millis()).unwrap_or(0);
    let response = match endpoint {
        // The page's function is not the library's: it is invoked the same way, with its
        // own handler.
        Endpoint::Route(route) if route.is_page() => match &table.page {
            Some(config) => {
                let config = config.clone();
                invoke_with(
                    move |req| developers_page::serve(config.clone(), req),
                    event,
                    context,
                )
                .await
            }
            None => {
                return Ok(gateway_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable",
                ))
            }
        },
        _ => invoke(apps.of(&function), endpoint, event, context).await,
    };
    let response = match GatewayResponse::from_event(&response) {
        Ok(response) => response,
        Err(err) => {
            // What API Gateway answers when a function fails or returns nonsense.
            tracing::error!(error = %err, "function invocation failed");
            return Ok(gateway_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
            ));
        }
    };
    let mut out = Response::new(Full::new(Bytes::from(response.body)));
    *out.status_mut() =
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(&value),
        ) {
            out.headers_mut().append(name, value);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_template_resolves_like_api_gateway() {
        let table = RouteTable::from_template(&Template::load_default().unwrap()).unwrap();
        let resolved = table.resolve("GET", "/v1/customers").unwrap();
        assert_eq!(resolved.endpoint, Endpoint::Route(Route::ListCustomers));
        assert_eq!(resolved.route_key, "GET /v1/customers");
        assert!(resolved.path_parameters.is_empty());
        assert_eq!(resolved.authorizer, None);
        let resolved = table.resolve("DELETE", "/v1/customers").unwrap();
        assert_eq!(
            (resolved.endpoint, resolved.route_key.as_str()),
            (Endpoint::Fallback, "$default")
        );
        assert_eq!(
            table.resolve("GET", "/anything").unwrap().endpoint,
            Endpoint::Fallback
        );
        // Every member route, and only they, sit behind the member authorizer.
        for &route in Route::ALL {
            let path = route.path().replace("{id}", "x");
            let resolved = table.resolve(route.method().as_str(), &path).unwrap();
            assert_eq!(resolved.endpoint, Endpoint::Route(route));
            assert_eq!(
                resolved.authorizer.as_deref(),
                route.is_member_route().then_some("MemberJwt"),
                "{route:?}"
            );
        }
    }

    #[test]
    fn a_route_the_library_lacks_is_a_startup_error() {
        let template = Template::parse(
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        E:\n          Type: HttpApi\n          Properties:\n            Method: GET\n            Path: /v1/unknown\n",
        )
        .unwrap();
        let err = RouteTable::from_template(&template).unwrap_err();
        assert!(err.contains("GET /v1/unknown"), "{err}");
    }

    #[test]
    fn without_a_default_route_unknown_paths_are_unrouted() {
        let template = Template::parse("Resources: {}\n").unwrap();
        let table = RouteTable::from_template(&template).unwrap();
        assert!(table.resolve("GET", "/v1/customers").is_none());
    }
}
