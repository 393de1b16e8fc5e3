//! The receipts the writer answers `new` messages with.

use std::collections::HashMap;

use uuid::Uuid;

use super::AppendRequest;
use crate::{
    protocol::{
        Consistency, ConsistencyValue, ErrorCode, EventRecord, Receipt, ReceiptEvent,
        ReceiptEventStatus, ReceiptStatus,
    },
    store::events::StoredId,
};

/// `duplicate` when every id of the message is stored, `partial_duplicate`
/// when some are, `None` when none is.
pub(super) fn duplicate_receipt(
    request: &AppendRequest,
    known: &HashMap<Uuid, StoredId>,
) -> Option<Receipt> {
    let stored: Vec<Option<&StoredId>> = request
        .events
        .iter()
        .map(|event| event.event_id.and_then(|id| known.get(&id)))
        .collect();
    if stored.iter().all(Option::is_none) {
        return None;
    }
    if stored.iter().any(Option::is_none) {
        return Some(rejected(
            &request.request_id,
            ErrorCode::PartialDuplicate,
            "some of the message's event ids are already stored and some are not; nothing was stored",
        ));
    }
    let events = request
        .events
        .iter()
        .zip(stored)
        .filter_map(|(event, stored)| {
            let stored = stored?;
            Some(ReceiptEvent {
                event_id: event.event_id?,
                status: ReceiptEventStatus::Duplicate,
                position: Some(stored.position),
                consistency: Consistency {
                    key: stored.key.clone(),
                    value: ConsistencyValue::Explicit(stored.value),
                },
                current: None,
                timestamp: Some(stored.timestamp),
            })
        })
        .collect();
    Some(Receipt {
        request_id: request.request_id.clone(),
        status: ReceiptStatus::Duplicate,
        events,
        code: None,
        message: None,
    })
}

pub(super) fn success_receipt(request_id: &str, records: &[EventRecord]) -> Receipt {
    Receipt {
        request_id: request_id.to_owned(),
        status: ReceiptStatus::Success,
        events: records
            .iter()
            .map(|record| ReceiptEvent {
                event_id: record.event_id,
                status: ReceiptEventStatus::Success,
                position: Some(record.position),
                consistency: record.consistency.clone(),
                current: None,
                timestamp: Some(record.timestamp),
            })
            .collect(),
        code: None,
        message: None,
    }
}

/// Each event with a wrong value is `inconsistent` with its key's current
/// value; the others are `aborted`. Ids the bus would have made are nil.
pub(super) fn inconsistent_receipt(
    request: &AppendRequest,
    before: &HashMap<&str, Option<i64>>,
) -> Receipt {
    let mut running: HashMap<&str, Option<i64>> = before.clone();
    let events = request
        .events
        .iter()
        .map(|event| {
            let key = event.consistency.key.as_str();
            let current = running.get(key).copied().flatten();
            let next = current.map_or(0, |value| value + 1);
            let wrong =
                matches!(event.consistency.value, ConsistencyValue::Explicit(v) if v != next);
            running.insert(key, Some(next));
            ReceiptEvent {
                event_id: event.event_id.unwrap_or(Uuid::nil()),
                status: if wrong {
                    ReceiptEventStatus::Inconsistent
                } else {
                    ReceiptEventStatus::Aborted
                },
                position: None,
                consistency: event.consistency.clone(),
                current: wrong.then_some(before.get(key).copied().flatten()),
                timestamp: None,
            }
        })
        .collect();
    Receipt {
        request_id: request.request_id.clone(),
        status: ReceiptStatus::Inconsistent,
        events,
        code: None,
        message: None,
    }
}

/// Nothing was stored, certainly.
pub(crate) fn rejected(request_id: &str, code: ErrorCode, message: &str) -> Receipt {
    Receipt {
        request_id: request_id.to_owned(),
        status: ReceiptStatus::Rejected,
        events: Vec::new(),
        code: Some(code),
        message: Some(message.to_owned()),
    }
}

/// The outcome is not known: the database failed while the message was
/// with the writer (or the bus stopped before answering). The client sends
/// the same message again; if it was stored, the answer is `duplicate`.
pub(crate) fn unknown(request_id: &str, code: ErrorCode) -> Receipt {
    let message = match code {
        ErrorCode::ShuttingDown => {
            "the bus stopped before it could say whether the message was stored; send it \
             again with the same event ids (to this bus once it is back, or another): if it \
             was stored, the answer is duplicate"
        }
        _ => {
            "the bus's database failed, and the bus cannot tell whether the message was \
             stored; send it again with the same event ids: if it was stored, the answer is \
             duplicate"
        }
    };
    Receipt {
        request_id: request_id.to_owned(),
        status: ReceiptStatus::Unknown,
        events: Vec::new(),
        code: Some(code),
        message: Some(message.to_owned()),
    }
}
