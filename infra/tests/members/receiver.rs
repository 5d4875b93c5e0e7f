//! A webhook receiver on loopback for the delivery tests: it records every request and
//! answers as scripted (a status, after a delay, with a `Location` for redirects), then
//! 200 once the script runs out. Signatures are checked by the Standard Webhooks libraries
//! (Python and Node), not here.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::runtime::Runtime;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub delay: Duration,
    pub location: Option<String>,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
            location: None,
        }
    }
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
    pub fn to(mut self, location: &str) -> Self {
        self.location = Some(location.to_owned());
        self
    }
}

/// A request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Received {
    pub fn id(&self) -> &str {
        self.headers
            .get("webhook-id")
            .map(String::as_str)
            .unwrap_or("")
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    pub fn kind(&self) -> String {
        self.json()["type"].as_str().unwrap_or("").to_owned()
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    script: VecDeque<Answer>,
}

pub struct Receiver {
    pub port: u16,
    state: Arc<Mutex<State>>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl Receiver {
    pub fn start(runtime: &Runtime) -> Self {
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = accepted.clone();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, hyper::Error>(answer(req, state).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            port,
            state,
            accepted,
        }
    }

    /// How many connections were made to it, requests or not.
    pub fn connections(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next answers, in order (200 after them).
    pub fn script(&self, answers: Vec<Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Waits until `done` holds for what was received (at most 30 s).
    pub fn wait_until(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "waited 30 s for {what}; received: {:?}",
                received
                    .iter()
                    .map(|r| (r.id().to_owned(), r.kind()))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for `n` requests at least.
    pub fn wait_for(&self, n: usize) -> Vec<Received> {
        self.wait_until(&format!("{n} requests"), |r| r.len() >= n)
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    state: Arc<Mutex<State>>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let headers = req
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    let scripted = {
        let mut state = state.lock().unwrap();
        state.received.push(Received {
            path,
            headers,
            body,
        });
        state.script.pop_front()
    };
    let answer = scripted.unwrap_or(Answer::status(200));
    tokio::time::sleep(answer.delay).await;
    let mut response = Response::new(Full::new(Bytes::from(format!(
        "receiver says {}",
        answer.status
    ))));
    *response.status_mut() = hyper::StatusCode::from_u16(answer.status).unwrap();
    if let Some(location) = answer.location {
        response
            .headers_mut()
            .insert("location", location.parse().unwrap());
    }
    response
}

/// The payloads of `deliveries` as the Standard Webhooks library in `language` (`python`
/// or `node`) verifies them with `secret`; `Err` with its message when one is refused.
pub fn verified_by(
    language: &str,
    secret: &str,
    deliveries: &[Received],
) -> Result<Vec<Value>, String> {
    let root = infra_root();
    let mut command = match language {
        "python" => {
            let python = std::env::var("STANDARDWEBHOOKS_PYTHON")
                .unwrap_or_else(|_| root.join(".venv-webhooks/bin/python").display().to_string());
            let mut c = Command::new(python);
            c.arg(root.join("infra/tools/verify-webhooks.py"));
            c
        }
        "node" => {
            let modules = std::env::var("STANDARDWEBHOOKS_NODE_PATH").unwrap_or_else(|_| {
                root.join(".local/standardwebhooks/node_modules")
                    .display()
                    .to_string()
            });
            let mut c = Command::new("node");
            c.env("NODE_PATH", modules)
                .arg(root.join("infra/tools/verify-webhooks.js"));
            c
        }
        other => panic!("no verifier in {other}"),
    };
    let input = Value::Array(
        deliveries
            .iter()
            .map(|d| json!({"headers": d.headers, "body": d.body}))
            .collect(),
    )
    .to_string();
    let mut child = command
        .arg(secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{language} verifier: {e} (make test installs it)"));
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect())
}

fn infra_root() -> std::path::PathBuf {
    localdb::workspace_root()
}
