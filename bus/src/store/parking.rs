//! Parked events and the staff decisions on them: `bus.parked`,
//! `bus.blocked` and `bus.parking_decisions`.
//!
//! A parked event blocks its key for its client type: the key's later
//! events wait in `bus.blocked`. Staff either replay the parked event (it
//! is delivered again, first) or skip it (it is not); either way the
//! events held behind it are released, in order, and the decision is
//! recorded.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::StoreError;

/// The most held positions one listing names per parked event.
const LISTED_BLOCKED: i64 = 1000;

/// A parked event, for staff.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct ParkedEvent {
    pub client_type: String,
    pub position: i64,
    pub event_type: String,
    pub consistency_key: String,
    pub deliveries: i32,
    pub reason: String,
    pub parked_at: DateTime<Utc>,
    /// How many of the key's later events wait behind it.
    pub blocked_count: i64,
    /// The first of them (at most 1,000), in position order.
    pub blocked_positions: Vec<i64>,
}

/// Where a listing of parked events continues: after this client type and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedCursor {
    pub client_type: String,
    pub position: i64,
}

/// Parked events by client type and position, after `after`, at most `limit`.
pub async fn list_parked(
    pool: &PgPool,
    client_type: Option<&str>,
    after: Option<&ParkedCursor>,
    limit: i64,
) -> Result<Vec<ParkedEvent>, StoreError> {
    let parked = sqlx::query_as(
        "SELECT p.client_type, p.position, e.event_type, e.consistency_key, p.deliveries, p.reason,
                p.parked_at,
                (SELECT count(*) FROM bus.blocked b
                  WHERE b.client_type = p.client_type AND b.parked_position = p.position)
                  AS blocked_count,
                ARRAY(SELECT b.position FROM bus.blocked b
                       WHERE b.client_type = p.client_type AND b.parked_position = p.position
                       ORDER BY b.position LIMIT $5) AS blocked_positions
           FROM bus.parked p JOIN bus.events e USING (position)
          WHERE ($1::text IS NULL OR p.client_type = $1)
            AND ($2::text IS NULL OR (p.client_type, p.position) > ($2, $3))
          ORDER BY p.client_type, p.position
          LIMIT $4",
    )
    .bind(client_type)
    .bind(after.map(|cursor| cursor.client_type.as_str()))
    .bind(after.map_or(0, |cursor| cursor.position))
    .bind(limit)
    .bind(LISTED_BLOCKED)
    .fetch_all(pool)
    .await?;
    Ok(parked)
}

/// What staff decided about a parked event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Deliver it again, then the events held behind it.
    Replay,
    /// Do not deliver it for processing: it is delivered once more,
    /// marked skipped, for consumers to step over; then the events held
    /// behind it.
    Skip,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replay => "replay",
            Self::Skip => "skip",
        }
    }
}

/// A decision with who took it and why.
#[derive(Debug, Clone)]
pub struct DecisionRecord {
    pub decision: Decision,
    pub decided_by: String,
    pub note: String,
}

/// What a decision released: the key, and the positions to deliver
/// (outside the cursor, in this order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    pub key: String,
    pub positions: Vec<i64>,
    /// The skipped event, delivered marked skipped so that a consumer that
    /// applies its keys gap-free steps over it knowingly.
    pub skipped: Option<i64>,
}

/// Applies a decision on the parked event at `position`, in one
/// transaction: it is no longer parked; it (replayed, or marked skipped)
/// and the events held behind it become replays, in order; and the
/// decision is recorded. `None` when that event is not parked for
/// `client_type`.
pub async fn decide(
    pool: &PgPool,
    client_type: &str,
    position: i64,
    record: &DecisionRecord,
) -> Result<Option<Released>, StoreError> {
    let mut transaction = pool.begin().await?;
    let removed = sqlx::query("DELETE FROM bus.parked WHERE client_type = $1 AND position = $2")
        .bind(client_type)
        .bind(position)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
    if removed == 0 {
        return Ok(None);
    }
    let key: String =
        sqlx::query_scalar("SELECT consistency_key FROM bus.events WHERE position = $1")
            .bind(position)
            .fetch_one(&mut *transaction)
            .await?;
    let mut held: Vec<i64> = sqlx::query_scalar(
        "DELETE FROM bus.blocked WHERE client_type = $1 AND parked_position = $2 RETURNING position",
    )
    .bind(client_type)
    .bind(position)
    .fetch_all(&mut *transaction)
    .await?;
    held.sort_unstable();
    let released = held.len();
    let skipped = (record.decision == Decision::Skip).then_some(position);
    let mut positions = Vec::with_capacity(held.len() + 1);
    positions.push(position);
    positions.extend(held);
    sqlx::query(
        "INSERT INTO bus.replays (client_type, position, skipped)
         SELECT $1, p, p = $3 FROM unnest($2::bigint[]) AS p
         ON CONFLICT (client_type, position) DO UPDATE SET skipped = excluded.skipped",
    )
    .bind(client_type)
    .bind(&positions)
    .bind(skipped.unwrap_or(0))
    .execute(&mut *transaction)
    .await?;
    sqlx::query("DELETE FROM bus.delivery_failures WHERE client_type = $1 AND position = $2")
        .bind(client_type)
        .bind(position)
        .execute(&mut *transaction)
        .await?;
    sqlx::query(
        "INSERT INTO bus.parking_decisions (client_type, position, decision, decided_by, note, released)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(client_type)
    .bind(position)
    .bind(record.decision.as_str())
    .bind(&record.decided_by)
    .bind(&record.note)
    .bind(i32::try_from(released).unwrap_or(i32::MAX))
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(Some(Released {
        key,
        positions,
        skipped,
    }))
}

/// When a decision's commit failed uncertainly: what it released, if it
/// committed after all (the event is no longer parked and a decision is
/// recorded), read back from the store.
pub async fn after_decision(
    pool: &PgPool,
    client_type: &str,
    position: i64,
) -> Result<Option<Released>, StoreError> {
    let decided: Option<(String, String)> = sqlx::query_as(
        "SELECT d.decision, e.consistency_key
           FROM bus.parking_decisions d JOIN bus.events e USING (position)
          WHERE d.client_type = $1 AND d.position = $2
            AND NOT EXISTS (SELECT 1 FROM bus.parked p
                             WHERE p.client_type = $1 AND p.position = $2)
          ORDER BY d.id DESC LIMIT 1",
    )
    .bind(client_type)
    .bind(position)
    .fetch_optional(pool)
    .await?;
    let Some((decision, key)) = decided else {
        return Ok(None);
    };
    let positions: Vec<i64> = sqlx::query_scalar(
        "SELECT r.position FROM bus.replays r JOIN bus.events e USING (position)
          WHERE r.client_type = $1 AND e.consistency_key = $2 AND r.position >= $3
          ORDER BY r.position",
    )
    .bind(client_type)
    .bind(&key)
    .bind(position)
    .fetch_all(pool)
    .await?;
    Ok(Some(Released {
        key,
        positions,
        skipped: (decision == Decision::Skip.as_str()).then_some(position),
    }))
}

/// Events blocked behind an event that is no longer parked (a decision
/// whose outcome the bus did not learn before it stopped) are released:
/// nothing stays blocked behind nothing.
pub async fn release_orphans(pool: &PgPool, client_type: &str) -> Result<u64, StoreError> {
    let mut transaction = pool.begin().await?;
    let orphans: Vec<i64> = sqlx::query_scalar(
        "DELETE FROM bus.blocked b
          WHERE b.client_type = $1
            AND NOT EXISTS (SELECT 1 FROM bus.parked p
                             WHERE p.client_type = $1 AND p.position = b.parked_position)
          RETURNING b.position",
    )
    .bind(client_type)
    .fetch_all(&mut *transaction)
    .await?;
    sqlx::query(
        "INSERT INTO bus.replays (client_type, position) SELECT $1, unnest($2::bigint[])
         ON CONFLICT DO NOTHING",
    )
    .bind(client_type)
    .bind(&orphans)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(orphans.len() as u64)
}
