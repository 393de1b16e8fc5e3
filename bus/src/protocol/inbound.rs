//! Messages from a client to the bus, as parsed and validated.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{
    Consistency, ConsistencyValue, EventTypes, Limits, ProtocolError,
    error::ErrorCode,
    limits::{MAX_KEY_CHARS, MAX_REASON_CHARS, MAX_REQUEST_ID_CHARS},
    names::{MAX_NAME_CHARS, is_valid_name},
    timestamp::parse_since,
};

#[derive(Debug)]
pub enum ClientMessage {
    Register(Register),
    New(NewMessage),
    Ack(Ack),
    Nack(Nack),
    Query(Query),
    Consistency(ConsistencyRequest),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Consume,
    Observe,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    pub client_type: String,
    pub event_types: EventTypes,
    pub mode: Mode,
    /// (1.2) Deliver events staff skipped once more, marked `skipped`.
    pub skip_markers: bool,
}

#[derive(Debug)]
pub struct NewMessage {
    pub request_id: String,
    pub events: Vec<NewEvent>,
}

/// One event of a `new` message.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct NewEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
    pub event_type: String,
    pub consistency: Consistency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    pub data: Box<RawValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub positions: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    pub position: i64,
    pub reason: String,
}

/// Where a query's answer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryStart {
    /// Events whose timestamp is at or after this (`None`: from the beginning).
    Since(Option<DateTime<Utc>>),
    /// Events with a position strictly greater.
    AfterPosition(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub request_id: String,
    pub event_types: EventTypes,
    pub start: QueryStart,
    pub key: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyRequest {
    pub request_id: String,
    pub keys: Vec<String>,
}

// The wire shapes, before validation.

#[derive(Deserialize)]
pub(super) struct RegisterWire {
    client_type: String,
    event_types: Vec<String>,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    skip_markers: bool,
}

#[derive(Deserialize)]
pub(super) struct NewWire {
    request_id: String,
    events: Vec<NewEvent>,
}

#[derive(Deserialize)]
pub(super) struct AckWire {
    positions: Vec<i64>,
}

#[derive(Deserialize)]
pub(super) struct NackWire {
    position: i64,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
pub(super) struct QueryWire {
    request_id: String,
    event_types: Vec<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    after_position: Option<i64>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

#[derive(Deserialize)]
pub(super) struct ConsistencyWire {
    request_id: String,
    keys: Vec<String>,
}

fn check_request_id(request_id: &str) -> Result<(), ProtocolError> {
    if request_id.chars().count() > MAX_REQUEST_ID_CHARS {
        return Err(ProtocolError::invalid(format!(
            "request_id must be at most {MAX_REQUEST_ID_CHARS} characters"
        )));
    }
    Ok(())
}

fn check_key(key: &str, field: &str) -> Result<(), ProtocolError> {
    let chars = key.chars().count();
    if !(1..=MAX_KEY_CHARS).contains(&chars) {
        return Err(ProtocolError::invalid(format!(
            "{field} must be 1 to {MAX_KEY_CHARS} characters"
        )));
    }
    // PostgreSQL's text cannot hold it; refused here rather than failing
    // the whole group of messages it would be stored with.
    if key.contains('\0') {
        return Err(ProtocolError::invalid(format!(
            "{field} must not contain the NUL character"
        )));
    }
    Ok(())
}

impl RegisterWire {
    pub(super) fn validate(self) -> Result<Register, ProtocolError> {
        if !is_valid_name(&self.client_type) {
            return Err(ProtocolError::invalid(format!(
                "client_type must be 1 to {MAX_NAME_CHARS} characters of A-Z, a-z, 0-9, '_', '.', '-'"
            )));
        }
        let event_types = EventTypes::from_list(self.event_types, "event_types")
            .map_err(ProtocolError::invalid)?;
        Ok(Register {
            client_type: self.client_type,
            event_types,
            mode: self.mode,
            skip_markers: self.skip_markers,
        })
    }
}

impl NewWire {
    pub(super) fn validate(self, limits: &Limits) -> Result<NewMessage, ProtocolError> {
        check_request_id(&self.request_id)?;
        let request_id = Some(self.request_id.clone());
        let fail = |error: ProtocolError| error.with_request_id(request_id.clone());
        if self.events.is_empty() {
            return Err(fail(ProtocolError::invalid(
                "events must hold at least one event",
            )));
        }
        if self.events.len() > limits.max_events_per_message {
            return Err(fail(ProtocolError::new(
                ErrorCode::TooManyEvents,
                format!(
                    "a new message holds at most {} events; this one has {}",
                    limits.max_events_per_message,
                    self.events.len()
                ),
            )));
        }
        let mut ids = HashSet::new();
        // The last explicit value seen per key in this message, to check
        // that events sharing a key carry consecutive values.
        let mut last_values: HashMap<&str, Option<i64>> = HashMap::new();
        for (index, event) in self.events.iter().enumerate() {
            if !is_valid_name(&event.event_type) {
                return Err(fail(ProtocolError::invalid(format!(
                    "events[{index}].event_type must be 1 to {MAX_NAME_CHARS} characters of A-Z, a-z, 0-9, '_', '.', '-'"
                ))));
            }
            check_key(
                &event.consistency.key,
                &format!("events[{index}].consistency.key"),
            )
            .map_err(fail)?;
            if let Some(id) = event.event_id
                && !ids.insert(id)
            {
                return Err(fail(ProtocolError::invalid(format!(
                    "events[{index}].event_id {id} appears twice in this message"
                ))));
            }
            let value = match event.consistency.value {
                ConsistencyValue::Explicit(value) => Some(value),
                ConsistencyValue::Implicit => None,
            };
            if let Some(previous) = last_values.insert(&event.consistency.key, value)
                && let (Some(previous), Some(value)) = (previous, value)
                && value != previous + 1
            {
                return Err(fail(ProtocolError::invalid(format!(
                    "events[{index}].consistency.value must be {} (events of one message that share a key carry consecutive values)",
                    previous + 1
                ))));
            }
        }
        Ok(NewMessage {
            request_id: self.request_id,
            events: self.events,
        })
    }
}

impl AckWire {
    pub(super) fn validate(self) -> Result<Ack, ProtocolError> {
        if let Some(index) = self.positions.iter().position(|&p| p < 1) {
            return Err(ProtocolError::invalid(format!(
                "positions[{index}] must be a positive integer"
            )));
        }
        Ok(Ack {
            positions: self.positions,
        })
    }
}

impl NackWire {
    pub(super) fn validate(self) -> Result<Nack, ProtocolError> {
        if self.position < 1 {
            return Err(ProtocolError::invalid(
                "position must be a positive integer",
            ));
        }
        let reason = self
            .reason
            .chars()
            .filter(|&c| c != '\0')
            .take(MAX_REASON_CHARS)
            .collect();
        Ok(Nack {
            position: self.position,
            reason,
        })
    }
}

impl QueryWire {
    pub(super) fn validate(self) -> Result<Query, ProtocolError> {
        check_request_id(&self.request_id)?;
        let request_id = Some(self.request_id.clone());
        let fail = |error: ProtocolError| error.with_request_id(request_id.clone());
        let event_types = EventTypes::from_list(self.event_types, "event_types")
            .map_err(|message| fail(ProtocolError::invalid(message)))?;
        let start = match (self.since, self.after_position) {
            (Some(since), None) => QueryStart::Since(
                parse_since(&since).map_err(|message| fail(ProtocolError::invalid(message)))?,
            ),
            (None, Some(position)) if position >= 0 => QueryStart::AfterPosition(position),
            (None, Some(_)) => {
                return Err(fail(ProtocolError::invalid(
                    "after_position must be a non-negative integer",
                )));
            }
            _ => {
                return Err(fail(ProtocolError::invalid(
                    "a query gives exactly one of since and after_position",
                )));
            }
        };
        if let Some(key) = &self.key {
            check_key(key, "key").map_err(fail)?;
        }
        if self.limit.is_some_and(|limit| limit < 1) {
            return Err(fail(ProtocolError::invalid(
                "limit must be a positive integer",
            )));
        }
        Ok(Query {
            request_id: self.request_id,
            event_types,
            start,
            key: self.key,
            limit: self.limit,
        })
    }
}

impl ConsistencyWire {
    pub(super) fn validate(self, limits: &Limits) -> Result<ConsistencyRequest, ProtocolError> {
        check_request_id(&self.request_id)?;
        let request_id = Some(self.request_id.clone());
        if self.keys.is_empty() || self.keys.len() > limits.max_keys_per_request {
            return Err(ProtocolError::invalid(format!(
                "keys must hold 1 to {} keys",
                limits.max_keys_per_request
            ))
            .with_request_id(request_id));
        }
        for (index, key) in self.keys.iter().enumerate() {
            check_key(key, &format!("keys[{index}]"))
                .map_err(|error| error.with_request_id(request_id.clone()))?;
        }
        Ok(ConsistencyRequest {
            request_id: self.request_id,
            keys: self.keys,
        })
    }
}
