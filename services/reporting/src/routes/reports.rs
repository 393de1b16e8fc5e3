//! The charts' rows. A range is of buckets (UTC) whose start is in
//! `[from, to)`, `from` taken back to the start of its bucket; by default
//! the last day of hours (or hour of minutes, month of days) up to now.

use axum::{
    Json,
    extract::{Query, State},
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use superclient::{ApiError, Ctx};

use super::Staff;
use crate::{
    Reporting, params,
    store::{
        Bucket, floor,
        reports::{self, BANDS, MAX_ROWS},
        time_travel::TICK,
    },
};

#[derive(Deserialize)]
pub struct RangeParams {
    bucket: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn bucket(text: Option<&str>, allowed: &[Bucket], default: Bucket) -> Result<Bucket, ApiError> {
    let Some(name) = text.filter(|name| !name.is_empty()) else {
        return Ok(default);
    };
    allowed
        .iter()
        .copied()
        .find(|bucket| bucket.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|b| b.name()).collect();
            ApiError::invalid(format!("bucket is one of {}", names.join(", ")))
        })
}

/// `[from, to)` of the parameters; by default the `buckets` buckets up to
/// `to` (now unless given).
fn range(
    p: &RangeParams,
    bucket: Bucket,
    buckets: i32,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let to = params::time("to", p.to.as_deref())?.unwrap_or_else(Utc::now);
    let from = match params::time("from", p.from.as_deref())? {
        Some(from) => floor(from, bucket)?,
        None => {
            let last = floor(to - TICK, bucket)?;
            last - bucket.length() * (buckets - 1)
        }
    };
    params::ordered(from, to)?;
    Ok((from, to))
}

fn money(amount: Decimal) -> String {
    events::format_money(amount)
}

pub async fn events(
    _: Staff,
    State(ctx): State<Ctx<Reporting>>,
    Query(p): Query<RangeParams>,
) -> Result<Json<Value>, ApiError> {
    let bucket = bucket(
        p.bucket.as_deref(),
        &[Bucket::Minute, Bucket::Hour],
        Bucket::Hour,
    )?;
    let buckets = if bucket == Bucket::Minute { 60 } else { 24 };
    let (from, to) = range(&p, bucket, buckets)?;
    let rows = reports::events(ctx.db(), bucket, from, to, MAX_ROWS + 1).await?;
    if rows.len() as i64 > MAX_ROWS {
        return Err(ApiError::invalid(format!(
            "the range has more than {MAX_ROWS} rows; narrow it or use larger buckets"
        )));
    }
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|row| json!({"start": row.start, "event_type": row.event_type, "events": row.events}))
        .collect();
    Ok(Json(json!({ "bucket": bucket.name(), "rows": rows })))
}

/// Per hour: transfers asked for, accepted, rejected, and the money the
/// accepted ones moved.
pub async fn transfers(
    _: Staff,
    State(ctx): State<Ctx<Reporting>>,
    Query(p): Query<RangeParams>,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = range(&p, Bucket::Hour, 24)?;
    let rows: Vec<Value> = reports::transfers(ctx.db(), from, to)
        .await?
        .into_iter()
        .map(|row| {
            json!({"hour": row.hour, "requested": row.requested, "accepted": row.accepted,
                   "rejected": row.rejected, "volume": money(row.volume)})
        })
        .collect();
    Ok(Json(json!({ "rows": rows })))
}

pub async fn rejections(
    _: Staff,
    State(ctx): State<Ctx<Reporting>>,
) -> Result<Json<Value>, ApiError> {
    let rows: Vec<Value> = reports::rejections(ctx.db())
        .await?
        .into_iter()
        .map(|row| {
            json!({"reason": row.reason, "transfers": row.transfers, "amount": money(row.amount)})
        })
        .collect();
    Ok(Json(json!({ "rows": rows })))
}

/// Deposits and withdrawals per hour or day.
pub async fn cash(
    _: Staff,
    State(ctx): State<Ctx<Reporting>>,
    Query(p): Query<RangeParams>,
) -> Result<Json<Value>, ApiError> {
    let bucket = bucket(
        p.bucket.as_deref(),
        &[Bucket::Hour, Bucket::Day],
        Bucket::Hour,
    )?;
    let buckets = if bucket == Bucket::Day { 30 } else { 24 };
    let (from, to) = range(&p, bucket, buckets)?;
    let rows: Vec<Value> = reports::cash(ctx.db(), bucket, from, to)
        .await?
        .into_iter()
        .map(|row| {
            json!({"start": row.start, "deposits": money(row.deposits),
                   "deposit_count": row.deposit_count, "withdrawals": money(row.withdrawals),
                   "withdrawal_count": row.withdrawal_count})
        })
        .collect();
    Ok(Json(json!({ "rows": rows })))
}

fn pounds(amount: i64) -> String {
    // Thousands separated, as a person reads a band's label.
    let digits = amount.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    format!("£{out}")
}

/// Accounts per balance band, and the ten largest balances.
pub async fn balances(
    _: Staff,
    State(ctx): State<Ctx<Reporting>>,
) -> Result<Json<Value>, ApiError> {
    let db = ctx.db();
    let counted = reports::balance_bands(db).await?;
    let bands: Vec<Value> = BANDS
        .iter()
        .enumerate()
        .map(|(index, &lower)| {
            let upper = BANDS.get(index + 1).copied();
            // `width_bucket` numbers the band from `lower` on as index + 1.
            let found = counted.iter().find(|band| band.band as usize == index + 1);
            let label = match upper {
                Some(upper) => format!("{}–{}", pounds(lower), pounds(upper)),
                None => format!("{} and over", pounds(lower)),
            };
            json!({
                "label": label,
                "lower": money(Decimal::from(lower)),
                "upper": upper.map(|upper| money(Decimal::from(upper))),
                "accounts": found.map_or(0, |band| band.accounts),
                "total": money(found.map_or(Decimal::ZERO, |band| band.total)),
            })
        })
        .collect();
    let largest: Vec<Value> = reports::largest(db)
        .await?
        .into_iter()
        .map(|holder| {
            json!({"account_id": holder.account_id, "username": holder.username,
                   "balance": money(holder.balance)})
        })
        .collect();
    Ok(Json(json!({ "bands": bands, "largest": largest })))
}

/// Events and amounts per type since the beginning.
pub async fn totals(_: Staff, State(ctx): State<Ctx<Reporting>>) -> Result<Json<Value>, ApiError> {
    let rows: Vec<Value> = reports::totals(ctx.db())
        .await?
        .into_iter()
        .map(|row| {
            json!({"event_type": row.event_type, "events": row.events, "amount": money(row.amount)})
        })
        .collect();
    Ok(Json(json!({ "rows": rows })))
}
