//! The script's HTTP routes, served by the framework's router (which
//! requires a caller token on every route).
//!
//! A `GET` reads. Any other method may publish, so it takes an
//! `Idempotency-Key` like every state-changing request of the services:
//! its events' ids and `req.id` derive from the key, a retry gets the
//! first answer, and the script runs as a decision (again, on fresh state,
//! when another instance wins a race for a key it pinned). An error answer
//! (4xx) publishes nothing. A retry of a try that saved its events but
//! got no answer out (a crash, an uncertain bus) sends those events again
//! and answers 200 `{"replayed": true, "events": [...]}`: what was done,
//! told from the events, since the script's own answer was never kept.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::{FromRequestParts, Query, RawPathParams, Request, State},
    http::{StatusCode, request::Parts},
    routing::{MethodFilter, on},
};
use serde_json::{Value, json};
use superclient::{
    ActingUser, ApiError, Begin, CorrelationId, Ctx, DecideError, Emit, Idempotency,
    IdempotencyKey, Service, http::USER_TOKEN_HEADER,
};

use crate::{
    api::RouteSpec,
    db::{Connection, Refresh, Snapshot},
    error::ScriptError,
    pool::Turn,
    request::{Response, RouteRequest, User},
    service::Scripted,
    vm::{Decision, Target},
};

/// Largest request body, in bytes.
const MAX_BODY: usize = 64 * 1024;

type Answer = Result<(StatusCode, Json<Value>), ApiError>;

pub(crate) fn router(routes: &[RouteSpec]) -> Router<Ctx<Scripted>> {
    let mut router = Router::new();
    for (index, spec) in routes.iter().enumerate() {
        let filter = match spec.method.as_str() {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "PATCH" => MethodFilter::PATCH,
            _ => MethodFilter::DELETE,
        };
        router = router.route(
            &spec.path,
            on(
                filter,
                move |ctx: State<Ctx<Scripted>>, request: Request| handle(ctx, index, request),
            ),
        );
    }
    router
}

async fn handle(State(ctx): State<Ctx<Scripted>>, index: usize, request: Request) -> Answer {
    let (mut parts, body) = request.into_parts();
    let mut request = read_request(&ctx, &mut parts, body).await?;
    if request.method == "GET" {
        let decision = run(&ctx, index, request).await?;
        return respond(decision.response);
    }
    let key = IdempotencyKey::from_request_parts(&mut parts, &ctx).await?;
    let correlation = CorrelationId::from_request_parts(&mut parts, &ctx).await?;
    let scope = request.user.as_ref().map_or_else(
        || "anonymous".to_owned(),
        |user| format!("user:{}", user.username),
    );
    let route = &ctx.service().pool.declared().routes[index];
    let fingerprint = json!({"route": format!("{} {}", route.method, route.path),
                             "params": request.params, "query": request.query,
                             "body": request.body});
    let mut held =
        match Idempotency::begin(ctx.db(), ctx.service().name(), &scope, &key, &fingerprint).await?
        {
            Begin::Repeat(status, body) => return Ok((status, body)),
            Begin::Proceed(held) => held,
        };
    request.id = Some(held.origin(correlation).subject_id());
    let outcome = decide(&ctx, &mut held, correlation, index, request).await;
    held.finish(outcome.map(|(status, Json(body))| (status, body)))
        .await
}

/// Runs the route as a decision: what it publishes is published safely,
/// and its answer is that of the run whose events were stored.
async fn decide(
    ctx: &Ctx<Scripted>,
    held: &mut Idempotency,
    correlation: CorrelationId,
    index: usize,
    request: RouteRequest,
) -> Answer {
    let answered: Arc<Mutex<Option<Response>>> = Arc::default();
    let stored = ctx
        .decide(held, &[], correlation, |_| {
            let (ctx, request, answered) = (ctx.clone(), request.clone(), answered.clone());
            Box::pin(async move {
                let decision = run(&ctx, index, request).await?;
                let response = decision.response.unwrap_or(Response {
                    status: 204,
                    body: Value::Null,
                });
                let emits: Vec<Emit> = if response.status >= 400 {
                    Vec::new()
                } else {
                    decision.emits
                };
                if let Ok(mut answer) = answered.lock() {
                    *answer = Some(response);
                }
                Ok::<_, ApiError>(emits)
            })
        })
        .await?;
    match answered.lock().ok().and_then(|mut answer| answer.take()) {
        Some(response) => respond(Some(response)),
        None => Ok(replayed(&stored)),
    }
}

/// The answer to a retry whose earlier try saved its events and lost its
/// answer: those events went out again without running the route, so the
/// script's own answer is gone. What was done is told from the events.
fn replayed(stored: &[superclient::EventRecord]) -> (StatusCode, Json<Value>) {
    let events: Vec<Value> = stored
        .iter()
        .map(|event| {
            json!({"type": event.event_type, "key": event.consistency.key,
                   "position": event.position,
                   "data": serde_json::from_str::<Value>(event.data.get()).unwrap_or(Value::Null)})
        })
        .collect();
    (
        StatusCode::OK,
        Json(json!({"replayed": true, "events": events})),
    )
}

/// Runs the route's handler on a snapshot; a decision (not a `GET`)
/// first brings every key it asks a version of up to date.
async fn run(
    ctx: &Ctx<Scripted>,
    index: usize,
    request: RouteRequest,
) -> Result<Decision, ApiError> {
    let deciding = request.method != "GET";
    let mut synced = HashSet::new();
    loop {
        let refresh = deciding.then(|| Refresh {
            ctx: ctx.clone(),
            synced: &mut synced,
        });
        let mut snapshot = Snapshot::new(Connection::Pooled(ctx.db().clone()), refresh);
        let target = Target::Route(index, request.clone());
        let ran = ctx
            .service()
            .pool
            .run(Turn::Decision, &mut snapshot, move |vm, bridge| {
                vm.decide(bridge, target)
            })
            .await;
        snapshot.close().await.map_err(DecideError::Database)?;
        let decision = ran.and_then(|decided| decided).map_err(script_failed)?;
        match decision.needs_sync {
            Some(key) => {
                ctx.refresh(std::slice::from_ref(&key)).await?;
                synced.insert(key);
            }
            None => return Ok(decision),
        }
    }
}

fn script_failed(error: ScriptError) -> ApiError {
    tracing::error!("a route of the script failed:\n{error}");
    ApiError::internal()
}

fn respond(response: Option<Response>) -> Answer {
    let response = response.ok_or_else(ApiError::internal)?;
    let status = StatusCode::from_u16(response.status).map_err(|_| ApiError::internal())?;
    if status.is_server_error() {
        // Not an outcome: the request may be tried again.
        let message = response.body["error"]["message"]
            .as_str()
            .unwrap_or("the service could not answer; try again")
            .to_owned();
        return Err(ApiError::new(status, "unavailable", message));
    }
    Ok((status, Json(response.body)))
}

/// The request as the script sees it; a malformed one is refused here.
async fn read_request(
    ctx: &Ctx<Scripted>,
    parts: &mut Parts,
    body: axum::body::Body,
) -> Result<RouteRequest, ApiError> {
    let params = RawPathParams::from_request_parts(parts, ctx)
        .await
        .map_err(|error| ApiError::invalid(error.body_text()))?;
    let params: BTreeMap<String, String> = params
        .iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let Query(query) = Query::<BTreeMap<String, String>>::try_from_uri(&parts.uri)
        .map_err(|error| ApiError::invalid(error.body_text()))?;
    let user = if parts.headers.contains_key(USER_TOKEN_HEADER) {
        let acting = ActingUser::from_request_parts(parts, ctx).await?;
        Some(User {
            username: acting.username,
            staff: acting.staff,
        })
    } else {
        None
    };
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::invalid(format!("the body is larger than {} KiB", MAX_BODY / 1024))
    })?;
    let body = if bytes.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice(&bytes)
                .map_err(|error| ApiError::invalid(format!("the body is not JSON: {error}")))?,
        )
    };
    Ok(RouteRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        params,
        query,
        body,
        user,
        id: None,
    })
}
