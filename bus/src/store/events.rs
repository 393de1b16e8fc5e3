//! The event log: `bus.events`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::{PgConnection, PgExecutor, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::StoreError;
use crate::protocol::{Consistency, ConsistencyValue, EventRecord, EventTypes};

/// Where the log ends: what the writer needs to know at start. Nothing
/// here grows with the log: the values of keys are looked up by index when
/// the writer meets a key it does not hold in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHead {
    pub head: i64,
    pub last_timestamp: Option<DateTime<Utc>>,
}

pub async fn load_head(executor: impl PgExecutor<'_>) -> Result<LogHead, sqlx::Error> {
    let newest: Option<(i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT position, recorded_at FROM bus.events ORDER BY position DESC LIMIT 1",
    )
    .fetch_optional(executor)
    .await?;
    Ok(LogHead {
        head: newest.map_or(0, |(position, _)| position),
        last_timestamp: newest.map(|(_, at)| at),
    })
}

/// The last value of each of `keys` that has an event (keys without one
/// are absent). One probe of the `(key, value)` index per key, however long
/// the log.
pub async fn last_values(
    executor: impl PgExecutor<'_>,
    keys: &[&str],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, Option<i64>)> = sqlx::query_as(LAST_VALUES_SQL)
        .bind(keys)
        .fetch_all(executor)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(key, value)| Some((key, value?)))
        .collect())
}

/// [`last_values`]' statement (`$1`: the keys), for checking its plan.
pub const LAST_VALUES_SQL: &str = "SELECT k.key,
        (SELECT e.consistency_value FROM bus.events e
          WHERE e.consistency_key = k.key
          ORDER BY e.consistency_value DESC LIMIT 1)
   FROM unnest($1::text[]) AS k(key)";

/// Appends `events` (positions and values already given) in one `COPY`:
/// atomic like one INSERT, and about half the server's work per row of an
/// `INSERT … SELECT FROM UNNEST(…)` (no arrays to decode, no expressions).
pub async fn append(
    connection: &mut PgConnection,
    events: &[EventRecord],
) -> Result<(), sqlx::Error> {
    let mut copy = connection
        .copy_in_raw(
            "COPY bus.events (position, event_id, event_type, consistency_key, consistency_value,
                 correlation_id, causation_id, recorded_at, data, published_by)
             FROM STDIN (FORMAT binary)",
        )
        .await?;
    copy.send(copy_binary(events)).await?;
    copy.finish().await?;
    Ok(())
}

/// PostgreSQL's binary COPY format for `events`.
fn copy_binary(events: &[EventRecord]) -> Vec<u8> {
    /// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
    const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;
    let mut out = Vec::with_capacity(19 + events.len() * 400);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes()); // flags
    out.extend_from_slice(&0i32.to_be_bytes()); // header extension
    let field = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    for event in events {
        let value = match event.consistency.value {
            ConsistencyValue::Explicit(value) => value,
            ConsistencyValue::Implicit => unreachable!("the writer gives every event its value"),
        };
        out.extend_from_slice(&10i16.to_be_bytes());
        field(&mut out, &event.position.to_be_bytes());
        field(&mut out, event.event_id.as_bytes());
        field(&mut out, event.event_type.as_bytes());
        field(&mut out, event.consistency.key.as_bytes());
        field(&mut out, &value.to_be_bytes());
        field(&mut out, event.correlation_id.as_bytes());
        match event.causation_id {
            Some(causation_id) => field(&mut out, causation_id.as_bytes()),
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        let micros = event.timestamp.timestamp_micros() - POSTGRES_EPOCH_MICROS;
        field(&mut out, &micros.to_be_bytes());
        field(&mut out, event.data.get().as_bytes());
        match &event.published_by {
            Some(published_by) => field(&mut out, published_by.as_bytes()),
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

/// Where an event id is stored: for answering resends as duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredId {
    pub position: i64,
    pub key: String,
    pub value: i64,
    pub timestamp: DateTime<Utc>,
}

pub async fn find_ids(
    connection: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, StoredId>, sqlx::Error> {
    let rows: Vec<(Uuid, i64, String, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT event_id, position, consistency_key, consistency_value, recorded_at
           FROM bus.events WHERE event_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, position, key, value, timestamp)| {
            (
                id,
                StoredId {
                    position,
                    key,
                    value,
                    timestamp,
                },
            )
        })
        .collect())
}

/// A slice of the log to read, in position order.
#[derive(Debug, Clone)]
pub struct Page<'a> {
    /// Only positions strictly greater.
    pub after: i64,
    /// Only positions at or below (the head when a query started).
    pub through: i64,
    pub types: &'a EventTypes,
    pub limit: i64,
}

/// One read: the events found, and how far the log has been covered.
#[derive(Debug)]
pub struct PageRead {
    pub events: Vec<EventRecord>,
    /// Every matching event at or below this position is in `events` or in
    /// an earlier page; the next read starts after it.
    pub covered_through: i64,
}

/// How many positions one read examines at most. Bounding the range keeps
/// each read's cost independent of how long the log is: without it, a
/// filter the index cannot return in position order (several types) would
/// make the database sort everything that matches after `after` for every
/// page.
const RANGE: i64 = 50_000;

/// The first window of a read, in positions per event asked for. A read
/// starts narrow and widens only while matches are scarce, so that no
/// window holds many more matches than the page takes. That keeps every
/// plan cheap, even the one PostgreSQL picks for a table it has no fresh
/// statistics of (a log that just grew by a million events): a bitmap scan
/// of the type index that reads and sorts every match of the window. With
/// 50,000-position windows that took 38 ms a page of 1,000; with the
/// window fitted, 1 ms.
const FIRST_WINDOW_PER_EVENT: i64 = 2;

const COLUMNS: &str = "position, event_id, event_type, consistency_key, consistency_value, \
                       correlation_id, causation_id, recorded_at, data::text, published_by";

type EventRow = (
    i64,
    Uuid,
    String,
    String,
    i64,
    Uuid,
    Option<Uuid>,
    DateTime<Utc>,
    String,
    Option<String>,
);

pub async fn read_page(db: &mut PgConnection, page: &Page<'_>) -> Result<PageRead, StoreError> {
    let mut events = Vec::new();
    let mut after = page.after;
    let mut window = page
        .limit
        .saturating_mul(FIRST_WINDOW_PER_EVENT)
        .clamp(1, RANGE);
    loop {
        let upper = page.through.min(after.saturating_add(window));
        let wanted = page.limit - events.len() as i64;
        events.extend(read_window(&mut *db, page.types, after, upper, wanted).await?);
        if events.len() as i64 == page.limit {
            let covered_through = events.last().map_or(upper, |last| last.position);
            return Ok(PageRead {
                events,
                covered_through,
            });
        }
        if upper >= page.through || upper - page.after >= RANGE {
            return Ok(PageRead {
                events,
                covered_through: upper,
            });
        }
        after = upper;
        window = window.saturating_mul(2).min(RANGE);
    }
}

/// The first `limit` events of `types` in the positions `(after, upper]`.
async fn read_window(
    executor: impl PgExecutor<'_>,
    types: &EventTypes,
    after: i64,
    upper: i64,
    limit: i64,
) -> Result<Vec<EventRecord>, StoreError> {
    let mut query = QueryBuilder::<Postgres>::new(format!(
        "SELECT {COLUMNS} FROM bus.events WHERE position > "
    ));
    query
        .push_bind(after)
        .push(" AND position <= ")
        .push_bind(upper);
    if let EventTypes::Only(types) = types {
        if types.len() == 1 {
            // Equality lets the (event_type, position) index return rows in order.
            query
                .push(" AND event_type = ")
                .push_bind(types.iter().next().cloned());
        } else {
            let types: Vec<&str> = types.iter().map(String::as_str).collect();
            query
                .push(" AND event_type = ANY(")
                .push_bind(types)
                .push(")");
        }
    }
    query.push(" ORDER BY position LIMIT ").push_bind(limit);
    let rows: Vec<EventRow> = query.build_query_as().fetch_all(executor).await?;
    rows.into_iter().map(into_record).collect()
}

/// A slice of one key's events, read by the `(key, value)` index: a key's
/// values grow with its positions, so value order is position order.
#[derive(Debug, Clone)]
pub struct KeyPage<'a> {
    pub key: &'a str,
    pub types: &'a EventTypes,
    /// Only values strictly greater (`-1`: from the key's first event).
    pub after_value: i64,
    /// Only events stored at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only positions at or below.
    pub through: i64,
    pub limit: i64,
}

/// The value of `key`'s last event at or below `position` (`-1`: none):
/// where a key query that starts after a position starts by value. The
/// index is read backwards from the key's newest event, so the cost is the
/// number of the key's events after `position`, never the key's history.
pub async fn key_value_at(
    executor: impl PgExecutor<'_>,
    key: &str,
    position: i64,
) -> Result<i64, StoreError> {
    let value: Option<i64> = sqlx::query_scalar(KEY_VALUE_AT_SQL)
        .bind(key)
        .bind(position)
        .fetch_optional(executor)
        .await?;
    Ok(value.unwrap_or(-1))
}

/// [`key_value_at`]'s statement (`$1`: the key, `$2`: the position), for
/// checking its plan.
pub const KEY_VALUE_AT_SQL: &str = "SELECT consistency_value FROM bus.events
  WHERE consistency_key = $1 AND position <= $2
  ORDER BY consistency_value DESC LIMIT 1";

/// The next events of one key, in value (and so position) order. Events of
/// other types are skipped by the read; they are the key's own, so few.
pub async fn read_key_page(
    executor: impl PgExecutor<'_>,
    page: &KeyPage<'_>,
) -> Result<Vec<EventRecord>, StoreError> {
    let rows: Vec<EventRow> = key_page_query("", page)
        .build_query_as()
        .fetch_all(executor)
        .await?;
    rows.into_iter().map(into_record).collect()
}

/// [`read_key_page`]'s statement after `prefix` (`EXPLAIN `, to check its plan).
pub fn key_page_query<'a>(prefix: &str, page: &KeyPage<'a>) -> QueryBuilder<'a, Postgres> {
    let mut query = QueryBuilder::<Postgres>::new(format!(
        "{prefix}SELECT {COLUMNS} FROM bus.events WHERE consistency_key = "
    ));
    query
        .push_bind(page.key)
        .push(" AND consistency_value > ")
        .push_bind(page.after_value)
        .push(" AND position <= ")
        .push_bind(page.through);
    if let Some(since) = page.since {
        query.push(" AND recorded_at >= ").push_bind(since);
    }
    if let EventTypes::Only(types) = page.types {
        let types: Vec<String> = types.iter().cloned().collect();
        query
            .push(" AND event_type = ANY(")
            .push_bind(types)
            .push(")");
    }
    query
        .push(" ORDER BY consistency_value LIMIT ")
        .push_bind(page.limit);
    query
}

/// Events at the given positions (for replays and restart), in position order.
pub async fn read_positions(
    pool: &PgPool,
    positions: &[i64],
) -> Result<Vec<EventRecord>, StoreError> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM bus.events WHERE position = ANY($1) ORDER BY position"
    ))
    .bind(positions)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(into_record).collect()
}

/// The first position at or below `head` stored at or after `at` (`None`:
/// nothing that late). Positions are dense and timestamps never decrease
/// along them, so a binary search by primary key finds it in about
/// log2(head) look-ups, however long the log.
pub async fn first_position_since(
    pool: &PgPool,
    at: DateTime<Utc>,
    head: i64,
) -> Result<Option<i64>, StoreError> {
    let (mut low, mut high) = (1, head + 1);
    while low < high {
        let middle = low + (high - low) / 2;
        let stored: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT recorded_at FROM bus.events WHERE position = $1")
                .bind(middle)
                .fetch_optional(pool)
                .await?;
        match stored {
            Some(stored) if stored < at => low = middle + 1,
            _ => high = middle,
        }
    }
    Ok((low <= head).then_some(low))
}

/// Every event of one unit of work, in position order (staff traces).
pub async fn by_correlation(
    pool: &PgPool,
    correlation_id: Uuid,
) -> Result<Vec<EventRecord>, StoreError> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM bus.events WHERE correlation_id = $1 ORDER BY position"
    ))
    .bind(correlation_id)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(into_record).collect()
}

/// The events of one type stored in `[from, to)`, newest first (staff browsing).
pub async fn by_type_and_time(
    pool: &PgPool,
    event_type: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<EventRecord>, StoreError> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM bus.events
          WHERE event_type = $1 AND recorded_at >= $2 AND recorded_at < $3
          ORDER BY position DESC LIMIT $4"
    ))
    .bind(event_type)
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(into_record).collect()
}

fn into_record(row: EventRow) -> Result<EventRecord, StoreError> {
    let (
        position,
        event_id,
        event_type,
        key,
        value,
        correlation_id,
        causation_id,
        timestamp,
        data,
        published_by,
    ) = row;
    let data = RawValue::from_string(data)
        .map_err(|source| StoreError::CorruptData { position, source })?;
    Ok(EventRecord {
        position,
        event_id,
        event_type,
        consistency: Consistency {
            key,
            value: ConsistencyValue::Explicit(value),
        },
        correlation_id,
        causation_id,
        timestamp,
        data,
        published_by,
    })
}
