//! The Lambda Runtime API on loopback, as `make bench` needs it to run real bootstraps: a
//! bootstrap exec'd with `AWS_LAMBDA_RUNTIME_API` pointing here long-polls
//! `GET /2018-06-01/runtime/invocation/next` for events the bench queues, and posts each
//! answer to `…/invocation/{id}/response` (or `…/error`, or `…/init/error`). Every arrival
//! is stamped with the instant it reached the server, which is what the bench measures.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use shared::edge::gateway_event::{v2_event, GatewayRequest};
use shared::edge::routes::Route;
use tokio::sync::Notify;

use crate::loopback::LoopbackServer;

const PREFIX: &str = "/2018-06-01/runtime/";
/// The deadline each invocation carries (the template's function timeout).
const INVOCATION_TIMEOUT: Duration = Duration::from_secs(10);

/// The event API Gateway sends a function for `route`, its path filled from `params`.
pub fn api_event(
    route: Route,
    params: &[(&str, &str)],
    query: &str,
    headers: Vec<(String, String)>,
    body: Option<String>,
) -> Value {
    let mut path = route.path().to_owned();
    for (name, value) in params {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    v2_event(&GatewayRequest {
        method: route.method().to_string(),
        raw_path: path,
        raw_query: query.to_owned(),
        headers,
        body: body.unwrap_or_default().into_bytes(),
        source_ip: [203, 0, 113, 10].into(),
        route_key: route.key(),
        path_parameters: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        request_id: uuid::Uuid::new_v4().to_string(),
    })
}

/// `event` as a member's: the claims API Gateway's JWT authorizer passes on once it has
/// checked an access token of the pool user `sub`.
pub fn as_member(mut event: Value, sub: &str) -> Value {
    event["requestContext"]["authorizer"] = serde_json::json!({"jwt": {
        "claims": {"sub": sub, "token_use": "access"},
        "scopes": null
    }});
    event
}

/// What a bootstrap sent, and when it reached the server.
#[derive(Debug, Clone)]
pub enum Arrival {
    /// It asked for the next event: init is over (the first time) or the last one answered.
    Next(Instant),
    Response {
        at: Instant,
        request_id: String,
        body: Value,
    },
    InvocationError {
        at: Instant,
        request_id: String,
        body: String,
    },
    InitError {
        at: Instant,
        body: String,
    },
}

impl Arrival {
    pub fn at(&self) -> Instant {
        match self {
            Arrival::Next(at)
            | Arrival::Response { at, .. }
            | Arrival::InvocationError { at, .. }
            | Arrival::InitError { at, .. } => *at,
        }
    }
}

#[derive(Default)]
struct State {
    events: Mutex<VecDeque<(String, Value)>>,
    event_queued: Notify,
    arrivals: Mutex<Vec<Arrival>>,
    arrived: Notify,
    function_arn: String,
}

/// One Runtime API, for one bootstrap process at a time.
pub struct RuntimeApi {
    server: LoopbackServer,
    state: Arc<State>,
}

impl RuntimeApi {
    /// Listens on a free loopback port.
    pub async fn start(function_name: &str) -> std::io::Result<Self> {
        let state = Arc::new(State {
            function_arn: format!("arn:aws:lambda:eu-west-1:000000000000:function:{function_name}"),
            ..State::default()
        });
        let shared = state.clone();
        let server = LoopbackServer::start(move |req| answer(req, shared.clone())).await?;
        Ok(Self { server, state })
    }

    /// `AWS_LAMBDA_RUNTIME_API`'s value: host and port, no scheme.
    pub fn host_port(&self) -> String {
        self.server.addr().to_string()
    }

    /// Queues an event; returns its request id.
    pub fn invoke(&self, event: Value) -> String {
        let request_id = uuid::Uuid::new_v4().to_string();
        if let Ok(mut events) = self.state.events.lock() {
            events.push_back((request_id.clone(), event));
        }
        self.state.event_queued.notify_one();
        request_id
    }

    /// Everything received so far.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.state
            .arrivals
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
    }

    /// Waits (up to `timeout`) for the first arrival after the first `skip` that `pick`
    /// accepts, or an init error.
    pub async fn wait_for(
        &self,
        skip: usize,
        timeout: Duration,
        pick: impl Fn(&Arrival) -> bool,
    ) -> Result<Arrival, String> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.arrived.notified();
            let seen = self.arrivals();
            if let Some(found) = seen.iter().skip(skip).find(|a| pick(a)) {
                return Ok(found.clone());
            }
            if let Some(Arrival::InitError { body, .. }) =
                seen.iter().find(|a| matches!(a, Arrival::InitError { .. }))
            {
                return Err(format!("init error: {body}"));
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return Err(format!("nothing arrived within {timeout:?}"));
            }
        }
    }

    /// Waits for the bootstrap's first `next`: the end of its init.
    pub async fn init_done(&self, timeout: Duration) -> Result<Instant, String> {
        self.wait_for(0, timeout, |a| matches!(a, Arrival::Next(_)))
            .await
            .map(|a| a.at())
    }

    /// Queues `event` and waits for its answer: the response's instant and body.
    pub async fn call(&self, event: Value, timeout: Duration) -> Result<(Instant, Value), String> {
        let skip = self.arrivals().len();
        let id = self.invoke(event);
        let answer = self
            .wait_for(skip, timeout, |a| match a {
                Arrival::Response { request_id, .. }
                | Arrival::InvocationError { request_id, .. } => *request_id == id,
                _ => false,
            })
            .await?;
        match answer {
            Arrival::Response { at, body, .. } => Ok((at, body)),
            Arrival::InvocationError { body, .. } => Err(format!("invocation error: {body}")),
            _ => Err("unexpected arrival".to_owned()),
        }
    }
}

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

async fn answer(req: Request<Incoming>, state: Arc<State>) -> Response<Full<Bytes>> {
    let at = Instant::now();
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return reply(StatusCode::NOT_FOUND, "{}");
    };
    if req.method() == Method::GET && rest == "invocation/next" {
        record(&state, Arrival::Next(at));
        return next_event(&state).await;
    }
    if req.method() != Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "{}");
    }
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return reply(StatusCode::BAD_REQUEST, "{}"),
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let arrival = match rest.split('/').collect::<Vec<_>>().as_slice() {
        ["init", "error"] => Arrival::InitError { at, body: text },
        ["invocation", id, "response"] => Arrival::Response {
            at,
            request_id: (*id).to_owned(),
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        },
        ["invocation", id, "error"] => Arrival::InvocationError {
            at,
            request_id: (*id).to_owned(),
            body: text,
        },
        _ => return reply(StatusCode::NOT_FOUND, "{}"),
    };
    record(&state, arrival);
    reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
}

fn record(state: &State, arrival: Arrival) {
    if let Ok(mut arrivals) = state.arrivals.lock() {
        arrivals.push(arrival);
    }
    state.arrived.notify_waiters();
}

/// The next queued event, as Lambda hands it over: the body, and the invocation's id,
/// deadline, function ARN and trace id in headers. Waits until one is queued.
async fn next_event(state: &State) -> Response<Full<Bytes>> {
    let (request_id, event) = loop {
        let queued = state.event_queued.notified();
        if let Some(next) = state.events.lock().ok().and_then(|mut e| e.pop_front()) {
            break next;
        }
        queued.await;
    };
    let deadline = chrono::Utc::now() + INVOCATION_TIMEOUT;
    let mut response = Response::new(Full::new(Bytes::from(event.to_string())));
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    };
    set("content-type", "application/json".to_owned());
    set("lambda-runtime-aws-request-id", request_id);
    set(
        "lambda-runtime-deadline-ms",
        deadline.timestamp_millis().to_string(),
    );
    set(
        "lambda-runtime-invoked-function-arn",
        state.function_arn.clone(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
    );
    response
}
