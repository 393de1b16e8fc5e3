//! Durable consume-mode state: `bus.subscriptions` and the tables beside it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::StoreError;
use crate::protocol::{EventTypes, format_timestamp};

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
    /// Parked and blocked positions above `acked_through`: never read
    /// through the cursor again.
    pub settled_above: HashSet<i64>,
    /// Every parked event, by the key it blocks.
    pub blocking: HashMap<String, i64>,
    /// Failed deliveries of events still owed.
    pub failures: HashMap<i64, u32>,
    /// Events to deliver outside the cursor (replayed, skipped and
    /// released ones), in position order.
    pub replays: Vec<StoredReplay>,
}

/// An event a staff decision released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReplay {
    pub position: i64,
    pub key: String,
    /// Staff skipped it: delivered marked skipped.
    pub skipped: bool,
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
    let settled_above: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM bus.parked WHERE client_type = $1 AND position > $2
         UNION ALL
         SELECT position FROM bus.blocked WHERE client_type = $1 AND position > $2",
    )
    .bind(client_type)
    .bind(acked_through)
    .fetch_all(pool)
    .await?;
    let blocking: Vec<(String, i64)> = sqlx::query_as(
        "SELECT e.consistency_key, min(p.position) FROM bus.parked p JOIN bus.events e USING (position)
          WHERE p.client_type = $1 GROUP BY e.consistency_key",
    )
    .bind(client_type)
    .fetch_all(pool)
    .await?;
    let failures: Vec<(i64, i32)> = sqlx::query_as(
        "SELECT position, failures FROM bus.delivery_failures WHERE client_type = $1",
    )
    .bind(client_type)
    .fetch_all(pool)
    .await?;
    let replays: Vec<(i64, String, bool)> = sqlx::query_as(
        "SELECT r.position, e.consistency_key, r.skipped
           FROM bus.replays r JOIN bus.events e USING (position)
          WHERE r.client_type = $1 ORDER BY r.position",
    )
    .bind(client_type)
    .fetch_all(pool)
    .await?;
    Ok(Some(StoredSubscription {
        client_type: client_type.to_owned(),
        acked_through,
        owed_after: owed_after.into_iter().collect(),
        acked_above: acked_above.into_iter().collect(),
        settled_above: settled_above.into_iter().collect(),
        blocking: blocking.into_iter().collect(),
        failures: failures
            .into_iter()
            .map(|(position, failures)| (position, failures.max(0) as u32))
            .collect(),
        replays: replays
            .into_iter()
            .map(|(position, key, skipped)| StoredReplay {
                position,
                key,
                skipped,
            })
            .collect(),
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
    /// `(position, parked position)`: held behind a parked event.
    pub blocked: Vec<(i64, i64)>,
    /// Replayed or released events no longer to deliver outside the cursor
    /// (acknowledged, parked, or blocked again).
    pub replays_done: Vec<i64>,
}

impl Progress {
    /// Takes in what happened after this progress (which failed to save),
    /// so that nothing of either is lost. Every field is carried.
    pub fn absorb(&mut self, later: Progress) {
        let Progress {
            acked_through,
            acked,
            failed,
            parked,
            blocked,
            replays_done,
        } = later;
        self.acked_through = self.acked_through.max(acked_through);
        self.acked.extend(acked);
        self.failed.extend(failed);
        self.parked.extend(parked);
        self.blocked.extend(blocked);
        self.replays_done.extend(replays_done);
    }

    /// Each position once, the latest record winning: one statement may
    /// not change a row twice.
    fn deduplicated(&self) -> Progress {
        fn last_per_position<T: Clone>(rows: &[(i64, T)]) -> Vec<(i64, T)> {
            let mut latest: HashMap<i64, T> = HashMap::new();
            for (position, row) in rows {
                latest.insert(*position, row.clone());
            }
            latest.into_iter().collect()
        }
        let triples = |rows: &[(i64, u32, String)]| {
            let pairs: Vec<(i64, (u32, String))> = rows
                .iter()
                .map(|(position, count, reason)| (*position, (*count, reason.clone())))
                .collect();
            last_per_position(&pairs)
                .into_iter()
                .map(|(position, (count, reason))| (position, count, reason))
                .collect()
        };
        let mut acked = self.acked.clone();
        acked.sort_unstable();
        acked.dedup();
        let mut replays_done = self.replays_done.clone();
        replays_done.sort_unstable();
        replays_done.dedup();
        Progress {
            acked_through: self.acked_through,
            acked,
            failed: triples(&self.failed),
            parked: triples(&self.parked),
            blocked: last_per_position(&self.blocked),
            replays_done,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.acked.is_empty()
            && self.failed.is_empty()
            && self.parked.is_empty()
            && self.blocked.is_empty()
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
    let progress = &progress.deduplicated();
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
    if !progress.blocked.is_empty() {
        let (positions, parked): (Vec<i64>, Vec<i64>) = progress.blocked.iter().copied().unzip();
        sqlx::query(
            "INSERT INTO bus.blocked (client_type, position, parked_position)
             SELECT $1, * FROM unnest($2::bigint[], $3::bigint[])
             ON CONFLICT (client_type, position) DO UPDATE SET parked_position = excluded.parked_position",
        )
        .bind(client_type)
        .bind(&positions)
        .bind(&parked)
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

/// How far behind each client type is, for staff and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct SubscriptionLag {
    pub client_type: String,
    pub acked_through: i64,
    /// Owed events not yet acknowledged (nor parked, nor blocked).
    pub unacknowledged: i64,
    /// When the oldest of those was stored (`None`: there is none).
    #[serde(serialize_with = "optional_timestamp")]
    pub oldest_unacknowledged_at: Option<DateTime<Utc>>,
    pub parked: i64,
    /// Events held behind parked ones.
    pub blocked: i64,
}

/// A timestamp as the wire gives them (RFC 3339, UTC, microseconds), or null.
fn optional_timestamp<S: serde::Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serializer.serialize_str(&format_timestamp(*at)),
        None => serializer.serialize_none(),
    }
}

/// Each subscription's lag, as saved: acks reach the database within a
/// second or so of arriving, so a just-acked event may still count.
pub async fn lag(pool: &PgPool) -> Result<Vec<SubscriptionLag>, StoreError> {
    // One pass over the owed events above the watermark gives both their
    // count and the oldest one's time.
    let lag = sqlx::query_as(
        "SELECT s.client_type, s.acked_through, owed.unacknowledged,
                owed.oldest AS oldest_unacknowledged_at,
                (SELECT count(*) FROM bus.parked p WHERE p.client_type = s.client_type) AS parked,
                (SELECT count(*) FROM bus.blocked b WHERE b.client_type = s.client_type) AS blocked
           FROM bus.subscriptions s
           CROSS JOIN LATERAL (
                SELECT count(*) AS unacknowledged, min(e.recorded_at) AS oldest
                  FROM bus.events e
                 WHERE e.position > s.acked_through
                   AND EXISTS (SELECT 1 FROM bus.subscription_types t
                                WHERE t.client_type = s.client_type
                                  AND (t.event_type = '*' OR t.event_type = e.event_type)
                                  AND e.position > t.owed_after)
                   AND NOT EXISTS (SELECT 1 FROM bus.acks a
                                    WHERE a.client_type = s.client_type AND a.position = e.position)
                   AND NOT EXISTS (SELECT 1 FROM bus.parked p
                                    WHERE p.client_type = s.client_type AND p.position = e.position)
                   AND NOT EXISTS (SELECT 1 FROM bus.blocked b
                                    WHERE b.client_type = s.client_type AND b.position = e.position)
           ) owed
          ORDER BY s.client_type",
    )
    .fetch_all(pool)
    .await?;
    Ok(lag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(base: i64) -> Progress {
        Progress {
            acked_through: base,
            acked: vec![base + 1],
            failed: vec![(base + 2, 1, "no".into())],
            parked: vec![(base + 3, 5, "bad".into())],
            blocked: vec![(base + 4, base + 3)],
            replays_done: vec![base + 5],
        }
    }

    #[test]
    fn a_failed_save_absorbs_everything_that_came_after() {
        let mut earlier = full(10);
        earlier.absorb(full(20));
        assert_eq!(earlier.acked_through, 20);
        assert_eq!(earlier.acked, vec![11, 21]);
        assert_eq!(earlier.failed.len(), 2);
        assert_eq!(earlier.parked.len(), 2);
        assert_eq!(earlier.blocked, vec![(14, 13), (24, 23)]);
        assert_eq!(earlier.replays_done, vec![15, 25]);
    }

    #[test]
    fn a_position_recorded_twice_is_saved_once_with_its_latest_record() {
        let progress = Progress {
            acked: vec![3, 3],
            failed: vec![(7, 1, "first".into()), (7, 2, "second".into())],
            blocked: vec![(9, 1), (9, 2)],
            ..Progress::default()
        };
        let once = progress.deduplicated();
        assert_eq!(once.acked, vec![3]);
        assert_eq!(once.failed, vec![(7, 2, "second".into())]);
        assert_eq!(once.blocked, vec![(9, 2)]);
    }
}
