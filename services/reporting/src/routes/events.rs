//! The event browser: pages of events, one event, its causation tree.

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
    store::{
        EventRow,
        browse::{self, Filter, Range},
        history,
    },
    views::{EventView, Node},
};

/// The most events `caused` lists.
const MAX_CAUSED: i64 = 100;

#[derive(Deserialize)]
pub struct ListParams {
    before: Option<String>,
    after: Option<String>,
    at: Option<String>,
    types: Option<String>,
    from: Option<String>,
    to: Option<String>,
    key: Option<String>,
    correlation: Option<String>,
    account: Option<String>,
    min_amount: Option<String>,
    max_amount: Option<String>,
    q: Option<String>,
    limit: Option<String>,
}

fn filter(p: &ListParams) -> Result<Filter, ApiError> {
    let filter = Filter {
        types: params::event_types(p.types.as_deref())?,
        from: params::time("from", p.from.as_deref())?,
        to: params::time("to", p.to.as_deref())?,
        key: params::text("key", p.key.as_deref())?,
        correlation: params::uuid("correlation", p.correlation.as_deref())?,
        account: params::whole("account", p.account.as_deref())?,
        min_amount: params::money("min_amount", p.min_amount.as_deref())?,
        max_amount: params::money("max_amount", p.max_amount.as_deref())?,
        text: params::text("q", p.q.as_deref())?,
    };
    if let (Some(from), Some(to)) = (filter.from, filter.to) {
        params::ordered(from, to)?;
    }
    if let (Some(min), Some(max)) = (filter.min_amount, filter.max_amount)
        && min > max
    {
        return Err(ApiError::invalid("min_amount must be at most max_amount"));
    }
    Ok(filter)
}

/// Newest first. `older` is what to pass as `before` for the next older
/// page, `newer` what to pass as `after` for the next newer one; each is
/// null when there is nothing further that way.
pub async fn list(
    _: Staff,
    State(ctx): State<Ctx<Reporting>>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let filter = filter(&p)?;
    let limit = params::limit(p.limit.as_deref())?;
    let before = params::whole("before", p.before.as_deref())?;
    let after = params::whole("after", p.after.as_deref())?;
    let at = params::time("at", p.at.as_deref())?;
    if [before.is_some(), after.is_some(), at.is_some()]
        .iter()
        .filter(|given| **given)
        .count()
        > 1
    {
        return Err(ApiError::invalid(
            "give at most one of before, after and at",
        ));
    }
    let db = ctx.db();
    let (events, newer, older) = match (before, after, at) {
        (Some(before), _, _) => older_page(db, &filter, Range::Below(before), limit).await?,
        (_, Some(after), _) => newer_page(db, &filter, after, limit).await?,
        (_, _, Some(at)) => match browse::seek(db, &filter, at).await? {
            Some(position) => {
                older_page(db, &filter, Range::Below(position.saturating_add(1)), limit).await?
            }
            // Nothing that early: the oldest events are the next newer page.
            None => {
                let newer = browse::any(db, &filter, Range::Newest).await?;
                (Vec::new(), newer.then_some(0), None)
            }
        },
        _ => older_page(db, &filter, Range::Newest, limit).await?,
    };
    let events: Vec<EventView> = events.into_iter().map(EventView::from).collect();
    Ok(Json(
        json!({ "events": events, "newer": newer, "older": older }),
    ))
}

type Page = (Vec<EventRow>, Option<i64>, Option<i64>);

/// A page going older (or the newest): one more row than asked tells
/// whether there are older ones.
async fn older_page(
    db: &sqlx::PgPool,
    filter: &Filter,
    range: Range,
    limit: i64,
) -> Result<Page, ApiError> {
    let mut rows = browse::page(db, filter, range, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let older = if more {
        rows.last().map(|row| row.position)
    } else {
        None
    };
    let newer = match (range, rows.first()) {
        (Range::Newest, _) => None,
        (_, Some(first)) => browse::any(db, filter, Range::Above(first.position))
            .await?
            .then_some(first.position),
        (Range::Below(below), None) => {
            let edge = below.saturating_sub(1);
            browse::any(db, filter, Range::Above(edge))
                .await?
                .then_some(edge)
        }
        (Range::Above(_), None) => None,
    };
    Ok((rows, newer, older))
}

/// The `limit` events just above `after`, turned newest first.
async fn newer_page(
    db: &sqlx::PgPool,
    filter: &Filter,
    after: i64,
    limit: i64,
) -> Result<Page, ApiError> {
    let mut rows = browse::page(db, filter, Range::Above(after), limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    rows.reverse();
    let newer = if more {
        rows.first().map(|row| row.position)
    } else {
        None
    };
    let edge = rows
        .last()
        .map_or(after.saturating_add(1), |oldest| oldest.position);
    let older = browse::any(db, filter, Range::Below(edge))
        .await?
        .then_some(edge);
    Ok((rows, newer, older))
}

fn position(text: &str) -> Result<i64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::invalid("an event's position is a whole number"))
}

fn no_event(position: i64) -> ApiError {
    ApiError::not_found(format!("no event at position {position}"))
}

/// One event with its payload, its cause and what it caused.
pub async fn show(
    _: Staff,
    State(ctx): State<Ctx<Reporting>>,
    Path(text): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let position = position(&text)?;
    let db = ctx.db();
    let detail = history::by_position(db, position)
        .await?
        .ok_or_else(|| no_event(position))?;
    let cause = match detail.row.causation_id {
        Some(cause) => history::by_event_id(db, cause).await?,
        None => None,
    };
    let caused: Vec<EventView> = history::caused_by(db, &[detail.row.event_id], MAX_CAUSED)
        .await?
        .into_iter()
        .map(EventView::from)
        .collect();
    Ok(Json(json!({
        "event": EventView::from(detail.row),
        "data": detail.data,
        "cause": cause.map(EventView::from),
        "caused": caused,
    })))
}

/// The causation tree the event belongs to, from its root.
pub async fn tree(
    _: Staff,
    State(ctx): State<Ctx<Reporting>>,
    Path(text): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let position = position(&text)?;
    let db = ctx.db();
    let detail = history::by_position(db, position)
        .await?
        .ok_or_else(|| no_event(position))?;
    let root = Node::tree(history::tree(db, detail.row).await?).ok_or_else(ApiError::internal)?;
    Ok(Json(json!({ "root": root })))
}
