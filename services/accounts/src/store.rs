//! The accounts service's queries.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use events::account_key;
use events::{Amount, ConfirmedCredit, ConfirmedDebit};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgPool};
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observed {
    pub account: Option<AccountState>,
    pub version: Option<i64>,
}

impl From<AccountState> for Observed {
    fn from(account: AccountState) -> Self {
        Self {
            version: Some(account.version),
            account: Some(account),
        }
    }
}

/// The columns of an account, its version being its key's claimed value.
const ACCOUNT: &str = "a.account_id, a.username, a.balance, k.value AS version, a.created_at
    FROM accounts a JOIN applied_keys k ON k.key = 'acc-' || a.account_id";

/// The accounts `account_ids` as decisions read them, with one query.
pub async fn states(
    db: &mut PgConnection,
    account_ids: &[i64],
) -> Result<HashMap<i64, Observed>, sqlx::Error> {
    let keys: Vec<String> = account_ids.iter().map(|id| account_key(*id)).collect();
    // One index lookup per account in each table, whatever the planner
    // would guess of a join (`applied_keys` also holds every command
    // handled, so it is far larger than the accounts).
    let rows: Vec<(i64, Option<Decimal>, Option<i64>)> = sqlx::query_as(
        "SELECT w.account_id,
                (SELECT balance FROM accounts WHERE account_id = w.account_id),
                (SELECT value FROM applied_keys WHERE key = w.key AND value >= 0)
           FROM unnest($1::bigint[], $2::text[]) AS w(account_id, key)",
    )
    .bind(account_ids)
    .bind(&keys)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(account_id, balance, version)| {
            let account = balance
                .zip(version)
                .map(|(balance, version)| AccountState { balance, version });
            (account_id, Observed { account, version })
        })
        .collect())
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
