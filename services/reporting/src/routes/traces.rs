//! A unit of work: the events of one correlation id, with their timing.

use axum::{
    Json,
    extract::{Path, State},
};
use serde_json::{Value, json};
use superclient::{ApiError, Ctx};
use uuid::Uuid;

use super::Staff;
use crate::{Reporting, store::history, views::TraceEventView};

/// The most events a trace shows.
const MAX_EVENTS: i64 = 1_000;

pub async fn correlation(
    _: Staff,
    State(ctx): State<Ctx<Reporting>>,
    Path(text): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let correlation_id =
        Uuid::parse_str(&text).map_err(|_| ApiError::invalid("a correlation id is a UUID"))?;
    let rows = history::correlation(ctx.db(), correlation_id, MAX_EVENTS).await?;
    if rows.is_empty() {
        return Err(ApiError::not_found(format!(
            "no events of correlation {correlation_id}"
        )));
    }
    Ok(Json(json!({
        "correlation_id": correlation_id,
        "events": TraceEventView::trace(rows),
    })))
}
