//! The HTTP surface: the WebSocket upgrade (with the token check), health,
//! metrics, and the staff endpoints (which need a token with the staff
//! right: 401 without a known token, 403 without the right).

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    extract::{ConnectInfo, Path, Query, State, WebSocketUpgrade, rejection::JsonRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{BusState, connection, subscription::Occupancy};
use crate::{
    credentials::Scope,
    store::{
        self,
        parking::{Decision, DecisionRecord, ParkedCursor},
        subscriptions::SubscriptionLag,
    },
};

const READ_BUFFER: usize = 16 * 1024;
const DEFAULT_PAGE: i64 = 100;
const MAX_PAGE: i64 = 500;
const MAX_NOTE_CHARS: usize = 500;

pub fn router(bus: Arc<BusState>) -> Router {
    Router::new()
        .route("/bus", get(upgrade))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/subscriptions", get(subscriptions))
        .route("/parked", get(parked))
        .route("/parked/{client_type}/{position}/replay", post(replay))
        .route("/parked/{client_type}/{position}/skip", post(skip))
        .with_state(bus)
}

/// Why a request is refused before it is looked at.
enum Refusal {
    /// No known token: 401.
    Unauthorized,
    /// A known token without the staff right: 403.
    NotStaff,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a valid bearer token is required\n",
            )
                .into_response(),
            Self::NotStaff => (
                StatusCode::FORBIDDEN,
                "this token does not have the staff right\n",
            )
                .into_response(),
        }
    }
}

/// The scope of the request's bearer token.
fn authenticate(bus: &BusState, headers: &HeaderMap) -> Result<Arc<Scope>, Refusal> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    bus.config
        .access
        .authenticate(presented)
        .ok_or(Refusal::Unauthorized)
}

/// The scope of a token with the staff right.
fn staff(bus: &BusState, headers: &HeaderMap) -> Result<Arc<Scope>, Refusal> {
    let scope = authenticate(bus, headers)?;
    if !scope.staff {
        return Err(Refusal::NotStaff);
    }
    Ok(scope)
}

/// `peer`: given by the server's `into_make_service_with_connect_info`.
async fn upgrade(
    State(bus): State<Arc<BusState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let scope = match authenticate(&bus, &headers) {
        Ok(scope) => scope,
        Err(refusal) => return refusal.into_response(),
    };
    if bus.shutdown.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the bus is shutting down\n",
        )
            .into_response();
    }
    let limit = bus.config.limits.max_frame_bytes;
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        // Frames are small; a smaller read buffer is cheaper to prepare.
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| {
            let tracker = bus.connections.clone();
            tracker.track_future(connection::serve(socket, bus, scope, peer))
        })
}

async fn health(State(bus): State<Arc<BusState>>) -> (StatusCode, &'static str) {
    let probe = sqlx::query("SELECT 1").execute(&bus.pool);
    match tokio::time::timeout(std::time::Duration::from_secs(2), probe).await {
        Ok(Ok(_)) => (StatusCode::OK, "ok\n"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n"),
    }
}

async fn metrics(State(bus): State<Arc<BusState>>) -> Response {
    metrics::gauge!("bus_head_position").set(bus.writer.head() as f64);
    match &bus.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "metrics are not enabled in this process\n",
        )
            .into_response(),
    }
}

fn store_failure(error: store::StoreError) -> Response {
    tracing::error!(%error, "a staff request failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the bus could not read its database\n",
    )
        .into_response()
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

/// One client type's subscription, for staff: its lag as saved, and what
/// its subscription on this bus has in memory now.
#[derive(Serialize)]
struct SubscriptionReport {
    #[serde(flatten)]
    lag: SubscriptionLag,
    /// Instances connected in consume mode now.
    instances: usize,
    /// Events delivered to them and not yet acknowledged.
    in_flight: usize,
}

async fn subscriptions(State(bus): State<Arc<BusState>>, headers: HeaderMap) -> Response {
    if let Err(refusal) = staff(&bus, &headers) {
        return refusal.into_response();
    }
    let (lag, mut occupancy) = tokio::join!(
        store::subscriptions::lag(&bus.pool),
        bus.subscriptions.occupancy()
    );
    match lag {
        Ok(lag) => {
            let reports: Vec<SubscriptionReport> = lag
                .into_iter()
                .map(|lag| {
                    let Occupancy {
                        instances,
                        in_flight,
                    } = occupancy.remove(&lag.client_type).unwrap_or_default();
                    SubscriptionReport {
                        lag,
                        instances,
                        in_flight,
                    }
                })
                .collect();
            Json(reports).into_response()
        }
        Err(error) => store_failure(error),
    }
}

#[derive(Deserialize)]
struct ParkedFilter {
    client_type: Option<String>,
    /// `CLIENT_TYPE/POSITION`: the `next` of the previous page.
    after: Option<String>,
    limit: Option<i64>,
}

async fn parked(
    State(bus): State<Arc<BusState>>,
    headers: HeaderMap,
    Query(filter): Query<ParkedFilter>,
) -> Response {
    if let Err(refusal) = staff(&bus, &headers) {
        return refusal.into_response();
    }
    let limit = filter.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return bad_request(format!("limit must be 1 to {MAX_PAGE}"));
    }
    let after = match filter.after.as_deref().map(parse_cursor).transpose() {
        Ok(after) => after,
        Err(message) => return bad_request(message),
    };
    let listed = store::parking::list_parked(
        &bus.pool,
        filter.client_type.as_deref(),
        after.as_ref(),
        limit,
    )
    .await;
    match listed {
        Ok(parked) => {
            let next = (parked.len() as i64 == limit)
                .then(|| parked.last())
                .flatten()
                .map(|last| format!("{}/{}", last.client_type, last.position));
            Json(json!({ "parked": parked, "next": next })).into_response()
        }
        Err(error) => store_failure(error),
    }
}

fn parse_cursor(text: &str) -> Result<ParkedCursor, String> {
    let invalid = || "after must be CLIENT_TYPE/POSITION, the next of the previous page".to_owned();
    let (client_type, position) = text.rsplit_once('/').ok_or_else(invalid)?;
    Ok(ParkedCursor {
        client_type: client_type.to_owned(),
        position: position.parse().map_err(|_| invalid())?,
    })
}

/// Why staff decided: optional for a replay, required for a skip.
#[derive(Deserialize, Default)]
struct DecisionBody {
    #[serde(default)]
    note: String,
}

async fn replay(
    state: State<Arc<BusState>>,
    headers: HeaderMap,
    path: Path<(String, i64)>,
    body: Result<Json<DecisionBody>, JsonRejection>,
) -> Response {
    decide(state, headers, path, body, Decision::Replay).await
}

async fn skip(
    state: State<Arc<BusState>>,
    headers: HeaderMap,
    path: Path<(String, i64)>,
    body: Result<Json<DecisionBody>, JsonRejection>,
) -> Response {
    decide(state, headers, path, body, Decision::Skip).await
}

async fn decide(
    State(bus): State<Arc<BusState>>,
    headers: HeaderMap,
    Path((client_type, position)): Path<(String, i64)>,
    body: Result<Json<DecisionBody>, JsonRejection>,
    decision: Decision,
) -> Response {
    let scope = match staff(&bus, &headers) {
        Ok(scope) => scope,
        Err(refusal) => return refusal.into_response(),
    };
    let note = match body {
        Ok(Json(body)) => body.note.trim().to_owned(),
        // No body at all is an empty note.
        Err(JsonRejection::MissingJsonContentType(_)) => String::new(),
        Err(rejection) => return bad_request(rejection.body_text()),
    };
    if note.chars().count() > MAX_NOTE_CHARS || note.contains('\0') {
        return bad_request(format!("note must be at most {MAX_NOTE_CHARS} characters"));
    }
    if decision == Decision::Skip && note.is_empty() {
        return bad_request(
            "a skip needs a note saying why the event is not to be delivered".to_owned(),
        );
    }
    let record = DecisionRecord {
        decision,
        decided_by: scope.name.clone(),
        note,
    };
    match bus
        .subscriptions
        .decide(&client_type, position, record)
        .await
    {
        Ok(Some(released)) => (
            StatusCode::ACCEPTED,
            Json(json!({
                "client_type": client_type,
                "position": position,
                "decision": decision.as_str(),
                "released": released,
            })),
        )
            .into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(json!({
                "error": format!("no event at position {position} is parked for {client_type}")
            })),
        )
            .into_response(),
        Err(error) => store_failure(error),
    }
}
