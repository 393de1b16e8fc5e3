//! An account's statement: newest first, by date range, in pages.

use axum::{
    Json,
    extract::{Path, Query, State},
};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Value, json};
use superclient::{ActingUser, ApiError, Ctx};

use super::{account_id, visible_account};
use crate::{Accounts, store};

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

#[derive(Deserialize)]
pub struct StatementParams {
    from: Option<String>,
    to: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

pub async fn show(
    State(ctx): State<Ctx<Accounts>>,
    acting: ActingUser,
    Path(id): Path<String>,
    Query(params): Query<StatementParams>,
) -> Result<Json<Value>, ApiError> {
    let account_id = account_id(&id)?;
    let query = parse(params)?;
    let account = visible_account(&ctx, &acting, account_id).await?;
    let entries = store::statement(ctx.db(), account_id, &query).await?;
    let next_before = (entries.len() as i64 == query.limit)
        .then(|| entries.last().map(|e| e.version))
        .flatten();
    Ok(Json(json!({
        "account_id": account_id,
        "balance": events::format_money(account.balance),
        "entries": entries,
        "next_before": next_before,
    })))
}

fn parse(params: StatementParams) -> Result<store::StatementQuery, ApiError> {
    let date = |text: Option<String>, name: &str| {
        text.map(|t| {
            NaiveDate::parse_from_str(&t, "%Y-%m-%d")
                .map_err(|_| ApiError::invalid(format!("{name} is a date such as 2026-11-28")))
        })
        .transpose()
    };
    let from = date(params.from, "from")?;
    let to = date(params.to, "to")?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(ApiError::invalid("from is after to"));
    }
    let before_version = params
        .before
        .map(|t| {
            t.parse::<i64>()
                .map_err(|_| ApiError::invalid("before is a whole number (a version)"))
        })
        .transpose()?;
    let limit = match params.limit {
        None => DEFAULT_LIMIT,
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| ApiError::invalid(format!("limit is 1 to {MAX_LIMIT}")))?,
    };
    Ok(store::StatementQuery {
        from,
        to,
        before_version,
        limit,
    })
}
