//! The edge every function shares: request id, authentication, dispatch to the route's
//! handler, errors turned into the envelope, and one log line per request.

use std::sync::Arc;
use std::time::Instant;

use lambda_http::http::HeaderValue;
use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::customers;
use crate::edge::routes::{unrouted, Route};
use crate::error::{ApiError, REQUEST_ID_HEADER};
use crate::keys::verify::authenticate;
use crate::request::{RequestLog, RequestMeta};

/// What a function serves: one route, or API Gateway's `$default` catch-all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Route(Route),
    Fallback,
}

impl Endpoint {
    pub fn name(self) -> String {
        match self {
            Endpoint::Route(route) => route.key(),
            Endpoint::Fallback => "$default".to_owned(),
        }
    }
}

/// Serves one request. Never fails: every outcome, a panic included, is a response.
pub async fn handle(app: Arc<App>, endpoint: Endpoint, req: Request) -> Response<Body> {
    let started = Instant::now();
    let meta = RequestMeta::of(&req);
    let method = req.method().to_string();
    // A panic in the handler ends its task, not the function: it is answered as a 500.
    let task = tokio::spawn({
        let meta = meta.clone();
        async move {
            let mut log = RequestLog::default();
            let result = dispatch(&app, endpoint, &req, &meta, &mut log).await;
            (result, log)
        }
    });
    let (result, log) = match task.await {
        Ok(done) => done,
        Err(_) => {
            tracing::error!(request_id = %meta.request_id, "handler panicked");
            (Err(ApiError::Internal), RequestLog::default())
        }
    };
    let mut response = result.unwrap_or_else(|err| {
        if err.status().is_server_error() {
            tracing::error!(request_id = %meta.request_id, code = err.code(), "request failed");
        }
        err.into_response(&meta.request_id)
    });
    if let Ok(value) = HeaderValue::from_str(&meta.request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    tracing::info!(
        request_id = %meta.request_id,
        route = %endpoint.name(),
        method = %method,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        org = log.org.as_deref().unwrap_or(""),
        key_id = log.key_id.as_deref().unwrap_or(""),
        source_ip = %meta.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        customer_ids = %log.customer_ids.join(","),
        "request"
    );
    response
}

async fn dispatch(
    app: &App,
    endpoint: Endpoint,
    req: &Request,
    meta: &RequestMeta,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let Endpoint::Route(route) = endpoint else {
        return Err(unrouted(req.method(), req.uri().path()));
    };
    let principal = authenticate(
        &app.keys,
        req.headers(),
        meta.source_ip,
        route.scope(),
        meta.now,
    )
    .await?;
    log.principal(&principal);
    match route {
        Route::ListCustomers => customers::api::list(app, req, &principal, meta, log).await,
        Route::CreateCustomer => customers::api::create(app, req, &principal, meta, log).await,
        Route::GetCustomer => customers::api::get(app, req, &principal, meta, log).await,
        Route::UpdateCustomer => customers::api::update(app, req, &principal, meta, log).await,
        Route::GetCustomerAml => customers::api::get_aml(app, req, &principal, meta, log).await,
    }
}
