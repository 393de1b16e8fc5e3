//! The tracing span of an event, wherever it is handled.

use bus::protocol::EventRecord;

pub fn event_span(event: &EventRecord) -> tracing::Span {
    tracing::info_span!(
        "event",
        position = event.position,
        event_type = %event.event_type,
        key = %event.consistency.key,
        correlation_id = %event.correlation_id,
    )
}
