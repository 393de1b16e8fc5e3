//! The bank and its accounts as they were at a time, from the log.
//!
//! Totals before a time are three index ranges: whole hours before its
//! hour (`hour_totals`), whole minutes of its hour before its minute
//! (`minute_totals`), and the events of its minute before it (`events`
//! by `recorded_at`). An account's balance at a time is the running
//! balance of its last line by then.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use events::{AccountCreated, ConfirmedCredit, ConfirmedDebit, DomainEvent};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgPool};

use super::{Bucket, OutOfRange, floor};

/// Per event type: events, amounts, and cash (deposits, withdrawals)
/// recorded before `$3`; `$1` is `$3`'s hour, `$2` its minute.
pub const TYPE_TOTALS_BEFORE: &str = "SELECT event_type, sum(events)::bigint AS events,
        sum(amount) AS amount, sum(cash_events)::bigint AS cash_events,
        sum(cash_amount) AS cash_amount
   FROM (SELECT event_type, events, amount, cash_events, cash_amount
           FROM hour_totals WHERE hour < $1
         UNION ALL
         SELECT event_type, events, amount, cash_events, cash_amount
           FROM minute_totals WHERE minute >= $1 AND minute < $2
         UNION ALL
         SELECT event_type, 1::bigint, coalesce(amount, 0),
                CASE WHEN cash THEN 1::bigint ELSE 0 END,
                CASE WHEN cash THEN amount ELSE 0 END
           FROM (SELECT event_type, amount,
                        transaction_id IS NULL
                          AND event_type IN ('ConfirmedCredit', 'ConfirmedDebit') AS cash
                   FROM events WHERE recorded_at >= $2 AND recorded_at < $3) minute) totals
  GROUP BY event_type";

/// Users first seen before `$1`.
pub const USERS_BEFORE: &str = "SELECT count(*) FROM users WHERE first_seen_at < $1";

/// The account, if it was opened by `$2`.
pub const ACCOUNT_AT: &str = "SELECT account_id, username, opened_at FROM accounts
  WHERE account_id = $1 AND opened_at <= $2";

/// The account's last line recorded by `$2`: its balance and version then.
pub const LAST_LINE_AT: &str = "SELECT value, balance_after FROM account_lines
  WHERE account_id = $1 AND recorded_at <= $2 ORDER BY recorded_at DESC, value DESC LIMIT 1";

/// The account's lines from value `$2` down, recorded by `$3`, at most `$4`.
pub const LINES_AT: &str = "SELECT value, position, recorded_at, event_type, amount, delta,
        balance_after, transaction_id, note
   FROM account_lines WHERE account_id = $1 AND value <= $2 AND recorded_at <= $3
  ORDER BY value DESC LIMIT $4";

/// The 100 accounts whose balance changed most in `[$1, $2)`, with the
/// balance before `$1`.
pub const CHANGED_ACCOUNTS: &str = "SELECT c.account_id, a.username, c.change,
        coalesce(f.balance_after, 0) AS balance_from
   FROM (SELECT account_id, sum(delta) AS change FROM account_lines
          WHERE recorded_at >= $1 AND recorded_at < $2
          GROUP BY account_id HAVING sum(delta) <> 0
          ORDER BY abs(sum(delta)) DESC, account_id LIMIT 100) c
   JOIN accounts a ON a.account_id = c.account_id
   LEFT JOIN LATERAL (SELECT l.balance_after FROM account_lines l
          WHERE l.account_id = c.account_id AND l.recorded_at < $1
          ORDER BY l.recorded_at DESC, l.value DESC LIMIT 1) f ON true
  ORDER BY abs(c.change) DESC, c.account_id";

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct TypeTotal {
    pub event_type: String,
    pub events: i64,
    pub amount: Decimal,
    pub cash_events: i64,
    pub cash_amount: Decimal,
}

/// The bank's totals over the events recorded before a bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub by_type: BTreeMap<String, TypeTotal>,
    pub users: i64,
}

impl Totals {
    fn of(&self, event_type: &str) -> Option<&TypeTotal> {
        self.by_type.get(event_type)
    }

    /// Credits less debits.
    pub fn money_held(&self) -> Decimal {
        let sum = |t| self.of(t).map_or(Decimal::ZERO, |t| t.amount);
        sum(ConfirmedCredit::TYPE) - sum(ConfirmedDebit::TYPE)
    }

    pub fn accounts(&self) -> i64 {
        self.of(AccountCreated::TYPE).map_or(0, |t| t.events)
    }

    pub fn events(&self) -> i64 {
        self.by_type.values().map(|t| t.events).sum()
    }

    pub fn deposits(&self) -> Decimal {
        self.of(ConfirmedCredit::TYPE)
            .map_or(Decimal::ZERO, |t| t.cash_amount)
    }

    pub fn withdrawals(&self) -> Decimal {
        self.of(ConfirmedDebit::TYPE)
            .map_or(Decimal::ZERO, |t| t.cash_amount)
    }
}

/// The binds of [`TYPE_TOTALS_BEFORE`] for a bound: its hour, its minute, itself.
pub fn bounds(before: DateTime<Utc>) -> Result<[DateTime<Utc>; 3], OutOfRange> {
    Ok([
        floor(before, Bucket::Hour)?,
        floor(before, Bucket::Minute)?,
        before,
    ])
}

/// The smallest step of time PostgreSQL keeps: "at or before T" is
/// "before T plus this".
pub const TICK: TimeDelta = TimeDelta::microseconds(1);

/// Totals over the events recorded before `before`.
pub async fn totals_before(db: &PgPool, before: DateTime<Utc>) -> Result<Totals, TravelError> {
    let [hour, minute, bound] = bounds(before)?;
    let rows: Vec<TypeTotal> = sqlx::query_as(TYPE_TOTALS_BEFORE)
        .bind(hour)
        .bind(minute)
        .bind(bound)
        .fetch_all(db)
        .await?;
    let users: i64 = sqlx::query_scalar(USERS_BEFORE)
        .bind(before)
        .fetch_one(db)
        .await?;
    Ok(Totals {
        by_type: rows
            .into_iter()
            .map(|row| (row.event_type.clone(), row))
            .collect(),
        users,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum TravelError {
    #[error(transparent)]
    OutOfRange(#[from] OutOfRange),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<TravelError> for superclient::ApiError {
    fn from(error: TravelError) -> Self {
        match error {
            TravelError::OutOfRange(error) => error.into(),
            TravelError::Database(error) => error.into(),
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct AccountAt {
    pub account_id: i64,
    pub username: String,
    pub opened_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct LineRow {
    pub value: i64,
    pub position: i64,
    pub recorded_at: DateTime<Utc>,
    pub event_type: String,
    pub amount: Decimal,
    pub delta: Decimal,
    pub balance_after: Decimal,
    pub transaction_id: Option<i64>,
    pub note: String,
}

pub async fn account_at(
    db: &PgPool,
    account_id: i64,
    at: DateTime<Utc>,
) -> Result<Option<AccountAt>, sqlx::Error> {
    sqlx::query_as(ACCOUNT_AT)
        .bind(account_id)
        .bind(at)
        .fetch_optional(db)
        .await
}

/// The account's version and balance at `at` (an account opens at
/// version 0 with nothing in it).
pub async fn state_at(
    db: &PgPool,
    account_id: i64,
    at: DateTime<Utc>,
) -> Result<(i64, Decimal), sqlx::Error> {
    let last: Option<(i64, Decimal)> = sqlx::query_as(LAST_LINE_AT)
        .bind(account_id)
        .bind(at)
        .fetch_optional(db)
        .await?;
    Ok(last.unwrap_or((0, Decimal::ZERO)))
}

/// Lines from value `through` down, recorded by `at`, at most `limit`.
pub async fn lines_at(
    db: &PgPool,
    account_id: i64,
    through: i64,
    at: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<LineRow>, sqlx::Error> {
    sqlx::query_as(LINES_AT)
        .bind(account_id)
        .bind(through)
        .bind(at)
        .bind(limit)
        .fetch_all(db)
        .await
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct ChangedAccount {
    pub account_id: i64,
    pub username: String,
    pub change: Decimal,
    pub balance_from: Decimal,
}

pub async fn changed_accounts(
    db: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<ChangedAccount>, sqlx::Error> {
    sqlx::query_as(CHANGED_ACCOUNTS)
        .bind(from)
        .bind(to)
        .fetch_all(db)
        .await
}
