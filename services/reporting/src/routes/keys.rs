//! A key's events in value order: an account's with its running balance.

use axum::{
    Json,
    extract::{Path, Query, State},
};
use serde::Deserialize;
use serde_json::{Value, json};
use superclient::{ApiError, Ctx};

use super::Staff;
use crate::{Reporting, params, store::history, views::KeyEventView};

#[derive(Deserialize)]
pub struct KeyParams {
    after_value: Option<String>,
    limit: Option<String>,
}

/// `next_after_value` is what to pass as `after_value` for the next page
/// (null at the end). An unknown key has no events: an empty page.
pub async fn events(
    _: Staff,
    State(ctx): State<Ctx<Reporting>>,
    Path(key): Path<String>,
    Query(p): Query<KeyParams>,
) -> Result<Json<Value>, ApiError> {
    if key.chars().count() > 200 {
        return Err(ApiError::invalid("a key is at most 200 characters"));
    }
    let limit = params::limit(p.limit.as_deref())?;
    // Values start at 0: "after -1" is from the beginning.
    let after_value = params::whole("after_value", p.after_value.as_deref())?.unwrap_or(-1);
    let mut rows = history::key_events(ctx.db(), &key, after_value, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_after_value = if more {
        rows.last().map(|row| row.value)
    } else {
        None
    };
    let events: Vec<KeyEventView> = rows.into_iter().map(KeyEventView::from).collect();
    Ok(Json(json!({
        "key": key,
        "events": events,
        "next_after_value": next_after_value,
    })))
}
