//! The users service's queries.

use chrono::{DateTime, Utc};
use events::{AccountCreated, AccountCreationRequest, UserCreated};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct RequestRow {
    pub request_id: Uuid,
    pub username: String,
    pub requested_at: DateTime<Utc>,
    pub account_id: Option<i64>,
}

pub async fn insert_user(
    db: &mut PgConnection,
    user: &UserCreated,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO users (username, display_name, password_hash, created_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO NOTHING",
    )
    .bind(&user.username)
    .bind(&user.display_name)
    .bind(&user.password_hash)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}

/// A request; `AccountCreated` may have been applied before it (their keys
/// differ, so their order is not fixed), hence the upserts.
pub async fn record_request(
    db: &mut PgConnection,
    request: &AccountCreationRequest,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO account_requests (request_id, username, requested_at) VALUES ($1, $2, $3)
         ON CONFLICT (request_id) DO UPDATE SET requested_at = EXCLUDED.requested_at",
    )
    .bind(request.request_id)
    .bind(&request.username)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn record_account(
    db: &mut PgConnection,
    created: &AccountCreated,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO account_requests (request_id, username, requested_at, account_id, created_at)
         VALUES ($1, $2, $3, $4, $3)
         ON CONFLICT (request_id) DO UPDATE SET account_id = EXCLUDED.account_id,
             created_at = EXCLUDED.created_at",
    )
    .bind(created.request_id)
    .bind(&created.username)
    .bind(at)
    .bind(created.account_id)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn user(db: &PgPool, username: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as("SELECT username, display_name, password_hash FROM users WHERE username = $1")
        .bind(username)
        .fetch_optional(db)
        .await
}

pub async fn request(db: &PgPool, request_id: Uuid) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT request_id, username, requested_at, account_id FROM account_requests
         WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_optional(db)
    .await
}

/// A user's account requests, oldest first, after the request `after`
/// (keyset paging), at most `limit`.
pub async fn requests_of(
    db: &PgPool,
    username: &str,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<RequestRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT request_id, username, requested_at, account_id FROM account_requests r
         WHERE username = $1
           AND ($2::uuid IS NULL OR (requested_at, request_id) >
                (SELECT requested_at, request_id FROM account_requests WHERE request_id = $2))
         ORDER BY requested_at, request_id
         LIMIT $3",
    )
    .bind(username)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// How many accounts a user has asked for.
pub async fn request_count(db: &PgPool, username: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM account_requests WHERE username = $1")
        .bind(username)
        .fetch_one(db)
        .await
}

/// Which of `request_ids` are taken.
pub async fn taken_requests(db: &PgPool, request_ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT request_id FROM account_requests WHERE request_id = ANY($1)")
        .bind(request_ids)
        .fetch_all(db)
        .await
}
