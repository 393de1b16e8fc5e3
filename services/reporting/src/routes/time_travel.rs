//! The bank and an account as they were at a time, and what changed
//! between two times.

use std::collections::BTreeSet;

use axum::{
    Json,
    extract::{Path, Query, State},
};
use serde::Deserialize;
use serde_json::{Value, json};
use superclient::{ApiError, Ctx};

use super::Staff;
use crate::{
    Reporting, params,
    store::time_travel::{self, TICK},
    views::{LineView, TotalsView},
};

#[derive(Deserialize)]
pub struct AtParams {
    at: Option<String>,
    before_value: Option<String>,
    limit: Option<String>,
}

/// Totals over the events recorded at or before `at`.
pub async fn as_of(
    _: Staff,
    State(ctx): State<Ctx<Reporting>>,
    Query(p): Query<AtParams>,
) -> Result<Json<TotalsView>, ApiError> {
    let at = params::required_time("at", p.at.as_deref())?;
    let through = at
        .checked_add_signed(TICK)
        .ok_or_else(|| ApiError::invalid("at is out of range"))?;
    let totals = time_travel::totals_before(ctx.db(), through).await?;
    Ok(Json(TotalsView::of(at, &totals)))
}

/// An account at `at`: its balance and version then, and its lines
/// recorded by then, newest first, paged by value.
pub async fn account_as_of(
    _: Staff,
    State(ctx): State<Ctx<Reporting>>,
    Path(text): Path<String>,
    Query(p): Query<AtParams>,
) -> Result<Json<Value>, ApiError> {
    let account_id: i64 = text
        .parse()
        .map_err(|_| ApiError::invalid("an account id is a whole number"))?;
    let at = params::required_time("at", p.at.as_deref())?;
    let before_value = params::whole("before_value", p.before_value.as_deref())?;
    let limit = params::limit(p.limit.as_deref())?;
    let db = ctx.db();
    let account = time_travel::account_at(db, account_id, at)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("account {account_id} did not exist at {at}"))
        })?;
    let (version, balance) = time_travel::state_at(db, account_id, at).await?;
    let through = before_value.map_or(version, |before| version.min(before.saturating_sub(1)));
    let mut lines = time_travel::lines_at(db, account_id, through, at, limit + 1).await?;
    let more = lines.len() as i64 > limit;
    lines.truncate(limit as usize);
    let next_before_value = if more {
        lines.last().map(|line| line.value)
    } else {
        None
    };
    let lines: Vec<LineView> = lines.into_iter().map(LineView::from).collect();
    Ok(Json(json!({
        "account_id": account.account_id,
        "username": account.username,
        "opened_at": account.opened_at,
        "balance": events::format_money(balance),
        "version": version,
        "lines": lines,
        "next_before_value": next_before_value,
    })))
}

#[derive(Deserialize)]
pub struct DiffParams {
    from: Option<String>,
    to: Option<String>,
}

/// What changed in `[from, to)`. The totals are over the events recorded
/// before each bound, so that `to − from` is exactly `by_type` and each
/// account's `change`.
pub async fn diff(
    _: Staff,
    State(ctx): State<Ctx<Reporting>>,
    Query(p): Query<DiffParams>,
) -> Result<Json<Value>, ApiError> {
    let from = params::required_time("from", p.from.as_deref())?;
    let to = params::required_time("to", p.to.as_deref())?;
    params::ordered(from, to)?;
    let db = ctx.db();
    let before = time_travel::totals_before(db, from).await?;
    let after = time_travel::totals_before(db, to).await?;
    let types: BTreeSet<&String> = after.by_type.keys().collect();
    let by_type: Vec<Value> = types
        .into_iter()
        .filter_map(|event_type| {
            let count = |totals: &time_travel::Totals| {
                totals.by_type.get(event_type).map_or(0, |t| t.events)
            };
            let events = count(&after) - count(&before);
            (events != 0).then(|| json!({ "event_type": event_type, "events": events }))
        })
        .collect();
    let accounts: Vec<Value> = time_travel::changed_accounts(db, from, to)
        .await?
        .into_iter()
        .map(|account| {
            json!({
                "account_id": account.account_id,
                "username": account.username,
                "balance_from": events::format_money(account.balance_from),
                "balance_to": events::format_money(account.balance_from + account.change),
                "change": events::format_money(account.change),
            })
        })
        .collect();
    Ok(Json(json!({
        "from": TotalsView::of(from, &before),
        "to": TotalsView::of(to, &after),
        "by_type": by_type,
        "accounts": accounts,
    })))
}
