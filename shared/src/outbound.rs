//! The HTTP client for outbound calls to configured addresses (providers' APIs, GitHub's
//! key list): HTTPS with Mozilla's roots (compiled in), or plain HTTP for the local fakes a
//! test or the local stack configures; HTTP/1, a connect timeout, idle connections kept 30 s.
//! Webhook deliveries have their own, behind the SSRF guard (`webhooks::sender`).

use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub type OutboundClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

pub fn client(connect_timeout: Duration) -> OutboundClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https)
}
