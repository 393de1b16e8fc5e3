//! Writing what an event means into the tables, inside the framework's
//! transaction for it.
//!
//! Rows several keys share (a user, the totals of a minute) are upserted,
//! and within one event always in the same order (user, account, transfer,
//! event, accounts, hour, minute, rejections). Two transactions applying
//! batches of different events can still take those rows in opposite
//! orders; a deadlock that follows is a transient error the framework runs
//! the transaction again after (`superclient::transient`).

use chrono::{DateTime, Utc};
use events::PendingTransaction;
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection};
use superclient::{EventRecord, HandlerError, consistency_value};

use super::{Bucket, floor};
use crate::summary;

/// What applying an event works out beyond its envelope.
#[derive(Debug, Clone, Default)]
pub struct Derived {
    pub amount: Option<Decimal>,
    pub transaction_id: Option<i64>,
    pub balance_after: Option<Decimal>,
    pub summary: String,
    /// The accounts the event concerns, distinct.
    pub accounts: Vec<i64>,
    /// A deposit or a withdrawal: money that is no transfer's.
    pub cash: bool,
}

impl Derived {
    pub fn plain(summary: String) -> Self {
        Self {
            summary,
            ..Self::default()
        }
    }
}

/// A credit (`delta` = `amount`) or a debit (`delta` = −`amount`).
pub struct Line<'a> {
    pub account_id: i64,
    pub amount: Decimal,
    pub delta: Decimal,
    pub transaction_id: Option<i64>,
    pub note: &'a str,
}

/// A transfer as its `PendingTransaction` asked for it.
#[derive(Debug, Clone, FromRow)]
pub struct TransferFacts {
    pub transaction_id: i64,
    pub from_account_id: i64,
    pub to_account_id: i64,
    pub amount: Decimal,
    pub reference: String,
    pub username: String,
}

impl TransferFacts {
    pub fn of(pending: &PendingTransaction) -> Self {
        Self {
            transaction_id: pending.transaction_id,
            from_account_id: pending.from_account_id,
            to_account_id: pending.to_account_id,
            amount: pending.amount.value(),
            reference: pending.reference.clone(),
            username: pending.username.clone(),
        }
    }

    pub fn summary(&self) -> summary::Transfer<'_> {
        summary::Transfer {
            transaction_id: self.transaction_id,
            from: self.from_account_id,
            to: self.to_account_id,
            amount: self.amount,
            reference: &self.reference,
            username: &self.username,
        }
    }
}

/// Keeps a user's earliest event by position: keys are applied in any
/// order, so a later event may arrive first.
pub async fn see_user(
    db: &mut PgConnection,
    username: &str,
    event: &EventRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO users (username, first_seen_at, first_position) VALUES ($1, $2, $3)
         ON CONFLICT (username) DO UPDATE
            SET first_seen_at = excluded.first_seen_at, first_position = excluded.first_position
          WHERE users.first_position > excluded.first_position",
    )
    .bind(username)
    .bind(event.timestamp)
    .bind(event.position)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn open_account(
    db: &mut PgConnection,
    account_id: i64,
    username: &str,
    event: &EventRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO accounts (account_id, username, balance, version, opened_at, opened_position)
         VALUES ($1, $2, 0, $3, $4, $5)",
    )
    .bind(account_id)
    .bind(username)
    .bind(consistency_value(event))
    .bind(event.timestamp)
    .bind(event.position)
    .execute(db)
    .await?;
    Ok(())
}

/// Moves the account's balance and records the line; the balance after it.
pub async fn book_line(
    db: &mut PgConnection,
    event: &EventRecord,
    line: &Line<'_>,
) -> Result<Decimal, HandlerError> {
    let value = consistency_value(event);
    let balance: Option<Decimal> = sqlx::query_scalar(
        "UPDATE accounts SET balance = balance + $2, version = $3 WHERE account_id = $1
         RETURNING balance",
    )
    .bind(line.account_id)
    .bind(line.delta)
    .bind(value)
    .fetch_optional(&mut *db)
    .await?;
    // Its AccountCreated is value 0 of the same key: applied before, always.
    let balance = balance.ok_or_else(|| {
        HandlerError::Other(format!(
            "money on account {}, which is unknown",
            line.account_id
        ))
    })?;
    sqlx::query(
        "INSERT INTO account_lines (account_id, value, position, recorded_at, event_type, amount,
             delta, balance_after, transaction_id, note)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(line.account_id)
    .bind(value)
    .bind(event.position)
    .bind(event.timestamp)
    .bind(&event.event_type)
    .bind(line.amount)
    .bind(line.delta)
    .bind(balance)
    .bind(line.transaction_id)
    .bind(line.note)
    .execute(db)
    .await?;
    Ok(balance)
}

pub async fn insert_transfer(
    db: &mut PgConnection,
    pending: &PendingTransaction,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO transfers (transaction_id, from_account_id, to_account_id, amount, reference,
             username, status, requested_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)",
    )
    .bind(pending.transaction_id)
    .bind(pending.from_account_id)
    .bind(pending.to_account_id)
    .bind(pending.amount.value())
    .bind(&pending.reference)
    .bind(&pending.username)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}

/// Records the decision; the transfer it decides (its `PendingTransaction`
/// is value 0 of the same key, so it is known).
pub async fn decide_transfer(
    db: &mut PgConnection,
    transaction_id: i64,
    status: &str,
    reason: Option<&str>,
    event: &EventRecord,
) -> Result<TransferFacts, HandlerError> {
    sqlx::query_as(
        "UPDATE transfers SET status = $2, reason = $3, decided_at = $4 WHERE transaction_id = $1
         RETURNING transaction_id, from_account_id, to_account_id, amount, reference, username",
    )
    .bind(transaction_id)
    .bind(status)
    .bind(reason)
    .bind(event.timestamp)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| {
        HandlerError::Other(format!(
            "a decision on transfer {transaction_id}, which is unknown"
        ))
    })
}

pub async fn count_rejection(
    db: &mut PgConnection,
    reason: &str,
    amount: Decimal,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO rejection_totals (reason, transfers, amount) VALUES ($1, 1, $2)
         ON CONFLICT (reason) DO UPDATE
            SET transfers = rejection_totals.transfers + 1,
                amount = rejection_totals.amount + excluded.amount",
    )
    .bind(reason)
    .bind(amount)
    .execute(db)
    .await?;
    Ok(())
}

const ADD_TO_HOUR: &str = "INSERT INTO hour_totals AS t
         (hour, event_type, events, amount, cash_events, cash_amount)
     VALUES ($1, $2, 1, $3, $4, $5)
     ON CONFLICT (hour, event_type) DO UPDATE
        SET events = t.events + 1, amount = t.amount + excluded.amount,
            cash_events = t.cash_events + excluded.cash_events,
            cash_amount = t.cash_amount + excluded.cash_amount";

const ADD_TO_MINUTE: &str = "INSERT INTO minute_totals AS t
         (minute, event_type, events, amount, cash_events, cash_amount)
     VALUES ($1, $2, 1, $3, $4, $5)
     ON CONFLICT (minute, event_type) DO UPDATE
        SET events = t.events + 1, amount = t.amount + excluded.amount,
            cash_events = t.cash_events + excluded.cash_events,
            cash_amount = t.cash_amount + excluded.cash_amount";

/// The event's row, the accounts it concerns, and its share of the totals.
pub async fn insert_event(
    db: &mut PgConnection,
    event: &EventRecord,
    derived: &Derived,
) -> Result<(), HandlerError> {
    sqlx::query(
        "INSERT INTO events (position, event_id, event_type, key, value, correlation_id,
             causation_id, recorded_at, amount, transaction_id, balance_after, summary,
             published_by, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb)",
    )
    .bind(event.position)
    .bind(event.event_id)
    .bind(&event.event_type)
    .bind(&event.consistency.key)
    .bind(consistency_value(event))
    .bind(event.correlation_id)
    .bind(event.causation_id)
    .bind(event.timestamp)
    .bind(derived.amount)
    .bind(derived.transaction_id)
    .bind(derived.balance_after)
    .bind(&derived.summary)
    .bind(&event.published_by)
    .bind(event.data.get())
    .execute(&mut *db)
    .await?;
    sqlx::query(
        "INSERT INTO event_accounts (account_id, position)
         SELECT account_id, $2 FROM unnest($1::bigint[]) AS a(account_id)",
    )
    .bind(&derived.accounts)
    .bind(event.position)
    .execute(&mut *db)
    .await?;
    let amount = derived.amount.unwrap_or_default();
    let (cash_events, cash_amount) = if derived.cash {
        (1i64, amount)
    } else {
        (0, Decimal::ZERO)
    };
    for (sql, bucket) in [(ADD_TO_HOUR, Bucket::Hour), (ADD_TO_MINUTE, Bucket::Minute)] {
        sqlx::query(sql)
            .bind(floor(event.timestamp, bucket)?)
            .bind(&event.event_type)
            .bind(amount)
            .bind(cash_events)
            .bind(cash_amount)
            .execute(&mut *db)
            .await?;
    }
    Ok(())
}
