//! `GET /health`: 200 when the database answers, 503 when it does not, so a
//! load balancer or orchestrator takes an instance out of service.

use std::time::Duration;

use axum::{extract::State, http::StatusCode};
use sqlx::PgPool;

use super::database;

pub async fn health(State(pool): State<PgPool>) -> (StatusCode, &'static str) {
    if database::answers(&pool, Duration::from_secs(2)).await {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
    }
}
