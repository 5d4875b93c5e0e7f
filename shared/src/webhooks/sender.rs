//! Sending one attempt: a signed POST over our own HTTP client, whose resolver is the SSRF
//! guard (the address dialled is one the guard passed, at connect time: a name that
//! resolves elsewhere since the endpoint was saved is refused here). No redirect is
//! followed, no proxy is used, and the whole attempt has a 10 s limit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use url::{Host, Url};

use crate::time::Timestamp;
use crate::webhooks::delivery::Attempt;
use crate::webhooks::signing::{signature_header, WebhookSecret};
use crate::webhooks::target::{TargetError, TargetGuard};

/// The contract's limit on one attempt, connect to last byte read.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a failed answer's body is kept with the attempt.
const EXCERPT_CHARS: usize = 200;
const USER_AGENT: &str = "InstantCompliance-Webhooks/1.0";

/// The guard as hyper's resolver.
#[derive(Clone)]
struct GuardedResolver(TargetGuard);

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // The port is the connector's to add; the guard judges addresses only.
            let addrs = guard
                .resolver
                .resolve(&host, 0)
                .await
                .map_err(|_| refused(TargetError::Unresolvable { host: host.clone() }))?;
            guard
                .permit(&host, addrs)
                .map(Vec::into_iter)
                .map_err(refused)
        })
    }
}

fn refused(err: TargetError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, err.to_string())
}

/// What sends attempts: one per process, its connections reused.
#[derive(Clone)]
pub struct WebhookSender {
    guard: TargetGuard,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>,
    pub timeout: Duration,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender")
            .field("guard", &self.guard)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl WebhookSender {
    pub fn new(guard: TargetGuard) -> Self {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver(guard.clone()));
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        // Mozilla's roots, compiled in (webpki-roots): nothing to read from the OS at init.
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots();
        let https = builder.https_or_http().enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Self {
            guard,
            client,
            timeout: ATTEMPT_TIMEOUT,
        }
    }

    /// One signed POST of `body` to `url`; the outcome, never an error.
    pub async fn send(
        &self,
        url: &str,
        message_id: &str,
        secrets: &[WebhookSecret],
        body: &str,
        now: Timestamp,
    ) -> Attempt {
        let started = Instant::now();
        let attempt = |status_code: Option<u16>, error: Option<String>| Attempt {
            at: now,
            status_code,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error,
            resend: false,
        };
        let url = match self.checked(url) {
            Ok(url) => url,
            Err(err) => return attempt(None, Some(err.to_string())),
        };
        let timestamp = now.timestamp();
        let request = hyper::Request::post(url.as_str())
            .header("content-type", "application/json")
            .header("user-agent", USER_AGENT)
            .header("webhook-id", message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature_header(secrets, message_id, timestamp, body),
            )
            .body(Full::new(Bytes::from(body.to_owned())));
        let request = match request {
            Ok(request) => request,
            Err(err) => {
                return attempt(None, Some(format!("the request could not be built: {err}")))
            }
        };
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let mut body = response.into_body();
            let mut excerpt = Vec::new();
            // Read at most a little of the answer: a receiver can't make us download much.
            while excerpt.len() < 4 * EXCERPT_CHARS {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            excerpt.extend_from_slice(data);
                        }
                    }
                    _ => break,
                }
            }
            Ok::<_, hyper_util::client::legacy::Error>((status, excerpt))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => attempt(
                None,
                Some(format!("no answer within {} s", self.timeout.as_secs_f32())),
            ),
            Ok(Err(err)) => attempt(None, Some(describe(&err))),
            Ok(Ok((status, excerpt))) => {
                let code = status.as_u16();
                if status.is_success() {
                    attempt(Some(code), None)
                } else if status.is_redirection() {
                    attempt(
                        Some(code),
                        Some("redirects are not followed: give the final URL".to_owned()),
                    )
                } else {
                    attempt(Some(code), Some(excerpt_of(&excerpt)))
                }
            }
        }
    }

    /// The URL's form, and an address literal judged now (the resolver judges names).
    fn checked(&self, text: &str) -> Result<Url, TargetError> {
        let url = self.guard.parse_url(text)?;
        if let Some(host @ (Host::Ipv4(_) | Host::Ipv6(_))) = url.host() {
            let ip = match host {
                Host::Ipv4(ip) => ip.into(),
                Host::Ipv6(ip) => ip.into(),
                Host::Domain(_) => unreachable!(),
            };
            self.guard
                .permit(&host.to_string(), vec![SocketAddr::new(ip, 0)])?;
        }
        Ok(url)
    }
}

/// A client error as a line: the guard's refusal in its own words, else the cause.
fn describe(err: &hyper_util::client::legacy::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut last = err.to_string();
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::PermissionDenied {
                return io.to_string();
            }
        }
        last = current.to_string();
        source = current.source();
    }
    format!("could not deliver: {last}")
}

/// The start of an answer's body, printable characters only.
fn excerpt_of(bytes: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(EXCERPT_CHARS)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        "the receiver answered with an error status".to_owned()
    } else {
        text.to_owned()
    }
}

/// Shared so each process builds its client once.
pub type SharedSender = Arc<WebhookSender>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::target::FixedResolver;
    use std::collections::HashMap;
    use std::net::IpAddr;
    use std::sync::Arc;
    use tokio::net::TcpListener;

    fn sender(allow_private: bool, names: &[(&str, &str)]) -> WebhookSender {
        let map: HashMap<String, Vec<IpAddr>> = names
            .iter()
            .map(|(name, ip)| ((*name).to_owned(), vec![ip.parse().unwrap()]))
            .collect();
        WebhookSender::new(TargetGuard {
            allow_private,
            resolver: Arc::new(FixedResolver(map)),
        })
    }

    /// Whether anything connected to `listener` within a moment.
    async fn connected(listener: &TcpListener) -> bool {
        tokio::time::timeout(Duration::from_millis(300), listener.accept())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_name_that_now_resolves_inward_is_refused_at_connect_time() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let secret = WebhookSecret::generate().unwrap();
        for (name, address) in [
            ("rebound.example.com", "127.0.0.1"),
            ("metadata.example.com", "169.254.169.254"),
            ("mapped.example.com", "::ffff:127.0.0.1"),
        ] {
            let sender = sender(false, &[(name, address)]);
            let attempt = sender
                .send(
                    &format!("https://{name}:{port}/hook"),
                    "msg_1",
                    std::slice::from_ref(&secret),
                    "{}",
                    crate::time::now(),
                )
                .await;
            assert_eq!(attempt.status_code, None, "{attempt:?}");
            let error = attempt.error.clone().unwrap_or_default();
            assert!(
                error.contains(address.trim_start_matches("::ffff:")),
                "{name}: the refused address is named: {error}"
            );
            assert!(!attempt.succeeded());
        }
        assert!(!connected(&listener).await, "no connection was made");
    }

    #[tokio::test]
    async fn ip_literals_and_plain_http_are_refused_in_a_deployment() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let secret = WebhookSecret::generate().unwrap();
        let sender = sender(false, &[]);
        for url in [
            format!("https://127.0.0.1:{port}/hook"),
            format!("https://[::1]:{port}/hook"),
            format!("http://127.0.0.1:{port}/hook"),
        ] {
            let attempt = sender
                .send(
                    &url,
                    "msg_1",
                    std::slice::from_ref(&secret),
                    "{}",
                    crate::time::now(),
                )
                .await;
            assert_eq!(attempt.status_code, None, "{url}: {attempt:?}");
            assert!(attempt.error.is_some(), "{url}");
        }
        assert!(!connected(&listener).await, "no connection was made");
    }

    #[tokio::test]
    async fn the_local_stack_reaches_loopback_and_signs_what_it_sends() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let secret = WebhookSecret::generate().unwrap();
        let sender = sender(true, &[]);
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&request).contains("\"hello\"") {
                let n = stream.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            stream
                .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        let now = crate::time::now();
        let attempt = sender
            .send(
                &format!("http://127.0.0.1:{port}/hook"),
                "msg_abc",
                std::slice::from_ref(&secret),
                "{\"hello\":1}",
                now,
            )
            .await;
        assert_eq!(attempt.status_code, Some(204), "{attempt:?}");
        assert!(attempt.succeeded());
        let request = server.await.unwrap().to_ascii_lowercase();
        assert!(request.starts_with("post /hook "), "{request}");
        assert!(request.contains("webhook-id: msg_abc\r\n"), "{request}");
        assert!(
            request.contains(&format!("webhook-timestamp: {}\r\n", now.timestamp())),
            "{request}"
        );
        let signature = secret.sign("msg_abc", now.timestamp(), "{\"hello\":1}");
        assert!(
            request.contains(&format!(
                "webhook-signature: {}",
                signature.to_ascii_lowercase()
            )),
            "{request}"
        );
    }
}
