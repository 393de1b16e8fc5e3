//! Deciding what becomes of each request of a group: stored (with its
//! positions and values), answered without storing, or looked up first.

use std::{
    collections::{HashMap, HashSet},
    ops::Range,
};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    AppendRequest,
    receipts::{duplicate_receipt, inconsistent_receipt},
};
use crate::{
    protocol::{Consistency, ConsistencyValue, EventRecord, Receipt},
    store::events::StoredId,
};

/// What becomes of one request in a group.
pub(super) enum Plan {
    /// Stored at `records[range]`.
    Accepted(Range<usize>),
    /// Answered without storing anything.
    Answered(Receipt),
    /// A stale value, but the message may be a resend: look its ids up.
    MaybeDuplicate,
}

/// A group's plan: one per request, the records to store, and each
/// written key's value once they are stored.
pub(super) struct Planned {
    pub plans: Vec<Plan>,
    pub records: Vec<EventRecord>,
    pub values: HashMap<String, i64>,
}

/// What planning a group knows.
pub(super) struct Knowledge<'a> {
    /// Each key's value before the group (`None`: no event yet).
    pub before: &'a HashMap<String, Option<i64>>,
    /// Event ids found stored.
    pub stored: &'a HashMap<Uuid, StoredId>,
    /// Event ids looked up (found or not).
    pub checked: &'a HashSet<Uuid>,
    /// The position of the newest stored event.
    pub head: i64,
    pub timestamp: DateTime<Utc>,
}

/// Decides each request against the values before the group and the ones
/// earlier requests of the group take.
pub(super) fn plan(requests: &[AppendRequest], knowledge: &Knowledge<'_>) -> Planned {
    let mut group_values: HashMap<String, i64> = HashMap::new();
    let mut records: Vec<EventRecord> = Vec::new();
    let mut plans = Vec::with_capacity(requests.len());
    let mut position = knowledge.head;

    for request in requests {
        if let Some(receipt) = duplicate_receipt(request, knowledge.stored) {
            plans.push(Plan::Answered(receipt));
            continue;
        }
        let current = |key: &str, own: &HashMap<&str, i64>| {
            own.get(key)
                .or_else(|| group_values.get(key))
                .copied()
                .or_else(|| knowledge.before.get(key).copied().flatten())
        };
        let mut own: HashMap<&str, i64> = HashMap::new();
        let mut assigned = Vec::with_capacity(request.events.len());
        let mut stale = false;
        for event in &request.events {
            let key = event.consistency.key.as_str();
            let next = current(key, &own).map_or(0, |value| value + 1);
            let value = match event.consistency.value {
                ConsistencyValue::Explicit(value) if value != next => {
                    stale = true;
                    value
                }
                _ => next,
            };
            own.insert(key, value);
            assigned.push(value);
        }
        if stale {
            let unchecked = request
                .events
                .iter()
                .filter_map(|e| e.event_id)
                .any(|id| !knowledge.checked.contains(&id));
            if unchecked {
                plans.push(Plan::MaybeDuplicate);
            } else {
                let mut before: HashMap<&str, Option<i64>> = HashMap::new();
                for event in &request.events {
                    let key = event.consistency.key.as_str();
                    before
                        .entry(key)
                        .or_insert_with(|| current(key, &HashMap::new()));
                }
                plans.push(Plan::Answered(inconsistent_receipt(request, &before)));
            }
            continue;
        }
        let start = records.len();
        for (event, value) in request.events.iter().zip(assigned) {
            position += 1;
            records.push(EventRecord {
                position,
                event_id: event.event_id.unwrap_or_else(Uuid::now_v7),
                event_type: event.event_type.clone(),
                consistency: Consistency {
                    key: event.consistency.key.clone(),
                    value: ConsistencyValue::Explicit(value),
                },
                correlation_id: event.correlation_id.unwrap_or_else(Uuid::now_v7),
                causation_id: event.causation_id,
                timestamp: knowledge.timestamp,
                data: event.data.clone(),
                published_by: Some(request.published_by.to_string()),
            });
        }
        for (key, value) in own {
            group_values.insert(key.to_owned(), value);
        }
        plans.push(Plan::Accepted(start..records.len()));
    }
    Planned {
        plans,
        records,
        values: group_values,
    }
}
