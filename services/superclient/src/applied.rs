//! What the service's tables have applied: per consistency key, the value
//! and position of the last event applied, and how far a rebuild has read.
//!
//! An event at or below its key's applied value is skipped; a later one is
//! claimed and applied in the same transaction. Because a key's events
//! always arrive in order (delivery, rebuild and catch-up all read them
//! in position order), this makes applying exactly-once however often an
//! event is delivered, and safe with many instances on one schema: two
//! transactions claiming the same event serialise on the key's row.

use bus::protocol::{ConsistencyValue, EventRecord};
use sqlx::PgConnection;

/// Creates the framework's own tables in the service's schema.
pub async fn ensure_tables(db: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS applied_keys (
             key      text PRIMARY KEY,
             value    bigint NOT NULL,
             position bigint NOT NULL
         );
         CREATE TABLE IF NOT EXISTS rebuild_progress (
             singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
             rebuilt_through bigint NOT NULL
         );
         INSERT INTO rebuild_progress (rebuilt_through) VALUES (0) ON CONFLICT DO NOTHING;",
    )
    .execute(db)
    .await?;
    Ok(())
}

/// An event's consistency value (its index in its key's sequence).
pub fn value_of(event: &EventRecord) -> i64 {
    match event.consistency.value {
        ConsistencyValue::Explicit(value) => value,
        // A stored event always has its value; treat the impossible as new.
        ConsistencyValue::Implicit => i64::MAX,
    }
}

/// Claims `event` for this transaction: true when it was not applied yet
/// (apply it now), false when it was (skip it).
pub async fn claim(db: &mut PgConnection, event: &EventRecord) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "INSERT INTO applied_keys (key, value, position) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, position = EXCLUDED.position
             WHERE applied_keys.value < EXCLUDED.value
         RETURNING 1",
    )
    .bind(&event.consistency.key)
    .bind(value_of(event))
    .bind(event.position)
    .fetch_optional(db)
    .await?;
    Ok(claimed.is_some())
}

/// Whether `event` (or a later event of its key) has been applied.
pub async fn is_applied(db: &mut PgConnection, event: &EventRecord) -> Result<bool, sqlx::Error> {
    let value: Option<i64> = sqlx::query_scalar("SELECT value FROM applied_keys WHERE key = $1")
        .bind(&event.consistency.key)
        .fetch_optional(db)
        .await?;
    Ok(value.is_some_and(|value| value >= value_of(event)))
}

/// The position of the last applied event of `key` (0: none).
pub async fn key_position(db: &mut PgConnection, key: &str) -> Result<i64, sqlx::Error> {
    let position: Option<i64> =
        sqlx::query_scalar("SELECT position FROM applied_keys WHERE key = $1")
            .bind(key)
            .fetch_optional(db)
            .await?;
    Ok(position.unwrap_or(0))
}

/// Of `moved` (keys with the value the bus has for them), those whose
/// last applied value is below it: the keys to catch up on.
pub async fn behind(
    db: &mut PgConnection,
    moved: &[(String, Option<i64>)],
) -> Result<Vec<String>, sqlx::Error> {
    let mut stale = Vec::new();
    for (key, current) in moved {
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT value FROM applied_keys WHERE key = $1")
                .bind(key)
                .fetch_optional(&mut *db)
                .await?;
        if applied < *current && !stale.contains(key) {
            stale.push(key.clone());
        }
    }
    Ok(stale)
}

/// Every event of the service's types up to this position has been applied.
pub async fn rebuilt_through(db: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT rebuilt_through FROM rebuild_progress")
        .fetch_one(db)
        .await
}

pub async fn set_rebuilt_through(db: &mut PgConnection, position: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE rebuild_progress SET rebuilt_through = GREATEST(rebuilt_through, $1)")
        .bind(position)
        .execute(db)
        .await?;
    Ok(())
}
