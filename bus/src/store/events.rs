//! The event log: `bus.events`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::StoreError;
use crate::protocol::{Consistency, ConsistencyValue, EventRecord, EventTypes};

/// What the writer needs to know at start: where the log ends, the last
/// value of every key, and the newest timestamp.
pub struct LogState {
    pub head: i64,
    pub last_timestamp: Option<DateTime<Utc>>,
    pub key_values: HashMap<String, i64>,
}

pub async fn load_state(pool: &PgPool) -> Result<LogState, StoreError> {
    let (head, last_timestamp): (Option<i64>, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT position, recorded_at FROM bus.events ORDER BY position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?
    .map(|(position, at): (i64, DateTime<Utc>)| (Some(position), Some(at)))
    .unwrap_or((None, None));
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT consistency_key, max(consistency_value) FROM bus.events GROUP BY consistency_key",
    )
    .fetch_all(pool)
    .await?;
    Ok(LogState {
        head: head.unwrap_or(0),
        last_timestamp,
        key_values: rows.into_iter().collect(),
    })
}

/// Appends `events` (positions and values already given) in one statement.
pub async fn append(
    connection: &mut PgConnection,
    events: &[EventRecord],
) -> Result<(), sqlx::Error> {
    let mut positions = Vec::with_capacity(events.len());
    let mut ids = Vec::with_capacity(events.len());
    let mut types = Vec::with_capacity(events.len());
    let mut keys = Vec::with_capacity(events.len());
    let mut values = Vec::with_capacity(events.len());
    let mut correlations = Vec::with_capacity(events.len());
    let mut causations = Vec::with_capacity(events.len());
    let mut times = Vec::with_capacity(events.len());
    let mut data = Vec::with_capacity(events.len());
    for event in events {
        positions.push(event.position);
        ids.push(event.event_id);
        types.push(event.event_type.as_str());
        keys.push(event.consistency.key.as_str());
        values.push(match event.consistency.value {
            ConsistencyValue::Explicit(value) => value,
            ConsistencyValue::Implicit => unreachable!("the writer gives every event its value"),
        });
        correlations.push(event.correlation_id);
        causations.push(event.causation_id);
        times.push(event.timestamp);
        data.push(event.data.get());
    }
    sqlx::query(
        "INSERT INTO bus.events (position, event_id, event_type, consistency_key,
             consistency_value, correlation_id, causation_id, recorded_at, data)
         SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::text[],
             $5::bigint[], $6::uuid[], $7::uuid[], $8::timestamptz[], $9::json[])",
    )
    .bind(&positions)
    .bind(&ids)
    .bind(&types)
    .bind(&keys)
    .bind(&values)
    .bind(&correlations)
    .bind(&causations)
    .bind(&times)
    .bind(&data)
    .execute(connection)
    .await?;
    Ok(())
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
#[derive(Debug, Clone, Default)]
pub struct Page<'a> {
    /// Only positions strictly greater.
    pub after: i64,
    /// Only positions at or below (the head when a query started).
    pub through: Option<i64>,
    pub types: Option<&'a EventTypes>,
    pub key: Option<&'a str>,
    pub limit: i64,
}

const COLUMNS: &str = "position, event_id, event_type, consistency_key, consistency_value, \
                       correlation_id, causation_id, recorded_at, data::text";

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
);

pub async fn read_page(pool: &PgPool, page: &Page<'_>) -> Result<Vec<EventRecord>, StoreError> {
    let mut query = QueryBuilder::<Postgres>::new(format!(
        "SELECT {COLUMNS} FROM bus.events WHERE position > "
    ));
    query.push_bind(page.after);
    if let Some(through) = page.through {
        query.push(" AND position <= ").push_bind(through);
    }
    if let Some(EventTypes::Only(types)) = page.types {
        let types: Vec<&str> = types.iter().map(String::as_str).collect();
        query
            .push(" AND event_type = ANY(")
            .push_bind(types)
            .push(")");
    }
    if let Some(key) = page.key {
        query.push(" AND consistency_key = ").push_bind(key);
    }
    query
        .push(" ORDER BY position LIMIT ")
        .push_bind(page.limit);
    let rows: Vec<EventRow> = query.build_query_as().fetch_all(pool).await?;
    rows.into_iter().map(into_record).collect()
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

/// The first position stored at or after `at` (`None`: nothing that late).
pub async fn first_position_since(
    pool: &PgPool,
    at: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT position FROM bus.events WHERE recorded_at >= $1
          ORDER BY recorded_at, position LIMIT 1",
    )
    .bind(at)
    .fetch_optional(pool)
    .await?)
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
    let (position, event_id, event_type, key, value, correlation_id, causation_id, timestamp, data) =
        row;
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
    })
}
