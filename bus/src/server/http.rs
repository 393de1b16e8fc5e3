//! The HTTP surface: the WebSocket upgrade (with the token check), health,
//! metrics, and the staff endpoints.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, Query, State, WebSocketUpgrade},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;

use super::{BusState, connection};
use crate::store;

const READ_BUFFER: usize = 16 * 1024;

pub fn router(bus: Arc<BusState>) -> Router {
    Router::new()
        .route("/bus", get(upgrade))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/subscriptions", get(subscriptions))
        .route("/parked", get(parked))
        .route("/parked/{client_type}/{position}/replay", post(replay))
        .with_state(bus)
}

/// The bearer token check: 401 when the bus has a token and the request
/// does not carry it.
fn authorized(bus: &BusState, headers: &HeaderMap) -> bool {
    let Some(expected) = &bus.config.token else {
        return true;
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    constant_time_eq(presented.as_bytes(), expected.as_bytes())
}

/// Compares without returning early, so timing does not reveal the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for (index, byte) in a.iter().enumerate() {
        difference |= usize::from(byte ^ b.get(index % b.len().max(1)).copied().unwrap_or(0));
    }
    difference == 0
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "a valid bearer token is required\n",
    )
        .into_response()
}

async fn upgrade(
    State(bus): State<Arc<BusState>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !authorized(&bus, &headers) {
        return unauthorized();
    }
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
            tracker.track_future(connection::serve(socket, bus))
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

async fn subscriptions(State(bus): State<Arc<BusState>>, headers: HeaderMap) -> Response {
    if !authorized(&bus, &headers) {
        return unauthorized();
    }
    match store::subscriptions::lag(&bus.pool).await {
        Ok(lag) => Json(lag).into_response(),
        Err(error) => store_failure(error),
    }
}

#[derive(Deserialize)]
struct ParkedFilter {
    client_type: Option<String>,
}

async fn parked(
    State(bus): State<Arc<BusState>>,
    headers: HeaderMap,
    Query(filter): Query<ParkedFilter>,
) -> Response {
    if !authorized(&bus, &headers) {
        return unauthorized();
    }
    match store::subscriptions::list_parked(&bus.pool, filter.client_type.as_deref()).await {
        Ok(parked) => Json(parked).into_response(),
        Err(error) => store_failure(error),
    }
}

async fn replay(
    State(bus): State<Arc<BusState>>,
    headers: HeaderMap,
    Path((client_type, position)): Path<(String, i64)>,
) -> Response {
    if !authorized(&bus, &headers) {
        return unauthorized();
    }
    match bus.subscriptions.replay(&client_type, position).await {
        Ok(true) => (StatusCode::ACCEPTED, "the event will be delivered again\n").into_response(),
        Ok(false) => (
            StatusCode::NOT_FOUND,
            format!("no event at position {position} is parked for {client_type}\n"),
        )
            .into_response(),
        Err(error) => store_failure(error),
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secre", b"secret"));
        assert!(!constant_time_eq(b"", b"secret"));
        assert!(constant_time_eq(b"", b""));
    }
}
