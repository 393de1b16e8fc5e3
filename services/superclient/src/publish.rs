//! Publishing a decision's events, and what the bus made of them.
//!
//! The client library resends a message whose commit the bus could not
//! confirm (`unknown`) until the answer is definite; what reaches here is
//! definite, or [`PublishError`] when none came in time.

use bus::{
    client::{BusClient, ClientError, Publish},
    protocol::{ErrorCode, EventRecord, Receipt, ReceiptEventStatus, ReceiptStatus},
};

/// What the bus did with a decision's events.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Stored now, as these records (in the message's order).
    Stored(Vec<EventRecord>),
    /// Stored before (a resend, or an earlier run of the same decision):
    /// where each is. Their data may differ from these events'.
    AlreadyStored(Vec<StoredAt>),
    /// Some ids were stored and some not: an earlier, different decision
    /// was stored under these ids. Its keys, to read it from.
    PartlyStored(Vec<String>),
    /// Nothing stored: these keys moved on since the decision read them,
    /// each with the value the bus has for it now.
    Inconsistent(Vec<(String, Option<i64>)>),
}

/// Where a stored event is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredAt {
    pub key: String,
    pub position: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the bus: {0}")]
    Bus(#[from] ClientError),
    #[error("the bus refused the events ({code:?}): {message}")]
    Refused {
        code: Option<ErrorCode>,
        message: String,
    },
}

impl PublishError {
    /// The outcome is not known: the events may be stored.
    pub fn is_uncertain(&self) -> bool {
        matches!(self, Self::Bus(ClientError::Uncertain(_)))
    }
}

pub(crate) async fn publish(bus: &BusClient, events: &[Publish]) -> Result<Outcome, PublishError> {
    let receipt = bus.publish(events.to_vec()).await?;
    metrics::counter!("superclient_publishes_total", "status" => format!("{:?}", receipt.status).to_lowercase()).increment(1);
    Ok(match receipt.status {
        ReceiptStatus::Success => Outcome::Stored(stored_records(&receipt, events)),
        ReceiptStatus::Duplicate => Outcome::AlreadyStored(
            receipt
                .events
                .iter()
                .filter_map(|event| {
                    Some(StoredAt {
                        key: event.consistency.key.clone(),
                        position: event.position?,
                    })
                })
                .collect(),
        ),
        ReceiptStatus::Inconsistent => Outcome::Inconsistent(
            receipt
                .events
                .iter()
                .filter(|e| e.status == ReceiptEventStatus::Inconsistent)
                .map(|e| (e.consistency.key.clone(), e.current.flatten()))
                .collect(),
        ),
        ReceiptStatus::Rejected if receipt.code == Some(ErrorCode::PartialDuplicate) => {
            Outcome::PartlyStored(events.iter().map(|e| e.key.clone()).collect())
        }
        ReceiptStatus::Rejected | ReceiptStatus::Unknown => {
            return Err(PublishError::Refused {
                code: receipt.code,
                message: receipt.message.unwrap_or_default(),
            });
        }
    })
}

/// The published events as the bus stored them (position, value, time).
fn stored_records(receipt: &Receipt, events: &[Publish]) -> Vec<EventRecord> {
    receipt
        .events
        .iter()
        .zip(events)
        .filter_map(|(stored, event)| {
            Some(EventRecord {
                position: stored.position?,
                event_id: stored.event_id,
                event_type: event.event_type.clone(),
                consistency: stored.consistency.clone(),
                correlation_id: event.correlation_id?,
                causation_id: event.causation_id,
                timestamp: stored.timestamp?,
                data: event.data.clone(),
                published_by: None,
            })
        })
        .collect()
}
