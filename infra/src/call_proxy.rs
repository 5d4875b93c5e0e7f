//! A loopback HTTP proxy in front of DynamoDB Local that writes down each operation
//! (`X-Amz-Target`) it passes on: how `make bench` counts the DynamoDB calls a separate
//! bootstrap process makes per request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

type Upstream = Client<HttpConnector, Full<Bytes>>;

pub struct CallProxy {
    addr: SocketAddr,
    calls: Arc<Mutex<Vec<String>>>,
    stop: Option<oneshot::Sender<()>>,
}

impl CallProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Result<Self, String> {
        let upstream: Uri = upstream.parse().map_err(|e| format!("{upstream}: {e}"))?;
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = oneshot::channel();
        let client: Upstream = Client::builder(TokioExecutor::new()).build_http();
        tokio::spawn(serve(listener, upstream, client, calls.clone(), stopped));
        Ok(Self {
            addr,
            calls,
            stop: Some(stop),
        })
    }

    /// The endpoint to give a bootstrap as `AWS_ENDPOINT_URL_DYNAMODB`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The operations passed on since the last `take`, in order (`GetItem`, `Query`, …).
    pub fn take(&self) -> Vec<String> {
        self.calls
            .lock()
            .map(|mut calls| std::mem::take(&mut *calls))
            .unwrap_or_default()
    }
}

impl Drop for CallProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn serve(
    listener: TcpListener,
    upstream: Uri,
    client: Upstream,
    calls: Arc<Mutex<Vec<String>>>,
    stopped: oneshot::Receiver<()>,
) {
    tokio::pin!(stopped);
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let (upstream, client, calls) = (upstream.clone(), client.clone(), calls.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                forward(req, upstream.clone(), client.clone(), calls.clone())
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn forward(
    req: Request<Incoming>,
    upstream: Uri,
    client: Upstream,
    calls: Arc<Mutex<Vec<String>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
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
        return Ok(bad_gateway());
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let Ok(uri) = format!("{upstream}{}", path.trim_start_matches('/')).parse::<Uri>() else {
        return Ok(bad_gateway());
    };
    parts.uri = uri;
    let Ok(answer) = client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
    else {
        return Ok(bad_gateway());
    };
    let (parts, body) = answer.into_parts();
    let Ok(body) = body.collect().await.map(|c| c.to_bytes()) else {
        return Ok(bad_gateway());
    };
    Ok(Response::from_parts(parts, Full::new(body)))
}

fn bad_gateway() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}
