//! The JSON the API answers: amounts as strings with two decimals, times
//! in RFC 3339.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use crate::store::{EventRow, time_travel::LineRow, time_travel::Totals};

fn money(amount: Decimal) -> String {
    events::format_money(amount)
}

/// An event in a list: `EventRow` of the API.
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub position: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub key: String,
    pub value: i64,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub recorded_at: DateTime<Utc>,
    pub amount: Option<String>,
    pub summary: String,
    /// The credential and connection that published it (null for events
    /// stored before the bus recorded it).
    pub published_by: Option<String>,
}

impl From<EventRow> for EventView {
    fn from(row: EventRow) -> Self {
        Self {
            position: row.position,
            event_id: row.event_id,
            event_type: row.event_type,
            key: row.key,
            value: row.value,
            correlation_id: row.correlation_id,
            causation_id: row.causation_id,
            recorded_at: row.recorded_at,
            amount: row.amount.map(money),
            summary: row.summary,
            published_by: row.published_by,
        }
    }
}

/// An event of a key's history, with the account's balance after it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyEventView {
    #[serde(flatten)]
    pub event: EventView,
    /// For `acc-N`: the balance after the event (`"0.00"` once opened);
    /// null for other keys.
    pub balance_after: Option<String>,
}

impl From<EventRow> for KeyEventView {
    fn from(row: EventRow) -> Self {
        Self {
            balance_after: row.balance_after.map(money),
            event: row.into(),
        }
    }
}

/// An event of a unit of work, with the time since the one before it and
/// since the first.
#[derive(Debug, Clone, Serialize)]
pub struct TraceEventView {
    #[serde(flatten)]
    pub event: EventView,
    pub since_previous_ms: Option<i64>,
    pub since_first_ms: i64,
}

impl TraceEventView {
    /// `rows` in position order.
    pub fn trace(rows: Vec<EventRow>) -> Vec<Self> {
        let first = rows.first().map(|row| row.recorded_at);
        let mut previous: Option<DateTime<Utc>> = None;
        rows.into_iter()
            .map(|row| {
                let at = row.recorded_at;
                let view = Self {
                    since_previous_ms: previous.map(|p| (at - p).num_milliseconds()),
                    since_first_ms: first.map_or(0, |f| (at - f).num_milliseconds()),
                    event: row.into(),
                };
                previous = Some(at);
                view
            })
            .collect()
    }
}

/// A node of a causation tree.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub event: EventView,
    pub children: Vec<Node>,
}

impl Node {
    /// The tree of `rows`: the root first, then its descendants, each
    /// after its cause (as `store::history::tree` gives them).
    pub fn tree(rows: Vec<EventRow>) -> Option<Self> {
        let mut rows = rows.into_iter();
        let root = rows.next()?;
        let mut children: HashMap<Uuid, Vec<EventRow>> = HashMap::new();
        for row in rows {
            if let Some(cause) = row.causation_id {
                children.entry(cause).or_default().push(row);
            }
        }
        Some(Self::build(root, &mut children))
    }

    fn build(row: EventRow, children: &mut HashMap<Uuid, Vec<EventRow>>) -> Self {
        let mine = children.remove(&row.event_id).unwrap_or_default();
        Self {
            children: mine
                .into_iter()
                .map(|child| Self::build(child, children))
                .collect(),
            event: row.into(),
        }
    }
}

/// The bank's totals at a time.
#[derive(Debug, Clone, Serialize)]
pub struct TotalsView {
    pub at: DateTime<Utc>,
    pub money_held: String,
    pub accounts: i64,
    pub users: i64,
    pub events: i64,
    pub deposits: String,
    pub withdrawals: String,
}

impl TotalsView {
    pub fn of(at: DateTime<Utc>, totals: &Totals) -> Self {
        Self {
            at,
            money_held: money(totals.money_held()),
            accounts: totals.accounts(),
            users: totals.users,
            events: totals.events(),
            deposits: money(totals.deposits()),
            withdrawals: money(totals.withdrawals()),
        }
    }
}

/// A line of an account's statement.
#[derive(Debug, Clone, Serialize)]
pub struct LineView {
    pub value: i64,
    pub position: i64,
    pub recorded_at: DateTime<Utc>,
    pub event_type: String,
    pub amount: String,
    pub delta: String,
    pub balance_after: String,
    pub transaction_id: Option<i64>,
    pub note: String,
}

impl From<LineRow> for LineView {
    fn from(line: LineRow) -> Self {
        Self {
            value: line.value,
            position: line.position,
            recorded_at: line.recorded_at,
            event_type: line.event_type,
            amount: money(line.amount),
            delta: money(line.delta),
            balance_after: money(line.balance_after),
            transaction_id: line.transaction_id,
            note: line.note,
        }
    }
}
