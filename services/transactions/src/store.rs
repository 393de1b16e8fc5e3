//! The transactions service's queries.

use chrono::{DateTime, Utc};
use events::{AccountCreated, PendingTransaction};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection, PgPool};
use superclient::HandlerError;

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

pub async fn record_owner(
    db: &mut PgConnection,
    created: &AccountCreated,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO account_owners (account_id, username) VALUES ($1, $2)")
        .bind(created.account_id)
        .bind(&created.username)
        .execute(db)
        .await?;
    Ok(())
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
    .execute(&mut *db)
    .await?;
    // Ids taken elsewhere (another instance, or before a rebuild) are not offered again.
    sqlx::query(
        "SELECT setval('transaction_ids', GREATEST($1, (SELECT last_value FROM transaction_ids)))",
    )
    .bind(pending.transaction_id)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn decide(
    db: &mut PgConnection,
    transaction_id: i64,
    status: &str,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let updated = sqlx::query(
        "UPDATE transfers SET status = $2, reason = $3, decided_at = $4 WHERE transaction_id = $1",
    )
    .bind(transaction_id)
    .bind(status)
    .bind(reason)
    .bind(at)
    .execute(db)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(HandlerError::Other(format!(
            "a decision on transfer {transaction_id}, which is unknown"
        )));
    }
    Ok(())
}

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
