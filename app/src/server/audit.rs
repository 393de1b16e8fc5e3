//! The record of what staff did beyond looking (`web.staff_audit`): every
//! export, replay and skip, with who, when, what and what came of it.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// One recorded action.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub staff: String,
    pub action: String,
    pub subject: String,
    pub note: String,
    pub outcome: String,
    pub at: DateTime<Utc>,
}

/// What a staff member did, before its outcome is known.
pub struct Action<'a> {
    pub staff: &'a str,
    /// `export`, `replay` or `skip`.
    pub action: &'static str,
    pub subject: &'a str,
    pub note: &'a str,
}

pub async fn record(pool: &PgPool, action: &Action<'_>, outcome: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO web.staff_audit (staff, action, subject, note, outcome)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(action.staff)
    .bind(action.action)
    .bind(action.subject)
    .bind(action.note)
    .bind(outcome)
    .execute(pool)
    .await?;
    Ok(())
}

/// The newest entries, before the entry `before` when given.
pub async fn recent(
    pool: &PgPool,
    before: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<AuditEntry>> {
    sqlx::query_as(
        "SELECT id, staff, action, subject, note, outcome, at FROM web.staff_audit
          WHERE id < $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(pool)
    .await
}
