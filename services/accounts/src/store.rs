//! The accounts service's queries.

use chrono::{DateTime, NaiveDate, Utc};
use events::account_key;
use events::{AccountCreated, Amount, ConfirmedCredit, ConfirmedDebit};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgPool};
use superclient::{EventRecord, HandlerError, consistency_value};
use uuid::Uuid;

use crate::transfer::AccountState;

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct AccountRow {
    pub account_id: i64,
    pub username: String,
    #[serde(serialize_with = "money")]
    pub balance: Decimal,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct EntryRow {
    pub version: i64,
    pub recorded_at: DateTime<Utc>,
    pub description: String,
    pub kind: String,
    #[serde(serialize_with = "money")]
    pub amount: Decimal,
    #[serde(rename = "balance", serialize_with = "money")]
    pub balance_after: Decimal,
    pub transaction_id: Option<i64>,
}

fn money<S: serde::Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&events::format_money(*value))
}

/// A credit or a debit, as the statement books it.
pub struct Movement<'a> {
    pub account_id: i64,
    pub kind: &'static str,
    pub amount: Amount,
    pub note: &'a str,
    pub transaction_id: Option<i64>,
}

impl<'a> Movement<'a> {
    pub fn credit(credit: &'a ConfirmedCredit) -> Self {
        Self {
            account_id: credit.account_id,
            kind: "credit",
            amount: credit.amount,
            note: &credit.note,
            transaction_id: credit.transaction_id,
        }
    }

    pub fn debit(debit: &'a ConfirmedDebit) -> Self {
        Self {
            account_id: debit.account_id,
            kind: "debit",
            amount: debit.amount,
            note: &debit.note,
            transaction_id: debit.transaction_id,
        }
    }
}

pub async fn create_account(
    db: &mut PgConnection,
    created: &AccountCreated,
    event: &EventRecord,
) -> Result<(), HandlerError> {
    sqlx::query(
        "INSERT INTO accounts (account_id, username, request_id, balance, created_at)
         VALUES ($1, $2, $3, 0, $4)",
    )
    .bind(created.account_id)
    .bind(&created.username)
    .bind(created.request_id)
    .bind(event.timestamp)
    .execute(&mut *db)
    .await?;
    // Ids handed out elsewhere (another instance, or before a rebuild) are
    // not offered again.
    sqlx::query("SELECT setval('account_ids', GREATEST($1, (SELECT last_value FROM account_ids)))")
        .bind(created.account_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Books a credit or a debit: the balance, the version, the statement line.
pub async fn book(
    db: &mut PgConnection,
    movement: &Movement<'_>,
    event: &EventRecord,
) -> Result<(), HandlerError> {
    let signed = match movement.kind {
        "debit" => -movement.amount.value(),
        _ => movement.amount.value(),
    };
    let balance: Option<Decimal> = sqlx::query_scalar(
        "UPDATE accounts SET balance = balance + $2 WHERE account_id = $1 RETURNING balance",
    )
    .bind(movement.account_id)
    .bind(signed)
    .fetch_optional(&mut *db)
    .await?;
    let balance = balance.ok_or_else(|| {
        HandlerError::Other(format!(
            "{} for account {}, which does not exist",
            event.event_type, movement.account_id
        ))
    })?;
    sqlx::query(
        "INSERT INTO statement_entries (account_id, version, position, recorded_at, kind, amount,
             description, transaction_id, balance_after)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(movement.account_id)
    .bind(consistency_value(event))
    .bind(event.position)
    .bind(event.timestamp)
    .bind(movement.kind)
    .bind(movement.amount.value())
    .bind(movement.note)
    .bind(movement.transaction_id)
    .bind(balance)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn next_account_id(db: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT nextval('account_ids')")
        .fetch_one(db)
        .await
}

pub async fn account_of_request(
    db: &mut PgConnection,
    request_id: Uuid,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT account_id FROM accounts WHERE request_id = $1")
        .bind(request_id)
        .fetch_optional(db)
        .await
}

/// An account as a decision reads it: its balance, if it exists here, and
/// the version of its key as claimed (`None`: nothing of it yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    pub account: Option<AccountState>,
    pub version: Option<i64>,
}

/// The columns of an account, its version being its key's claimed value.
const ACCOUNT: &str = "a.account_id, a.username, a.balance, k.value AS version, a.created_at
    FROM accounts a JOIN applied_keys k ON k.key = 'acc-' || a.account_id";

pub async fn state(db: &mut PgConnection, account_id: i64) -> Result<Observed, sqlx::Error> {
    let (balance, version): (Option<Decimal>, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT balance FROM accounts WHERE account_id = $1),
                (SELECT value FROM applied_keys WHERE key = $2 AND value >= 0)",
    )
    .bind(account_id)
    .bind(account_key(account_id))
    .fetch_one(db)
    .await?;
    Ok(Observed {
        account: balance
            .zip(version)
            .map(|(balance, version)| AccountState { balance, version }),
        version,
    })
}

pub async fn account(db: &PgPool, account_id: i64) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {ACCOUNT} WHERE a.account_id = $1"))
        .bind(account_id)
        .fetch_optional(db)
        .await
}

/// A user's accounts by id, after `after`, at most `limit`.
pub async fn accounts_of(
    db: &PgPool,
    username: &str,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<AccountRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ACCOUNT} WHERE a.username = $1 AND a.account_id > coalesce($2, 0)
          ORDER BY a.account_id LIMIT $3"
    ))
    .bind(username)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The statement entry an event of the account booked.
pub async fn entry(
    db: &PgPool,
    account_id: i64,
    version: i64,
) -> Result<Option<EntryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT version, recorded_at, description, kind, amount, balance_after, transaction_id
         FROM statement_entries WHERE account_id = $1 AND version = $2",
    )
    .bind(account_id)
    .bind(version)
    .fetch_optional(db)
    .await
}

/// Which statement lines to show.
pub struct StatementQuery {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub before_version: Option<i64>,
    pub limit: i64,
}

/// Newest first.
pub async fn statement(
    db: &PgPool,
    account_id: i64,
    query: &StatementQuery,
) -> Result<Vec<EntryRow>, sqlx::Error> {
    let start = query
        .from
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    let end = query
        .to
        .and_then(|d| d.succ_opt())
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    sqlx::query_as(
        "SELECT version, recorded_at, description, kind, amount, balance_after, transaction_id
         FROM statement_entries
         WHERE account_id = $1
           AND ($2::timestamptz IS NULL OR recorded_at >= $2)
           AND ($3::timestamptz IS NULL OR recorded_at < $3)
           AND ($4::bigint IS NULL OR version < $4)
         ORDER BY version DESC
         LIMIT $5",
    )
    .bind(account_id)
    .bind(start)
    .bind(end)
    .bind(query.before_version)
    .bind(query.limit)
    .fetch_all(db)
    .await
}
