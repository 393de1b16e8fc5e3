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

/// Records `action` with its outcome so far; answers the entry's id, for
/// [`finish`]. Recorded before it is carried out, so that nothing staff
/// do goes unrecorded, even when its outcome is never learnt.
pub async fn record(pool: &PgPool, action: &Action<'_>, outcome: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO web.staff_audit (staff, action, subject, note, outcome)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(action.staff)
    .bind(action.action)
    .bind(action.subject)
    .bind(action.note)
    .bind(outcome)
    .fetch_one(pool)
    .await
}

/// What came of the recorded action `id`.
pub async fn finish(pool: &PgPool, id: i64, outcome: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE web.staff_audit SET outcome = $2 WHERE id = $1")
        .bind(id)
        .bind(outcome)
        .execute(pool)
        .await?;
    Ok(())
}

/// The newest `limit` entries.
pub async fn recent(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<AuditEntry>> {
    sqlx::query_as(
        "SELECT id, staff, action, subject, note, outcome, at FROM web.staff_audit
          ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}
