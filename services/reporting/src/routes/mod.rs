//! The reporting service's HTTP API (documented in the crate's docs): for
//! bank staff only.

mod events;
mod keys;
mod reports;
mod time_travel;
mod traces;

use axum::{
    Json, Router,
    extract::{FromRequestParts, State},
    http::request::Parts,
    routing::get,
};
use serde_json::{Value, json};
use superclient::{ActingUser, ApiError, Ctx};

use crate::{Reporting, store::history};

pub fn router() -> Router<Ctx<Reporting>> {
    Router::new()
        .route("/events", get(events::list))
        .route("/events/{position}", get(events::show))
        .route("/events/{position}/tree", get(events::tree))
        .route("/keys/{key}/events", get(keys::events))
        .route("/correlations/{correlation_id}", get(traces::correlation))
        .route("/as-of", get(time_travel::as_of))
        .route(
            "/accounts/{account_id}/as-of",
            get(time_travel::account_as_of),
        )
        .route("/diff", get(time_travel::diff))
        .route("/reports/events", get(reports::events))
        .route("/reports/transfers", get(reports::transfers))
        .route("/reports/rejections", get(reports::rejections))
        .route("/reports/cash", get(reports::cash))
        .route("/reports/balances", get(reports::balances))
        .route("/reports/totals", get(reports::totals))
        .route("/freshness", get(freshness))
}

/// A member of staff acting: every handler takes one, so no route can
/// forget the check. (The framework has checked the caller token first.)
pub struct Staff;

impl FromRequestParts<Ctx<Reporting>> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &Ctx<Reporting>,
    ) -> Result<Self, Self::Rejection> {
        let acting = ActingUser::from_request_parts(parts, ctx).await?;
        if acting.staff {
            Ok(Self)
        } else {
            Err(ApiError::forbidden("the reporting API is for bank staff"))
        }
    }
}

/// How far the tables are: the newest event applied.
async fn freshness(_: Staff, State(ctx): State<Ctx<Reporting>>) -> Result<Json<Value>, ApiError> {
    let newest = history::freshness(ctx.db()).await?;
    Ok(Json(json!({
        "applied_position": newest.map(|(position, _)| position),
        "applied_at": newest.map(|(_, at)| at),
    })))
}
