//! `/health` (200 when the database answers and the rebuild is done, 503
//! otherwise) and `/metrics` (Prometheus text).

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::json;

use crate::{context::Ctx, service::Service};

pub(crate) async fn health<S: Service>(State(ctx): State<Ctx<S>>) -> impl IntoResponse {
    let database = sqlx::query("SELECT 1").execute(ctx.db()).await.is_ok();
    let ready = ctx.is_ready();
    let status = if database && ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "service": ctx.service().name(),
        "status": if status == StatusCode::OK { "ok" } else { "unavailable" },
        "database": if database { "ok" } else { "unreachable" },
        "rebuild": if ready { "done" } else { "running" },
        // Keys the rebuild could not bring up to date (an event of theirs
        // does not apply): the service serves the others.
        "stuck_keys": ctx.stuck_keys(),
    });
    (status, Json(body))
}

pub(crate) async fn metrics<S: Service>(State(ctx): State<Ctx<S>>) -> impl IntoResponse {
    match ctx.metrics() {
        Some(handle) => (
            StatusCode::OK,
            [("content-type", "text/plain; version=0.0.4")],
            handle.render(),
        ),
        None => (
            StatusCode::NOT_FOUND,
            [("content-type", "text/plain")],
            "metrics are not recorded in this process\n".to_owned(),
        ),
    }
}
