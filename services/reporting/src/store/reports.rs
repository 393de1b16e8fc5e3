//! The rows of the staff console's charts, from the additive totals and
//! the accounts. Buckets with nothing in them are left out.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgPool};

use super::Bucket;

/// The most rows the events report answers.
pub const MAX_ROWS: i64 = 2_000;

pub const EVENTS_BY_MINUTE: &str = "SELECT minute AS start, event_type, events FROM minute_totals
  WHERE minute >= $1 AND minute < $2 ORDER BY minute, event_type LIMIT $3";

pub const EVENTS_BY_HOUR: &str = "SELECT hour AS start, event_type, events FROM hour_totals
  WHERE hour >= $1 AND hour < $2 ORDER BY hour, event_type LIMIT $3";

pub const TRANSFERS_BY_HOUR: &str = "SELECT hour,
        coalesce(sum(events) FILTER (WHERE event_type = 'PendingTransaction'), 0)::bigint
          AS requested,
        coalesce(sum(events) FILTER (WHERE event_type = 'AcceptedTransaction'), 0)::bigint
          AS accepted,
        coalesce(sum(events) FILTER (WHERE event_type = 'RejectedTransaction'), 0)::bigint
          AS rejected,
        coalesce(sum(amount) FILTER (WHERE event_type = 'AcceptedTransaction'), 0) AS volume
   FROM hour_totals
  WHERE hour >= $1 AND hour < $2
    AND event_type IN ('PendingTransaction', 'AcceptedTransaction', 'RejectedTransaction')
  GROUP BY hour ORDER BY hour";

pub const REJECTIONS: &str =
    "SELECT reason, transfers, amount FROM rejection_totals ORDER BY transfers DESC, reason";

/// Deposits and withdrawals per `$3` ('hour' or 'day', UTC) in `[$1, $2)`.
pub const CASH: &str = "SELECT date_trunc($3, hour, 'UTC') AS start,
        coalesce(sum(cash_amount) FILTER (WHERE event_type = 'ConfirmedCredit'), 0) AS deposits,
        coalesce(sum(cash_events) FILTER (WHERE event_type = 'ConfirmedCredit'), 0)::bigint
          AS deposit_count,
        coalesce(sum(cash_amount) FILTER (WHERE event_type = 'ConfirmedDebit'), 0) AS withdrawals,
        coalesce(sum(cash_events) FILTER (WHERE event_type = 'ConfirmedDebit'), 0)::bigint
          AS withdrawal_count
   FROM hour_totals
  WHERE hour >= $1 AND hour < $2 AND event_type IN ('ConfirmedCredit', 'ConfirmedDebit')
  GROUP BY 1 HAVING sum(cash_events) > 0 ORDER BY 1";

/// The balance bands' lower bounds, in pounds; the last has no upper one.
pub const BANDS: [i64; 5] = [0, 100, 1_000, 10_000, 100_000];

/// Accounts and money per band: band 1 is the first of [`BANDS`].
pub const BALANCE_BANDS: &str = "SELECT width_bucket(balance, $1::numeric[]) AS band,
        count(*) AS accounts, sum(balance) AS total
   FROM accounts GROUP BY 1 ORDER BY 1";

pub const LARGEST: &str = "SELECT account_id, username, balance FROM accounts
  ORDER BY balance DESC, account_id LIMIT 10";

pub const TOTALS: &str = "SELECT event_type, sum(events)::bigint AS events, sum(amount) AS amount
   FROM hour_totals GROUP BY event_type ORDER BY event_type";

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct EventCount {
    pub start: DateTime<Utc>,
    pub event_type: String,
    pub events: i64,
}

/// At most `limit` rows of events per bucket and type in `[from, to)`.
pub async fn events(
    db: &PgPool,
    bucket: Bucket,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<EventCount>, sqlx::Error> {
    let sql = match bucket {
        Bucket::Minute => EVENTS_BY_MINUTE,
        Bucket::Hour | Bucket::Day => EVENTS_BY_HOUR,
    };
    sqlx::query_as(sql)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(db)
        .await
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct TransferHour {
    pub hour: DateTime<Utc>,
    pub requested: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub volume: Decimal,
}

pub async fn transfers(
    db: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<TransferHour>, sqlx::Error> {
    sqlx::query_as(TRANSFERS_BY_HOUR)
        .bind(from)
        .bind(to)
        .fetch_all(db)
        .await
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Rejections {
    pub reason: String,
    pub transfers: i64,
    pub amount: Decimal,
}

pub async fn rejections(db: &PgPool) -> Result<Vec<Rejections>, sqlx::Error> {
    sqlx::query_as(REJECTIONS).fetch_all(db).await
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Cash {
    pub start: DateTime<Utc>,
    pub deposits: Decimal,
    pub deposit_count: i64,
    pub withdrawals: Decimal,
    pub withdrawal_count: i64,
}

/// `bucket` is an hour or a day.
pub async fn cash(
    db: &PgPool,
    bucket: Bucket,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Cash>, sqlx::Error> {
    sqlx::query_as(CASH)
        .bind(from)
        .bind(to)
        .bind(bucket.name())
        .fetch_all(db)
        .await
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Band {
    pub band: i32,
    pub accounts: i64,
    pub total: Decimal,
}

pub async fn balance_bands(db: &PgPool) -> Result<Vec<Band>, sqlx::Error> {
    let lower: Vec<Decimal> = BANDS.iter().map(|&pounds| Decimal::from(pounds)).collect();
    sqlx::query_as(BALANCE_BANDS)
        .bind(lower)
        .fetch_all(db)
        .await
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Holder {
    pub account_id: i64,
    pub username: String,
    pub balance: Decimal,
}

pub async fn largest(db: &PgPool) -> Result<Vec<Holder>, sqlx::Error> {
    sqlx::query_as(LARGEST).fetch_all(db).await
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct TypeCount {
    pub event_type: String,
    pub events: i64,
    pub amount: Decimal,
}

pub async fn totals(db: &PgPool) -> Result<Vec<TypeCount>, sqlx::Error> {
    sqlx::query_as(TOTALS).fetch_all(db).await
}
