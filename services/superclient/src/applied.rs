//! What the service's tables have applied: per consistency key, the value
//! and position of the last event applied, and how far a rebuild has read.
//!
//! Applying is gap-free and exactly-once: an event is applied only when its
//! value is exactly the next of its key; one at or below is skipped; one
//! further ahead means an event is missing, and the key is caught up from
//! the bus first (a key query, whose answer is complete, so a remaining
//! gap there is of event types this service does not apply).
//!
//! A transaction that claims keys locks their rows first, all at once and
//! in key order ([`lock`]), so that two transactions (two instances, or a
//! request and a batch) never wait for each other in a cycle: no deadlock.
//! The new values are written back with one statement ([`Claims::save`]).

use std::collections::{HashMap, HashSet};

use bus::protocol::{ConsistencyValue, EventRecord};
use sqlx::{Executor, PgConnection};

/// Creates the framework's own tables in the service's schema.
pub async fn ensure_tables(db: &mut PgConnection) -> Result<(), sqlx::Error> {
    // Through `Executor::execute` (not `raw_sql`), whose future is `Send`
    // for every lifetime: a service must be able to run in a spawned task.
    db.execute(
        "CREATE TABLE IF NOT EXISTS applied_keys (
             key      text PRIMARY KEY,
             -- -1: no event of the key applied yet.
             value    bigint NOT NULL,
             position bigint NOT NULL
         );
         CREATE TABLE IF NOT EXISTS rebuild_progress (
             singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
             rebuilt_through bigint NOT NULL
         );
         INSERT INTO rebuild_progress (rebuilt_through) VALUES (0) ON CONFLICT DO NOTHING;
         -- The event types the tables were built from.
         CREATE TABLE IF NOT EXISTS applied_types (event_type text PRIMARY KEY);
         -- Events staff skipped (they could not be applied): stepped over,
         -- here and in every later catch-up or rebuild.
         CREATE TABLE IF NOT EXISTS skipped_events (
             position   bigint PRIMARY KEY,
             key        text NOT NULL,
             value      bigint NOT NULL,
             event_type text NOT NULL,
             skipped_at timestamptz NOT NULL DEFAULT now()
         );",
    )
    .await?;
    Ok(())
}

/// The event types the tables were built from (empty for new tables).
pub async fn applied_types(db: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT event_type FROM applied_types ORDER BY event_type")
        .fetch_all(db)
        .await
}

pub async fn record_applied_types(
    db: &mut PgConnection,
    types: &[&str],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM applied_types")
        .execute(&mut *db)
        .await?;
    sqlx::query("INSERT INTO applied_types SELECT unnest($1::text[])")
        .bind(types)
        .execute(db)
        .await?;
    Ok(())
}

/// An event's consistency value (its index in its key's sequence).
pub fn value_of(event: &EventRecord) -> i64 {
    match event.consistency.value {
        ConsistencyValue::Explicit(value) => value,
        // A stored event always has its value; the impossible is never next.
        ConsistencyValue::Implicit => i64::MAX,
    }
}

/// The last event applied of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Last {
    /// `-1`: none yet.
    pub value: i64,
    pub position: i64,
}

impl Last {
    pub const NONE: Self = Self {
        value: -1,
        position: 0,
    };
}

/// What to do with an event, given what its key has applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Applied before (a redelivery, a rebuild reading it again): skip it.
    Applied,
    /// Exactly the key's next event: apply it.
    Next,
    /// Further ahead: an event of the key is missing here. The key must be
    /// caught up from the bus first; it is never applied over the gap.
    Gap { after_position: i64 },
}

/// Each key's last applied event, as one transaction sees and changes it.
#[derive(Debug, Default)]
pub struct Claims {
    last: HashMap<String, Last>,
    changed: Vec<String>,
}

/// Locks the rows of `keys` for this transaction, in key order, creating
/// the rows of keys never applied (also in key order, so that two
/// transactions creating the same keys wait for each other in one
/// direction only); keys in `known` have rows already. Call it once per
/// transaction, with every key the transaction will claim.
pub async fn lock(
    db: &mut PgConnection,
    keys: &[&str],
    known: Option<&HashSet<String>>,
) -> Result<Claims, sqlx::Error> {
    let mut keys: Vec<&str> = keys.to_vec();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(Claims::default());
    }
    let new: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|key| !known.is_some_and(|known| known.contains(*key)))
        .collect();
    if !new.is_empty() {
        sqlx::query(
            "INSERT INTO applied_keys (key, value, position)
             SELECT key, -1, 0 FROM unnest($1::text[]) AS k(key) ORDER BY key
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(&new)
        .execute(&mut *db)
        .await?;
    }
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT key, value, position FROM applied_keys WHERE key = ANY($1)
          ORDER BY key FOR UPDATE",
    )
    .bind(&keys)
    .fetch_all(db)
    .await?;
    Ok(Claims {
        last: rows
            .into_iter()
            .map(|(key, value, position)| (key, Last { value, position }))
            .collect(),
        changed: Vec::new(),
    })
}

/// The last applied event of each of `keys`, without locking (to find gaps
/// before a transaction opens).
pub async fn peek(
    db: &mut PgConnection,
    keys: &[&str],
) -> Result<HashMap<String, Last>, sqlx::Error> {
    let rows: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT key, value, position FROM applied_keys WHERE key = ANY($1)")
            .bind(keys)
            .fetch_all(db)
            .await?;
    let mut last: HashMap<String, Last> = rows
        .into_iter()
        .map(|(key, value, position)| (key, Last { value, position }))
        .collect();
    for key in keys {
        last.entry((*key).to_owned()).or_insert(Last::NONE);
    }
    Ok(last)
}

/// What `event` is to a key whose last applied event is `last`.
pub fn verdict(last: Last, event: &EventRecord) -> Verdict {
    let value = value_of(event);
    if value <= last.value {
        Verdict::Applied
    } else if value == last.value + 1 {
        Verdict::Next
    } else {
        Verdict::Gap {
            after_position: last.position,
        }
    }
}

impl Claims {
    pub fn last(&self, key: &str) -> Last {
        self.last.get(key).copied().unwrap_or(Last::NONE)
    }

    pub fn verdict(&self, event: &EventRecord) -> Verdict {
        verdict(self.last(&event.consistency.key), event)
    }

    /// Records `event` as its key's last applied event.
    pub fn claim(&mut self, event: &EventRecord) {
        let key = &event.consistency.key;
        debug_assert!(
            self.last.contains_key(key),
            "{key} is claimed without being locked"
        );
        self.last.insert(
            key.clone(),
            Last {
                value: value_of(event),
                position: event.position,
            },
        );
        self.changed.push(key.clone());
    }

    /// Writes the claimed keys back, with one statement. (The `ANY` beside
    /// the join lets PostgreSQL find the rows by the index; a join with an
    /// array alone is planned as a scan of the whole table, which grows
    /// with every key ever claimed.)
    pub async fn save(mut self, db: &mut PgConnection) -> Result<(), sqlx::Error> {
        self.changed.sort_unstable();
        self.changed.dedup();
        if self.changed.is_empty() {
            return Ok(());
        }
        let (mut values, mut positions) = (Vec::new(), Vec::new());
        for key in &self.changed {
            let last = self.last[key];
            values.push(last.value);
            positions.push(last.position);
        }
        sqlx::query(
            "UPDATE applied_keys AS a SET value = c.value, position = c.position
               FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS c(key, value, position)
              WHERE a.key = c.key AND a.key = ANY($1)",
        )
        .bind(&self.changed)
        .bind(&values)
        .bind(&positions)
        .execute(db)
        .await?;
        Ok(())
    }
}

/// Records events staff skipped.
pub async fn record_skipped(
    db: &mut PgConnection,
    events: &[&EventRecord],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    let keys: Vec<&str> = events.iter().map(|e| e.consistency.key.as_str()).collect();
    let values: Vec<i64> = events.iter().map(|e| value_of(e)).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    sqlx::query(
        "INSERT INTO skipped_events (position, key, value, event_type)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[])
         ON CONFLICT (position) DO NOTHING",
    )
    .bind(&positions)
    .bind(&keys)
    .bind(&values)
    .bind(&types)
    .execute(db)
    .await?;
    Ok(())
}

/// Which of `positions` staff skipped.
pub async fn skipped_among(
    db: &mut PgConnection,
    positions: &[i64],
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT position FROM skipped_events WHERE position = ANY($1)")
        .bind(positions)
        .fetch_all(db)
        .await
}

/// Every event of the service's types up to this position is applied, or
/// owed to the service by its subscription (which delivers it).
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

#[cfg(test)]
mod tests {
    use super::*;
    use bus::protocol::Consistency;
    use chrono::Utc;
    use serde_json::value::RawValue;
    use uuid::Uuid;

    fn event(value: i64, position: i64) -> EventRecord {
        EventRecord {
            position,
            event_id: Uuid::now_v7(),
            event_type: "ConfirmedCredit".into(),
            consistency: Consistency {
                key: "acc-7".into(),
                value: ConsistencyValue::Explicit(value),
            },
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            timestamp: Utc::now(),
            data: RawValue::from_string("{}".into()).unwrap(),
            published_by: None,
        }
    }

    #[test]
    fn only_exactly_the_next_value_is_applied() {
        let last = Last {
            value: 4,
            position: 40,
        };
        assert_eq!(verdict(last, &event(3, 30)), Verdict::Applied);
        assert_eq!(verdict(last, &event(4, 40)), Verdict::Applied);
        assert_eq!(verdict(last, &event(5, 50)), Verdict::Next);
        assert_eq!(
            verdict(last, &event(6, 60)),
            Verdict::Gap { after_position: 40 },
            "never over a missing event"
        );
        assert_eq!(verdict(Last::NONE, &event(0, 1)), Verdict::Next);
        assert_eq!(
            verdict(Last::NONE, &event(1, 2)),
            Verdict::Gap { after_position: 0 }
        );
    }
}
