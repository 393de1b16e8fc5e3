//! One event and what it belongs to: its payload, its causes and effects,
//! its key's sequence, its unit of work; and how far the tables are.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use super::{EventRow, event_columns};

pub const BY_POSITION: &str = concat!(
    "SELECT ",
    event_columns!(),
    ", e.data FROM events e WHERE e.position = $1"
);

pub const BY_EVENT_ID: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events e WHERE e.event_id = $1"
);

/// The events caused by any of `$1`, in position order, at most `$2`.
pub const CAUSED_BY: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events e WHERE e.causation_id = ANY($1) ORDER BY e.position LIMIT $2"
);

/// A key's events after value `$2`, in value order, at most `$3`.
pub const KEY_EVENTS: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events e WHERE e.key = $1 AND e.value > $2 ORDER BY e.value LIMIT $3"
);

/// A correlation's events in position order, at most `$2`.
pub const CORRELATION: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events e WHERE e.correlation_id = $1 ORDER BY e.position LIMIT $2"
);

pub const FRESHNESS: &str =
    "SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1";

/// How far up a causation chain the tree walks to find its root.
pub const MAX_DEPTH: usize = 20;
/// The most events a tree holds.
pub const MAX_NODES: usize = 200;

/// An event with its payload.
#[derive(Debug, Clone, FromRow)]
pub struct EventDetail {
    #[sqlx(flatten)]
    pub row: EventRow,
    pub data: serde_json::Value,
}

pub async fn by_position(db: &PgPool, position: i64) -> Result<Option<EventDetail>, sqlx::Error> {
    sqlx::query_as(BY_POSITION)
        .bind(position)
        .fetch_optional(db)
        .await
}

pub async fn by_event_id(db: &PgPool, event_id: Uuid) -> Result<Option<EventRow>, sqlx::Error> {
    sqlx::query_as(BY_EVENT_ID)
        .bind(event_id)
        .fetch_optional(db)
        .await
}

pub async fn caused_by(
    db: &PgPool,
    causes: &[Uuid],
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(CAUSED_BY)
        .bind(causes)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// The causation tree `event` belongs to: its root (up at most
/// [`MAX_DEPTH`] causes) and, level by level, what descends from it (at
/// most [`MAX_NODES`] events in all, the root first).
pub async fn tree(db: &PgPool, event: EventRow) -> Result<Vec<EventRow>, sqlx::Error> {
    let mut root = event;
    for _ in 0..MAX_DEPTH {
        let Some(cause) = root.causation_id else {
            break;
        };
        match by_event_id(db, cause).await? {
            Some(found) => root = found,
            // A cause this service does not apply (none today): the tree
            // starts at the oldest event it knows.
            None => break,
        }
    }
    let mut seen: HashSet<Uuid> = HashSet::from([root.event_id]);
    let mut frontier = vec![root.event_id];
    let mut nodes = vec![root];
    while !frontier.is_empty() && nodes.len() < MAX_NODES {
        let room = (MAX_NODES - nodes.len()) as i64;
        let level = caused_by(db, &frontier, room).await?;
        frontier = Vec::new();
        for child in level {
            // Event ids are unique and causes come first, so there are no
            // cycles; the check only keeps a damaged log from looping.
            if seen.insert(child.event_id) {
                frontier.push(child.event_id);
                nodes.push(child);
            }
        }
    }
    Ok(nodes)
}

pub async fn key_events(
    db: &PgPool,
    key: &str,
    after_value: i64,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(KEY_EVENTS)
        .bind(key)
        .bind(after_value)
        .bind(limit)
        .fetch_all(db)
        .await
}

pub async fn correlation(
    db: &PgPool,
    correlation_id: Uuid,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(CORRELATION)
        .bind(correlation_id)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// The newest event applied: its position and time.
pub async fn freshness(db: &PgPool) -> Result<Option<(i64, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as(FRESHNESS).fetch_optional(db).await
}
