//! Messages from the bus to a client.
//!
//! Each struct derives `Serialize` without its `message_type`; the bus sends
//! them through [`ServerMessage`], whose tag adds it. Clients deserialize the
//! structs directly after reading the `message_type` (the field is ignored).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer, ser::SerializeStruct};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::{Consistency, ErrorCode, Mode, format_timestamp};

#[derive(Debug, Serialize)]
#[serde(tag = "message_type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    Registration(&'a Registration),
    Receipt(&'a Receipt),
    Event(EventFrame<'a>),
    Rebuild(&'a Rebuild),
    RebuildComplete(&'a RebuildComplete),
    Consistency(&'a ConsistencyAnswer),
    Error(&'a ErrorMessage),
}

impl ServerMessage<'_> {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("bus messages always serialise")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub client_type: String,
    pub event_types: Vec<String>,
    pub mode: Mode,
    pub session_id: Uuid,
    pub head_position: i64,
    /// (1.2) Echoed when asked for.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_markers: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Success,
    Duplicate,
    Inconsistent,
    /// Nothing was stored, certainly; `code` and `message` say why.
    Rejected,
    /// The bus's database failed while committing: the events may or may
    /// not be stored. Resend the same message (same event ids) until the
    /// answer is definite; a resend of a stored message is `duplicate`.
    Unknown,
}

impl ReceiptStatus {
    /// Whether the answer settles the message's fate.
    pub fn is_definite(self) -> bool {
        !matches!(self, Self::Unknown)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptEventStatus {
    Success,
    Duplicate,
    Inconsistent,
    Aborted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub request_id: String,
    pub status: ReceiptStatus,
    pub events: Vec<ReceiptEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptEvent {
    pub event_id: Uuid,
    pub status: ReceiptEventStatus,
    /// Where it is stored (success, duplicate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    /// Its key and value: the stored value, or the one it claimed.
    pub consistency: Consistency,
    /// For `inconsistent`: the key's last stored value (`null`: none yet).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub current: Option<Option<i64>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_timestamp"
    )]
    pub timestamp: Option<DateTime<Utc>>,
}

/// A stored event, as `event` and `rebuild` messages carry it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    pub position: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub consistency: Consistency,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    #[serde(with = "timestamp")]
    pub timestamp: DateTime<Utc>,
    pub data: Box<RawValue>,
    /// (1.2) Who published it: the publishing connection's credential name
    /// and peer address, `NAME@IP:PORT` (`accounts@127.0.0.1:53122`).
    /// Always sent, `null` for events stored before the bus recorded it;
    /// absent from an older bus's frames, which read as `None`.
    #[serde(default)]
    pub published_by: Option<String>,
}

impl PartialEq for EventRecord {
    fn eq(&self, other: &Self) -> bool {
        self.position == other.position
            && self.event_id == other.event_id
            && self.event_type == other.event_type
            && self.consistency == other.consistency
            && self.correlation_id == other.correlation_id
            && self.causation_id == other.causation_id
            && self.timestamp == other.timestamp
            && self.data.get() == other.data.get()
            && self.published_by == other.published_by
    }
}

/// An `event` message: a stored event and its delivery count.
#[derive(Debug, Clone, Copy)]
pub struct EventFrame<'a> {
    pub event: &'a EventRecord,
    pub delivery: u32,
    /// Staff skipped this parked event: step over it, apply nothing.
    pub skipped: bool,
}

impl Serialize for EventFrame<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.event;
        let mut frame = serializer.serialize_struct("EventFrame", 11)?;
        frame.serialize_field("position", &event.position)?;
        frame.serialize_field("event_id", &event.event_id)?;
        frame.serialize_field("event_type", &event.event_type)?;
        frame.serialize_field("consistency", &event.consistency)?;
        frame.serialize_field("correlation_id", &event.correlation_id)?;
        frame.serialize_field("causation_id", &event.causation_id)?;
        frame.serialize_field("timestamp", &format_timestamp(event.timestamp))?;
        frame.serialize_field("data", &event.data)?;
        frame.serialize_field("published_by", &event.published_by)?;
        frame.serialize_field("delivery", &self.delivery)?;
        if self.skipped {
            frame.serialize_field("skipped", &true)?;
        }
        frame.end()
    }
}

/// An `event` message as a client reads it: the event and its delivery count.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveredEvent {
    pub event: EventRecord,
    pub delivery: u32,
    /// Staff skipped it: step over it (it is the key's next), apply nothing.
    pub skipped: bool,
}

impl<'de> Deserialize<'de> for DeliveredEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Spelled out rather than `#[serde(flatten)]`, which buffers the
        // fields and cannot hand a raw `data` through.
        #[derive(Deserialize)]
        struct Wire {
            position: i64,
            event_id: Uuid,
            event_type: String,
            consistency: Consistency,
            correlation_id: Uuid,
            causation_id: Option<Uuid>,
            #[serde(with = "timestamp")]
            timestamp: DateTime<Utc>,
            data: Box<RawValue>,
            #[serde(default)]
            published_by: Option<String>,
            delivery: u32,
            #[serde(default)]
            skipped: bool,
        }
        let wire = Wire::deserialize(deserializer)?;
        Ok(Self {
            event: EventRecord {
                position: wire.position,
                event_id: wire.event_id,
                event_type: wire.event_type,
                consistency: wire.consistency,
                correlation_id: wire.correlation_id,
                causation_id: wire.causation_id,
                timestamp: wire.timestamp,
                data: wire.data,
                published_by: wire.published_by,
            },
            delivery: wire.delivery,
            skipped: wire.skipped,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rebuild {
    pub request_id: String,
    pub events: Vec<EventRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebuildComplete {
    pub request_id: String,
    pub count: u64,
    pub last_position: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyAnswer {
    pub request_id: String,
    pub values: BTreeMap<String, Option<i64>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub code: ErrorCode,
    pub message: String,
}

/// Tells an absent field (`None`) from a present `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(deserializer).map(Some)
}

mod timestamp {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_timestamp(*at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|at| at.to_utc())
            .map_err(serde::de::Error::custom)
    }
}

mod optional_timestamp {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        at: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => super::timestamp::serialize(at, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| {
                DateTime::parse_from_rfc3339(&text)
                    .map(|at| at.to_utc())
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ConsistencyValue;

    fn record() -> EventRecord {
        EventRecord {
            position: 1241,
            event_id: Uuid::parse_str("0193a7c0-0000-7000-8000-000000000001").unwrap(),
            event_type: "ConfirmedDebit".into(),
            consistency: Consistency {
                key: "acc-7".into(),
                value: ConsistencyValue::Explicit(4),
            },
            correlation_id: Uuid::parse_str("0193a7c0-0000-7000-8000-000000000002").unwrap(),
            causation_id: None,
            timestamp: DateTime::parse_from_rfc3339("2026-11-28T09:15:40.123456Z")
                .unwrap()
                .to_utc(),
            data: RawValue::from_string(r#"{"amount":"30.00"}"#.into()).unwrap(),
            published_by: Some("accounts@127.0.0.1:53122".into()),
        }
    }

    #[test]
    fn an_event_frame_carries_the_type_first_and_the_delivery() {
        let event = record();
        let json = ServerMessage::Event(EventFrame {
            event: &event,
            delivery: 2,
            skipped: false,
        })
        .to_json();
        assert_eq!(
            json,
            r#"{"message_type":"event","position":1241,"event_id":"0193a7c0-0000-7000-8000-000000000001","event_type":"ConfirmedDebit","consistency":{"key":"acc-7","value":4},"correlation_id":"0193a7c0-0000-7000-8000-000000000002","causation_id":null,"timestamp":"2026-11-28T09:15:40.123456Z","data":{"amount":"30.00"},"published_by":"accounts@127.0.0.1:53122","delivery":2}"#
        );
        let back: DeliveredEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back.event, event);
        assert_eq!((back.delivery, back.skipped), (2, false));
        let skipped = ServerMessage::Event(EventFrame {
            event: &event,
            delivery: 1,
            skipped: true,
        })
        .to_json();
        assert!(
            skipped.ends_with(r#""delivery":1,"skipped":true}"#),
            "{skipped}"
        );
        let back: DeliveredEvent = serde_json::from_str(&skipped).unwrap();
        assert!(back.skipped);
    }

    #[test]
    fn published_by_is_null_when_unknown_and_may_be_absent_from_older_buses() {
        let mut event = record();
        event.published_by = None;
        let json = ServerMessage::Event(EventFrame {
            event: &event,
            delivery: 1,
            skipped: false,
        })
        .to_json();
        assert!(
            json.contains(r#""published_by":null,"delivery":1"#),
            "{json}"
        );
        let back: DeliveredEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back.event, event);

        // A query answer's event carries it the same way.
        let rebuild = Rebuild {
            request_id: "q".into(),
            events: vec![record(), event.clone()],
        };
        let json = ServerMessage::Rebuild(&rebuild).to_json();
        assert!(
            json.contains(r#""published_by":"accounts@127.0.0.1:53122"}"#),
            "{json}"
        );
        assert!(json.contains(r#""published_by":null}"#), "{json}");
        let back: Rebuild = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rebuild);

        // A 1.1 bus sends no such field.
        let older = r#"{"message_type":"event","position":1241,"event_id":"0193a7c0-0000-7000-8000-000000000001","event_type":"ConfirmedDebit","consistency":{"key":"acc-7","value":4},"correlation_id":"0193a7c0-0000-7000-8000-000000000002","causation_id":null,"timestamp":"2026-11-28T09:15:40.123456Z","data":{"amount":"30.00"},"delivery":2}"#;
        let back: DeliveredEvent = serde_json::from_str(older).unwrap();
        assert_eq!(back.event, event);
        let older_record = r#"{"position":1241,"event_id":"0193a7c0-0000-7000-8000-000000000001","event_type":"ConfirmedDebit","consistency":{"key":"acc-7","value":4},"correlation_id":"0193a7c0-0000-7000-8000-000000000002","causation_id":null,"timestamp":"2026-11-28T09:15:40.123456Z","data":{"amount":"30.00"}}"#;
        let back: EventRecord = serde_json::from_str(older_record).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn an_inconsistent_receipt_says_null_for_an_empty_key() {
        let receipt = Receipt {
            request_id: "r".into(),
            status: ReceiptStatus::Inconsistent,
            events: vec![ReceiptEvent {
                event_id: Uuid::nil(),
                status: ReceiptEventStatus::Inconsistent,
                position: None,
                consistency: Consistency {
                    key: "k".into(),
                    value: ConsistencyValue::Explicit(3),
                },
                current: Some(None),
                timestamp: None,
            }],
            code: None,
            message: None,
        };
        let json = ServerMessage::Receipt(&receipt).to_json();
        assert!(json.contains(r#""current":null"#), "{json}");
        assert!(!json.contains("position"), "{json}");
        let back: Receipt = serde_json::from_str(&json).unwrap();
        assert_eq!(back, receipt);
    }

    #[test]
    fn errors_and_consistency_answers() {
        let error = ErrorMessage {
            request_id: None,
            code: ErrorCode::BadJson,
            message: "x".into(),
        };
        assert_eq!(
            ServerMessage::Error(&error).to_json(),
            r#"{"message_type":"error","code":"bad_json","message":"x"}"#
        );
        let answer = ConsistencyAnswer {
            request_id: "c-1".into(),
            values: [("acc-7".to_owned(), Some(4)), ("acc-9".to_owned(), None)].into(),
        };
        assert_eq!(
            ServerMessage::Consistency(&answer).to_json(),
            r#"{"message_type":"consistency","request_id":"c-1","values":{"acc-7":4,"acc-9":null}}"#
        );
    }
}
