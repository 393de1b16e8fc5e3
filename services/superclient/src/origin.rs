//! Where published events come from: the unit of work they belong to
//! (correlation), the event that caused them (causation), and the seed
//! their ids derive from, so that publishing the same decision again after
//! a crash or a lost answer can never store it twice.

use bus::{client::Publish, protocol::EventRecord};
use uuid::Uuid;

use crate::service::Emit;

/// The unit of work a request or an event belongs to; the events it
/// publishes carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorrelationId(pub Uuid);

/// Names the ids of one request's events: a service, the scope of the
/// caller (the acting user) and the request's `Idempotency-Key`.
const REQUEST_IDS: Uuid = Uuid::from_u128(0x5c1e_d9a4_0b7e_4d0f_9a52_2f1b_8e64_7c31);

/// The correlation, cause and id seed of a decision's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub correlation_id: Uuid,
    /// The event reacted to, if any.
    pub cause: Option<Uuid>,
    seed: Uuid,
}

impl Origin {
    /// A reaction to `event`: its ids derive from the event's id.
    pub fn reaction(event: &EventRecord) -> Self {
        Self {
            correlation_id: event.correlation_id,
            cause: Some(event.event_id),
            seed: event.event_id,
        }
    }

    /// An HTTP request of `scope` (the acting user) with this idempotency
    /// key, to `service`: its ids derive from the three.
    pub fn request(service: &str, scope: &str, key: &str, correlation: CorrelationId) -> Self {
        Self {
            correlation_id: correlation.0,
            cause: None,
            seed: Uuid::new_v5(
                &REQUEST_IDS,
                format!("{service}\0{scope}\0{key}").as_bytes(),
            ),
        }
    }

    /// An id for what the decision creates (a redemption, say): the same
    /// on every try of the request, as its events' ids are.
    pub fn subject_id(&self) -> Uuid {
        Uuid::new_v5(&self.seed, b"subject")
    }

    /// The id of the decision's event number `index`.
    pub fn event_id(&self, index: usize) -> Uuid {
        Uuid::new_v5(&self.seed, format!("event-{index}").as_bytes())
    }

    /// The events to publish for `emits`, with their derived ids.
    pub fn events(&self, emits: &[Emit]) -> Vec<Publish> {
        emits
            .iter()
            .enumerate()
            .map(|(index, emit)| Publish {
                event_type: emit.event_type.clone(),
                key: emit.key.clone(),
                value: emit.consistency_value(),
                data: emit.data.clone(),
                event_id: Some(self.event_id(index)),
                correlation_id: Some(self.correlation_id),
                causation_id: self.cause,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_request_gives_the_same_ids_and_another_request_others() {
        let correlation = CorrelationId(Uuid::now_v7());
        let first = Origin::request("accounts", "user:alice", "k-1", correlation);
        let again = Origin::request(
            "accounts",
            "user:alice",
            "k-1",
            CorrelationId(Uuid::now_v7()),
        );
        assert_eq!(first.event_id(0), again.event_id(0));
        assert_ne!(first.event_id(0), first.event_id(1));
        for other in [
            Origin::request("accounts", "user:bob", "k-1", correlation),
            Origin::request("accounts", "user:alice", "k-2", correlation),
            Origin::request("users", "user:alice", "k-1", correlation),
        ] {
            assert_ne!(first.event_id(0), other.event_id(0));
        }
    }
}
