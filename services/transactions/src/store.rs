//! The transactions service's queries.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgPool};

#[derive(Debug, Clone, FromRow)]
pub struct TransferRow {
    pub transaction_id: i64,
    pub from_account_id: i64,
    pub to_account_id: i64,
    pub amount: Decimal,
    pub reference: String,
    pub username: String,
    pub status: String,
    pub reason: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "transaction_id, from_account_id, to_account_id, amount, reference, username,
     status, reason, requested_at, decided_at";

pub async fn next_transaction_id(db: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT nextval('transaction_ids')")
        .fetch_one(db)
        .await
}

pub async fn owner(db: &PgPool, account_id: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT username FROM account_owners WHERE account_id = $1")
        .bind(account_id)
        .fetch_optional(db)
        .await
}

pub async fn transfer(
    db: &PgPool,
    transaction_id: i64,
) -> Result<Option<TransferRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM transfers WHERE transaction_id = $1"
    ))
    .bind(transaction_id)
    .fetch_optional(db)
    .await
}

/// Whose transfers to list.
pub enum Party {
    User(String),
    Account(i64),
}

/// Newest first, before `before` (a transaction id) when given.
pub async fn transfers(
    db: &PgPool,
    party: &Party,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<TransferRow>, sqlx::Error> {
    let filter = match party {
        Party::User(_) => "username = $1",
        Party::Account(_) => "(from_account_id = $1 OR to_account_id = $1)",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM transfers WHERE {filter}
           AND ($2::bigint IS NULL OR transaction_id < $2)
         ORDER BY transaction_id DESC LIMIT $3"
    );
    let query = sqlx::query_as(&sql);
    let query = match party {
        Party::User(username) => query.bind(username.clone()),
        Party::Account(account_id) => query.bind(*account_id),
    };
    query.bind(before).bind(limit).fetch_all(db).await
}
