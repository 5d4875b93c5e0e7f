//! The documentation site (`make docs` builds it into docs/book) served at `/docs/` by the
//! local stack, so `make run` shows the guides beside the API they describe. Deployed, the
//! site is static and published on its own (GitHub Pages); API Gateway never serves it.

use std::path::{Component, Path, PathBuf};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION, X_CONTENT_TYPE_OPTIONS};
use hyper::{Response, StatusCode};

/// Where the site is served.
pub const PREFIX: &str = "/docs";

/// The built site's folder in the repository.
pub fn default_dir() -> PathBuf {
    localdb::workspace_root().join("docs").join("book")
}

/// The answer for `path` when it is the site's, or None when the path is not under `/docs`.
pub fn answer(dir: &Path, method: &str, path: &str) -> Option<Response<Full<Bytes>>> {
    let rest = path.strip_prefix(PREFIX)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    if method != "GET" && method != "HEAD" {
        return Some(plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "The docs site is read only.",
        ));
    }
    if rest.is_empty() {
        // Relative links resolve against /docs/, not /.
        let mut response = plain(StatusCode::PERMANENT_REDIRECT, "");
        response
            .headers_mut()
            .insert(LOCATION, HeaderValue::from_static("/docs/"));
        return Some(response);
    }
    let Some(file) = resolve(dir, rest) else {
        return Some(not_found(dir));
    };
    match std::fs::read(&file) {
        Ok(content) => {
            let mut response = Response::new(Full::new(Bytes::from(if method == "HEAD" {
                Vec::new()
            } else {
                content
            })));
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(&file)));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            Some(response)
        }
        Err(_) => Some(not_found(dir)),
    }
}

/// The file `rest` (the path after `/docs`) names inside `dir`: a folder means its
/// index.html; `..`, absolute parts and anything that leaves `dir` name nothing.
fn resolve(dir: &Path, rest: &str) -> Option<PathBuf> {
    let decoded = percent_decode(rest)?;
    let mut file = dir.to_path_buf();
    for component in Path::new(decoded.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => file.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if decoded.ends_with('/') || file.is_dir() {
        file.push("index.html");
    }
    let canonical = file.canonicalize().ok()?;
    let root = dir.canonicalize().ok()?;
    (canonical.starts_with(&root) && canonical.is_file()).then_some(canonical)
}

fn percent_decode(text: &str) -> Option<String> {
    let decoded = shared::form::percent_decode(text.as_bytes()).ok()?;
    (!decoded.contains('\0')).then_some(decoded)
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn not_found(dir: &Path) -> Response<Full<Bytes>> {
    if !dir.join("index.html").is_file() {
        return plain(
            StatusCode::NOT_FOUND,
            "The docs site is not built here: `make docs` builds it (make run does too).",
        );
    }
    match std::fs::read(dir.join("404.html")) {
        Ok(page) => {
            let mut response = Response::new(Full::new(Bytes::from(page)));
            *response.status_mut() = StatusCode::NOT_FOUND;
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        }
        Err(_) => plain(StatusCode::NOT_FOUND, "No such page in the docs."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn site() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("docs-site-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("book/guide")).unwrap();
        std::fs::write(dir.join("book/index.html"), "<h1>home</h1>").unwrap();
        std::fs::write(dir.join("book/404.html"), "<h1>lost</h1>").unwrap();
        std::fs::write(dir.join("book/guide/index.html"), "<h1>guide</h1>").unwrap();
        std::fs::write(dir.join("book/a b.css"), "b{}").unwrap();
        std::fs::write(dir.join("secret.txt"), "outside").unwrap();
        dir
    }

    async fn body(response: Response<Full<Bytes>>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn serves_the_built_site_and_nothing_outside_it() {
        let root = site();
        let book = root.join("book");
        assert!(answer(&book, "GET", "/documents").is_none());
        assert!(answer(&book, "GET", "/v1/customers").is_none());
        let redirect = answer(&book, "GET", "/docs").unwrap();
        assert_eq!(redirect.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(redirect.headers()[LOCATION], "/docs/");
        let home = answer(&book, "GET", "/docs/").unwrap();
        assert_eq!(home.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(body(home).await, "<h1>home</h1>");
        assert_eq!(
            body(answer(&book, "GET", "/docs/guide").unwrap()).await,
            "<h1>guide</h1>"
        );
        let css = answer(&book, "GET", "/docs/a%20b.css").unwrap();
        assert_eq!(css.headers()[CONTENT_TYPE], "text/css; charset=utf-8");
        assert_eq!(body(css).await, "b{}");
        for escape in [
            "/docs/../secret.txt",
            "/docs/%2e%2e/secret.txt",
            "/docs/guide/../../secret.txt",
            "/docs//etc/passwd",
            "/docs/%00",
            "/docs/%zz",
        ] {
            let response = answer(&book, "GET", escape).unwrap();
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{escape}");
            assert_ne!(body(response).await, "outside", "{escape}");
        }
        assert_eq!(
            answer(&book, "POST", "/docs/").unwrap().status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        let missing = answer(&root.join("nowhere"), "GET", "/docs/").unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert!(body(missing).await.contains("make docs"));
        std::fs::remove_dir_all(root).unwrap();
    }
}
