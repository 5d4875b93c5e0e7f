//! Settings → Developers: the page on which members sign in to the org's user pool and
//! manage its API keys and members through the member API. Plain HTML, CSS and ES modules,
//! embedded in the binary; the page talks to the API on its own origin and to the pool's
//! Cognito endpoint, and to nothing else (its Content-Security-Policy says so).

use std::sync::Arc;

use lambda_http::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use lambda_http::http::{HeaderValue, Method, StatusCode, Uri};
use lambda_http::{Body, Request, Response};
use sha2::{Digest, Sha256};
use shared::edge::http::answer;
use shared::edge::routes::{match_path, Route};
use shared::ApiError;

/// The app client's id (the page signs in through it).
pub const CLIENT_ID_ENV: &str = "MEMBER_POOL_CLIENT_ID";
/// The Cognito endpoint the page calls; deployed, the region's public one.
pub const COGNITO_ENDPOINT_ENV: &str = "COGNITO_ENDPOINT";
/// Where the documentation site is (the header links to it); unset or empty, no link.
pub const DOCS_URL_ENV: &str = "DOCS_URL";

/// The page's HTML, with `{{…}}` placeholders for the configuration.
const INDEX: &str = include_str!("../assets/index.html");

/// What the page serves under `/settings/developers/`: name, content type, content.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../assets/app.css"),
    ),
    (
        "main.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/main.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/api.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/ui.js"),
    ),
    (
        "signin.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/signin.js"),
    ),
    (
        "keys.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/keys.js"),
    ),
    (
        "requests.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/requests.js"),
    ),
    (
        "listing.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/listing.js"),
    ),
    (
        "audit.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/audit.js"),
    ),
    (
        "members.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/members.js"),
    ),
    (
        "webhooks.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/webhooks.js"),
    ),
    (
        "providers.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/providers.js"),
    ),
    (
        "cidr.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/cidr.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../assets/icon.svg"),
    ),
];

/// Where the page signs members in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageConfig {
    client_id: String,
    /// `https://cognito-idp.<region>.amazonaws.com/`, or the local emulator's URL.
    cognito_endpoint: String,
    /// The endpoint's origin, for `connect-src`.
    cognito_origin: String,
    /// The documentation site the header links to, if any.
    docs_url: Option<String>,
}

impl PageConfig {
    pub fn new(client_id: &str, cognito_endpoint: &str) -> Result<Self, String> {
        if client_id.is_empty()
            || !client_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!("{CLIENT_ID_ENV} is not an app client id"));
        }
        let uri: Uri = cognito_endpoint
            .parse()
            .map_err(|_| format!("{COGNITO_ENDPOINT_ENV} is not a URL: {cognito_endpoint}"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(format!("{COGNITO_ENDPOINT_ENV} needs a scheme and a host"));
        };
        if !matches!(scheme, "https" | "http") || uri.path() != "/" || uri.query().is_some() {
            return Err(format!(
                "{COGNITO_ENDPOINT_ENV} must be an origin such as https://cognito-idp.eu-west-1.amazonaws.com/"
            ));
        }
        let origin = format!("{scheme}://{authority}");
        Ok(Self {
            client_id: client_id.to_owned(),
            cognito_endpoint: format!("{origin}/"),
            cognito_origin: origin,
            docs_url: None,
        })
    }

    /// Links the header to the documentation site: an `https` (or `http`) URL, or a path on
    /// the page's own origin (`/docs/`, as the local stack serves it).
    pub fn with_docs_url(mut self, url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            self.docs_url = None;
            return Ok(self);
        }
        let absolute = url.parse::<Uri>().ok().is_some_and(|uri| {
            matches!(uri.scheme_str(), Some("https" | "http")) && uri.authority().is_some()
        });
        let local = url.starts_with('/') && !url.starts_with("//");
        if !(absolute || local) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{DOCS_URL_ENV} must be an https URL or a path such as /docs/: {url}"
            ));
        }
        self.docs_url = Some(url.to_owned());
        Ok(self)
    }

    /// Deployed: the app client from template.yaml and the region's Cognito endpoint
    /// (`COGNITO_ENDPOINT` overrides it).
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let client_id = var(CLIENT_ID_ENV).ok_or_else(|| format!("{CLIENT_ID_ENV} is not set"))?;
        let endpoint = match var(COGNITO_ENDPOINT_ENV) {
            Some(endpoint) => endpoint,
            None => {
                let region = var("AWS_REGION").ok_or("AWS_REGION is not set")?;
                format!("https://cognito-idp.{region}.amazonaws.com/")
            }
        };
        Self::new(&client_id, &endpoint)?.with_docs_url(&var(DOCS_URL_ENV).unwrap_or_default())
    }

    /// The policy every answer carries: scripts, styles and images from this origin only,
    /// calls to this origin and the pool, no frames, no inline anything.
    pub fn content_security_policy(&self) -> String {
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self' {}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            self.cognito_origin
        )
    }

    fn index(&self) -> String {
        INDEX
            .replace("{{client_id}}", &escape(&self.client_id))
            .replace("{{cognito_endpoint}}", &escape(&self.cognito_endpoint))
            .replace(
                "{{docs_link}}",
                &match &self.docs_url {
                    Some(url) => format!(
                        "<a class=\"docs-link\" href=\"{}\" target=\"_blank\" rel=\"noopener\">Docs</a>",
                        escape(url)
                    ),
                    None => String::new(),
                },
            )
    }
}

/// Serves one request for the page or one of its assets, in the frame every function
/// shares (`Request-Id`, the request line, errors as the envelope).
pub async fn serve(config: Arc<PageConfig>, req: Request) -> Response<Body> {
    let route = if req.uri().path() == Route::DevelopersPage.path() {
        Route::DevelopersPage
    } else {
        Route::DevelopersAsset
    };
    answer(route.key(), req, move |req, _meta, _log| async move {
        respond(&config, &req)
    })
    .await
}

fn respond(config: &PageConfig, req: &Request) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path();
    if req.method() != Method::GET {
        return Err(ApiError::MethodNotAllowed {
            method: req.method().clone(),
            allowed: vec![Method::GET],
        });
    }
    let (content_type, content, cache) = if path == Route::DevelopersPage.path() {
        // The page holds keys while a dialog shows them: no cache keeps a copy.
        ("text/html; charset=utf-8", config.index(), "no-store")
    } else {
        let name = match_path(Route::DevelopersAsset.path(), path)
            .and_then(|params| params.into_iter().next())
            .map(|(_, name)| name)
            .unwrap_or_default();
        let Some((_, content_type, content)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
            return Err(ApiError::NotFound(format!(
                "The page has no asset {}.",
                shared::edge::http::loggable_path(&name)
            )));
        };
        // Assets are revalidated (their ETag is their content's hash), so a deploy is seen
        // on the next load.
        (*content_type, (*content).to_owned(), "no-cache")
    };
    let etag = format!(
        "\"{}\"",
        &hex::encode(Sha256::digest(content.as_bytes()))[..32]
    );
    let unchanged = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag));
    let mut response = if unchanged && cache != "no-store" {
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        Response::new(Body::Text(content))
    };
    let headers = response.headers_mut();
    let mut set = |name, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set(CONTENT_TYPE, content_type);
    set(CACHE_CONTROL, cache);
    set(ETAG, &etag);
    set(CONTENT_SECURITY_POLICY, &config.content_security_policy());
    set(REFERRER_POLICY, "no-referrer");
    set(X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(X_FRAME_OPTIONS, "DENY");
    Ok(response)
}

/// HTML attribute escaping for the configuration written into the page.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_links_to_the_docs_only_when_told_where_they_are() {
        let config =
            PageConfig::new("abc123", "https://cognito-idp.eu-west-1.amazonaws.com/").unwrap();
        assert!(!config.index().contains("docs-link"));
        assert!(!config.index().contains("{{docs_link}}"));
        let local = config.clone().with_docs_url("/docs/").unwrap();
        assert!(local
            .index()
            .contains(r#"<a class="docs-link" href="/docs/""#));
        let published = config
            .clone()
            .with_docs_url("https://acme.github.io/integration-api/?a=1&b=2")
            .unwrap();
        assert!(published
            .index()
            .contains(r#"href="https://acme.github.io/integration-api/?a=1&amp;b=2""#));
        assert_eq!(config.clone().with_docs_url("  ").unwrap(), config);
        for wrong in [
            "javascript:alert(1)",
            "//evil.example/",
            "docs",
            "/docs/\" onload=\"x",
        ] {
            assert!(config.clone().with_docs_url(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn the_configuration_is_checked_and_becomes_the_policy() {
        let config =
            PageConfig::new("abc123", "https://cognito-idp.eu-west-1.amazonaws.com/").unwrap();
        let csp = config.content_security_policy();
        assert!(csp.contains("connect-src 'self' https://cognito-idp.eu-west-1.amazonaws.com;"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe"));
        let local = PageConfig::new("abc123", "http://127.0.0.1:9229").unwrap();
        assert_eq!(local.cognito_endpoint, "http://127.0.0.1:9229/");
        for bad in ["", "a b", "x\"><script>"] {
            assert!(PageConfig::new(bad, "https://x.test/").is_err(), "{bad:?}");
        }
        for bad in [
            "cognito",
            "ftp://x.test/",
            "https://x.test/path",
            "https://x.test/?a=b",
        ] {
            assert!(PageConfig::new("abc", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_asset_the_page_names_is_served() {
        // Each `/settings/developers/<name>` the HTML links and each module a module imports.
        let mut named = Vec::new();
        for text in std::iter::once(INDEX).chain(ASSETS.iter().map(|(_, _, c)| *c)) {
            for part in text.split("/settings/developers/").skip(1) {
                named.push(part.split(['"', '\'']).next().unwrap().to_owned());
            }
            for part in text.split("from './").skip(1) {
                named.push(part.split('\'').next().unwrap().to_owned());
            }
        }
        assert!(named.len() > 8, "{named:?}");
        for name in named {
            assert!(
                ASSETS.iter().any(|(n, _, _)| *n == name),
                "{name} is not served"
            );
        }
    }
}
