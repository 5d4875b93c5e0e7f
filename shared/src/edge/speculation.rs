//! Warm reads in one round trip. A read route is two halves: `fetch`, which reads a data
//! space (an org and mode) and answers nothing, and `render`, which shapes what was read
//! for the authenticated key and names it in the log line. Cold, they run after
//! authentication, as every route does. Warm — this instance has authenticated the same key
//! before and remembers its data space, which never changes (`keys::facts`) — the fetch
//! starts at the same moment as authentication, and authentication alone decides: a
//! refusal is answered the moment it is known, the fetch dropped unread (never awaited, so
//! its timing tells nothing); only an allowed key's request renders what was fetched.

use std::future::Future;
use std::pin::Pin;

use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::customers::api::Fetched;
use crate::edge::routes::Route;
use crate::error::ApiError;
use crate::keys::verify::{authenticate, bearer_token, Principal};
use crate::org::OrgId;
use crate::request::{RequestLog, RequestMeta};

/// Reads a data space for a route; nothing is logged or answered from it.
pub type Fetch = for<'a> fn(
    &'a App,
    &'a Request,
    OrgId,
)
    -> Pin<Box<dyn Future<Output = Result<Fetched, ApiError>> + Send + 'a>>;

/// Shapes what was fetched for the authenticated key, naming it in the log line.
pub type Render =
    fn(Fetched, &Principal, &RequestMeta, &mut RequestLog) -> Result<Response<Body>, ApiError>;

#[derive(Clone, Copy)]
pub struct ReadRoute {
    pub fetch: Fetch,
    pub render: Render,
}

/// A key refused as unknown, revoked or expired is read cold from then on: no read of its
/// org starts beside an authentication that will refuse it (a leaked key's flood costs one
/// call a request, as before). Refused for its source, rate or scope, it is still live.
fn forget_dead(app: &App, hash: &Option<crate::keys::token::KeyHash>) {
    if let Some(hash) = hash {
        app.key_facts.forget(hash);
    }
}

/// Serves a read route: authentication and (warm) the fetch side by side.
pub async fn serve_read(
    app: &App,
    route: Route,
    read: ReadRoute,
    req: &Request,
    meta: &RequestMeta,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    let hash = bearer_token(req.headers()).ok().map(|token| token.hash());
    let remembered = hash.as_ref().and_then(|hash| app.key_facts.space_of(hash));
    let authenticating = authenticate(
        &app.keys,
        req.headers(),
        meta.source_ip,
        route.scope(),
        meta.now,
        log,
    );
    let (principal, fetched) = match remembered {
        None => (authenticating.await?, None),
        Some(space) => {
            app.speculation.started();
            let fetch = (read.fetch)(app, req, space.clone());
            tokio::pin!(fetch, authenticating);
            let mut fetched = None;
            let decided = loop {
                tokio::select! {
                    biased;
                    decided = &mut authenticating => break decided,
                    done = &mut fetch, if fetched.is_none() => fetched = Some(done),
                }
            };
            let principal = match decided {
                Ok(principal) => principal,
                Err(refused) => {
                    // Dropped unread: the answer is the refusal, now.
                    app.speculation.wasted();
                    if matches!(refused, ApiError::Unauthorized) {
                        forget_dead(app, &hash);
                    }
                    return Err(refused);
                }
            };
            if principal.data_space() == space {
                app.speculation.used();
                let fetched = match fetched {
                    Some(done) => done,
                    None => fetch.await,
                };
                (principal, Some(fetched))
            } else {
                // Not the space remembered (a hash's space never changes: a defect if seen).
                tracing::error!(key_id = %principal.key_id, "a key's remembered data space was wrong");
                app.speculation.wasted();
                (principal, None)
            }
        }
    };
    app.key_facts
        .remember(&principal.key.key_hash, &principal.data_space());
    let fetched = match fetched {
        Some(fetched) => fetched?,
        None => (read.fetch)(app, req, principal.data_space()).await?,
    };
    (read.render)(fetched, &principal, meta, log)
}
