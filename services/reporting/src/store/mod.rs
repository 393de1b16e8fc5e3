//! The reporting service's queries.
//!
//! - [`write`]: applying an event.
//! - [`browse`]: the event browser's pages.
//! - [`history`]: one event, its causation tree, a key's events, a
//!   correlation's, freshness.
//! - [`time_travel`]: the bank and an account as of a time; diffs.
//! - [`reports`]: the charts' rows.
//!
//! The SQL of every page is a constant or built from constant fragments
//! with binds, never with input in it; each builder takes a `prefix` so
//! that tests can `EXPLAIN` exactly what the routes run.

pub mod browse;
pub mod history;
pub mod reports;
pub mod time_travel;
pub mod write;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use rust_decimal::Decimal;
use sqlx::FromRow;
use uuid::Uuid;

/// The columns of an [`EventRow`], of `events e`: a macro, so that
/// `concat!` can make whole queries of it at compile time.
macro_rules! event_columns {
    () => {
        "e.position, e.event_id, e.event_type, e.key, e.value, e.correlation_id, \
         e.causation_id, e.recorded_at, e.amount, e.summary, e.balance_after, e.published_by"
    };
}
pub(crate) use event_columns;

pub const EVENT_COLUMNS: &str = event_columns!();

/// An event as lists show it (without its payload).
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct EventRow {
    pub position: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub key: String,
    pub value: i64,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub recorded_at: DateTime<Utc>,
    pub amount: Option<Decimal>,
    pub summary: String,
    pub balance_after: Option<Decimal>,
    pub published_by: Option<String>,
}

/// A time bucket of the totals, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

impl Bucket {
    pub fn length(self) -> TimeDelta {
        match self {
            Self::Minute => TimeDelta::minutes(1),
            Self::Hour => TimeDelta::hours(1),
            Self::Day => TimeDelta::days(1),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }
}

/// A time too far from the epoch for the buckets (beyond the year 2262).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the time {0} is out of the range this service handles")]
pub struct OutOfRange(pub DateTime<Utc>);

impl From<OutOfRange> for superclient::HandlerError {
    fn from(error: OutOfRange) -> Self {
        Self::Other(error.to_string())
    }
}

impl From<OutOfRange> for superclient::ApiError {
    fn from(error: OutOfRange) -> Self {
        Self::invalid(error.to_string())
    }
}

/// The start of the bucket `at` falls in. Computed here rather than with
/// PostgreSQL's `date_trunc`, which follows the session's time zone.
pub fn floor(at: DateTime<Utc>, bucket: Bucket) -> Result<DateTime<Utc>, OutOfRange> {
    at.duration_trunc(bucket.length())
        .map_err(|_| OutOfRange(at))
}
