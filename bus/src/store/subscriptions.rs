//! Durable consume-mode state: `bus.subscriptions` and the tables beside it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::StoreError;
use crate::protocol::EventTypes;

/// A subscription as stored: enough to resume delivery after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    pub client_type: String,
    /// Every owed event at or below is acknowledged or parked.
    pub acked_through: i64,
    /// Each type it takes (`*`: all) and the position after which it is owed.
    pub owed_after: HashMap<String, i64>,
    /// Acknowledged positions above `acked_through`.
    pub acked_above: HashSet<i64>,
    /// Parked positions above `acked_through`.
    pub parked_above: HashSet<i64>,
    /// Failed deliveries of events still owed.
    pub failures: HashMap<i64, u32>,
    /// Parked events staff asked to deliver again.
    pub replays: Vec<i64>,
}

/// Creates the subscription on a client type's first registration, and adds
/// the types it did not take before, each owed after `head`. Returns the
/// subscription as stored.
pub async fn register(
    pool: &PgPool,
    client_type: &str,
    types: &EventTypes,
    head: i64,
) -> Result<StoredSubscription, StoreError> {
    let mut transaction = pool.begin().await?;
    sqlx::query(
        "INSERT INTO bus.subscriptions (client_type, acked_through) VALUES ($1, $2)
         ON CONFLICT (client_type) DO NOTHING",
    )
    .bind(client_type)
    .bind(head)
    .execute(&mut *transaction)
    .await?;
    sqlx::query(
        "INSERT INTO bus.subscription_types (client_type, event_type, owed_after)
         SELECT $1, unnest($2::text[]), $3
         ON CONFLICT (client_type, event_type) DO NOTHING",
    )
    .bind(client_type)
    .bind(types.to_list())
    .bind(head)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    load(pool, client_type)
        .await?
        .ok_or_else(|| StoreError::Database(sqlx::Error::RowNotFound))
}

pub async fn load(
    pool: &PgPool,
    client_type: &str,
) -> Result<Option<StoredSubscription>, StoreError> {
    let Some(acked_through) = sqlx::query_scalar::<_, i64>(
        "SELECT acked_through FROM bus.subscriptions WHERE client_type = $1",
    )
    .bind(client_type)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let owed_after: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_type, owed_after FROM bus.subscription_types WHERE client_type = $1",
    )
    .bind(client_type)
    .fetch_all(pool)
    .await?;
    let acked_above: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM bus.acks WHERE client_type = $1 AND position > $2",
    )
    .bind(client_type)
    .bind(acked_through)
    .fetch_all(pool)
    .await?;
    let parked_above: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM bus.parked WHERE client_type = $1 AND position > $2",
    )
    .bind(client_type)
    .bind(acked_through)
    .fetch_all(pool)
    .await?;
    let failures: Vec<(i64, i32)> = sqlx::query_as(
        "SELECT position, failures FROM bus.delivery_failures WHERE client_type = $1",
    )
    .bind(client_type)
    .fetch_all(pool)
    .await?;
    let replays: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM bus.replays WHERE client_type = $1 ORDER BY position",
    )
    .bind(client_type)
    .fetch_all(pool)
    .await?;
    Ok(Some(StoredSubscription {
        client_type: client_type.to_owned(),
        acked_through,
        owed_after: owed_after.into_iter().collect(),
        acked_above: acked_above.into_iter().collect(),
        parked_above: parked_above.into_iter().collect(),
        failures: failures
            .into_iter()
            .map(|(position, failures)| (position, failures.max(0) as u32))
            .collect(),
        replays,
    }))
}

/// Makes `event_types` owed only after `position` (never earlier than
/// stored).
pub async fn raise_owed_after(
    pool: &PgPool,
    client_type: &str,
    event_types: &[String],
    position: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE bus.subscription_types SET owed_after = GREATEST(owed_after, $3)
          WHERE client_type = $1 AND event_type = ANY($2)",
    )
    .bind(client_type)
    .bind(event_types)
    .bind(position)
    .execute(pool)
    .await?;
    Ok(())
}

/// What a subscription did since its last save.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Progress {
    pub acked_through: i64,
    pub acked: Vec<i64>,
    /// `(position, failures so far, last reason)`.
    pub failed: Vec<(i64, u32, String)>,
    /// `(position, deliveries, reason)`.
    pub parked: Vec<(i64, u32, String)>,
    /// Replayed events that are now acknowledged.
    pub replays_done: Vec<i64>,
}

impl Progress {
    pub fn is_empty(&self) -> bool {
        self.acked.is_empty()
            && self.failed.is_empty()
            && self.parked.is_empty()
            && self.replays_done.is_empty()
    }
}

/// Saves `progress` in one transaction: after it commits, a restart of the
/// bus delivers none of the acknowledged events again.
pub async fn save_progress(
    pool: &PgPool,
    client_type: &str,
    progress: &Progress,
) -> Result<(), StoreError> {
    let mut transaction = pool.begin().await?;
    sqlx::query("UPDATE bus.subscriptions SET acked_through = $2 WHERE client_type = $1")
        .bind(client_type)
        .bind(progress.acked_through)
        .execute(&mut *transaction)
        .await?;
    let acked_above: Vec<i64> = progress
        .acked
        .iter()
        .copied()
        .filter(|&position| position > progress.acked_through)
        .collect();
    if !acked_above.is_empty() {
        sqlx::query(
            "INSERT INTO bus.acks (client_type, position) SELECT $1, unnest($2::bigint[])
             ON CONFLICT DO NOTHING",
        )
        .bind(client_type)
        .bind(&acked_above)
        .execute(&mut *transaction)
        .await?;
    }
    sqlx::query("DELETE FROM bus.acks WHERE client_type = $1 AND position <= $2")
        .bind(client_type)
        .bind(progress.acked_through)
        .execute(&mut *transaction)
        .await?;
    if !progress.failed.is_empty() {
        let (positions, counts, reasons) = split3(&progress.failed);
        sqlx::query(
            "INSERT INTO bus.delivery_failures (client_type, position, failures, last_reason)
             SELECT $1, * FROM unnest($2::bigint[], $3::int[], $4::text[])
             ON CONFLICT (client_type, position)
             DO UPDATE SET failures = excluded.failures, last_reason = excluded.last_reason",
        )
        .bind(client_type)
        .bind(&positions)
        .bind(&counts)
        .bind(&reasons)
        .execute(&mut *transaction)
        .await?;
    }
    if !progress.parked.is_empty() {
        let (positions, counts, reasons) = split3(&progress.parked);
        sqlx::query(
            "INSERT INTO bus.parked (client_type, position, deliveries, reason)
             SELECT $1, * FROM unnest($2::bigint[], $3::int[], $4::text[])
             ON CONFLICT (client_type, position)
             DO UPDATE SET deliveries = excluded.deliveries, reason = excluded.reason, parked_at = now()",
        )
        .bind(client_type)
        .bind(&positions)
        .bind(&counts)
        .bind(&reasons)
        .execute(&mut *transaction)
        .await?;
    }
    let finished: Vec<i64> = progress
        .acked
        .iter()
        .chain(progress.parked.iter().map(|(position, _, _)| position))
        .copied()
        .collect();
    if !finished.is_empty() {
        sqlx::query(
            "DELETE FROM bus.delivery_failures WHERE client_type = $1 AND position = ANY($2)",
        )
        .bind(client_type)
        .bind(&finished)
        .execute(&mut *transaction)
        .await?;
    }
    if !progress.replays_done.is_empty() {
        sqlx::query("DELETE FROM bus.replays WHERE client_type = $1 AND position = ANY($2)")
            .bind(client_type)
            .bind(&progress.replays_done)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    Ok(())
}

fn split3(rows: &[(i64, u32, String)]) -> (Vec<i64>, Vec<i32>, Vec<&str>) {
    let positions = rows.iter().map(|(position, _, _)| *position).collect();
    let counts = rows
        .iter()
        .map(|(_, count, _)| i32::try_from(*count).unwrap_or(i32::MAX))
        .collect();
    let reasons = rows.iter().map(|(_, _, reason)| reason.as_str()).collect();
    (positions, counts, reasons)
}

/// A parked event, for staff.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParkedEvent {
    pub client_type: String,
    pub position: i64,
    pub event_type: String,
    pub consistency_key: String,
    pub deliveries: i32,
    pub reason: String,
    pub parked_at: DateTime<Utc>,
}

pub async fn list_parked(
    pool: &PgPool,
    client_type: Option<&str>,
) -> Result<Vec<ParkedEvent>, StoreError> {
    type Row = (String, i64, String, String, i32, String, DateTime<Utc>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT p.client_type, p.position, e.event_type, e.consistency_key, p.deliveries, p.reason, p.parked_at
           FROM bus.parked p JOIN bus.events e USING (position)
          WHERE $1::text IS NULL OR p.client_type = $1
          ORDER BY p.parked_at, p.position",
    )
    .bind(client_type)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                client_type,
                position,
                event_type,
                consistency_key,
                deliveries,
                reason,
                parked_at,
            )| {
                ParkedEvent {
                    client_type,
                    position,
                    event_type,
                    consistency_key,
                    deliveries,
                    reason,
                    parked_at,
                }
            },
        )
        .collect())
}

/// Moves a parked event to the replays. False when it is not parked.
pub async fn request_replay(
    pool: &PgPool,
    client_type: &str,
    position: i64,
) -> Result<bool, StoreError> {
    let mut transaction = pool.begin().await?;
    let removed = sqlx::query("DELETE FROM bus.parked WHERE client_type = $1 AND position = $2")
        .bind(client_type)
        .bind(position)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
    if removed == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO bus.replays (client_type, position) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(client_type)
    .bind(position)
    .execute(&mut *transaction)
    .await?;
    sqlx::query("DELETE FROM bus.delivery_failures WHERE client_type = $1 AND position = $2")
        .bind(client_type)
        .bind(position)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(true)
}

/// How far behind each client type is, for staff and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubscriptionLag {
    pub client_type: String,
    pub acked_through: i64,
    /// Owed events not yet acknowledged (nor parked).
    pub unacknowledged: i64,
    pub parked: i64,
}

pub async fn lag(pool: &PgPool) -> Result<Vec<SubscriptionLag>, StoreError> {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT s.client_type, s.acked_through,
                (SELECT count(*) FROM bus.events e
                  WHERE e.position > s.acked_through
                    AND EXISTS (SELECT 1 FROM bus.subscription_types t
                                 WHERE t.client_type = s.client_type
                                   AND (t.event_type = '*' OR t.event_type = e.event_type)
                                   AND e.position > t.owed_after)
                    AND NOT EXISTS (SELECT 1 FROM bus.acks a
                                     WHERE a.client_type = s.client_type AND a.position = e.position)
                    AND NOT EXISTS (SELECT 1 FROM bus.parked p
                                     WHERE p.client_type = s.client_type AND p.position = e.position)),
                (SELECT count(*) FROM bus.parked p WHERE p.client_type = s.client_type)
           FROM bus.subscriptions s ORDER BY s.client_type",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(client_type, acked_through, unacknowledged, parked)| SubscriptionLag {
                client_type,
                acked_through,
                unacknowledged,
                parked,
            },
        )
        .collect())
}
