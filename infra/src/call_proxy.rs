//! A loopback HTTP proxy in front of DynamoDB Local that writes down each operation
//! (`X-Amz-Target`) it passes on: how `make bench` counts the DynamoDB calls a separate
//! bootstrap process makes per request.

use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::loopback::LoopbackServer;

type Upstream = Client<HttpConnector, Full<Bytes>>;

pub struct CallProxy {
    server: LoopbackServer,
    calls: Arc<Mutex<Vec<String>>>,
}

impl CallProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Result<Self, String> {
        let upstream: Uri = upstream.parse().map_err(|e| format!("{upstream}: {e}"))?;
        let calls = Arc::new(Mutex::new(Vec::new()));
        let client: Upstream = Client::builder(TokioExecutor::new()).build_http();
        let written = calls.clone();
        let server = LoopbackServer::start(move |req| {
            forward(req, upstream.clone(), client.clone(), written.clone())
        })
        .await
        .map_err(|e| e.to_string())?;
        Ok(Self { server, calls })
    }

    /// The endpoint to give a bootstrap as `AWS_ENDPOINT_URL_DYNAMODB`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The operations passed on since the last `take`, in order (`GetItem`, `Query`, …).
    pub fn take(&self) -> Vec<String> {
        self.calls
            .lock()
            .map(|mut calls| std::mem::take(&mut *calls))
            .unwrap_or_default()
    }
}

async fn forward(
    req: Request<Incoming>,
    upstream: Uri,
    client: Upstream,
    calls: Arc<Mutex<Vec<String>>>,
) -> Response<Full<Bytes>> {
    let operation = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|target| target.rsplit('.').next())
        .unwrap_or("unknown")
        .to_owned();
    if let Ok(mut calls) = calls.lock() {
        calls.push(operation);
    }
    let (mut parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|c| c.to_bytes()) else {
        return bad_gateway();
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let Ok(uri) = format!("{upstream}{}", path.trim_start_matches('/')).parse::<Uri>() else {
        return bad_gateway();
    };
    parts.uri = uri;
    let Ok(answer) = client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
    else {
        return bad_gateway();
    };
    let (parts, body) = answer.into_parts();
    let Ok(body) = body.collect().await.map(|c| c.to_bytes()) else {
        return bad_gateway();
    };
    Response::from_parts(parts, Full::new(body))
}

fn bad_gateway() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}
