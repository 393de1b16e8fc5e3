//! Per-key delivery state of one subscription: the events held for a key,
//! the one in flight, and the instance the key is stuck to.

use std::{collections::VecDeque, sync::Arc, time::Instant};

use crate::protocol::EventRecord;

pub type InstanceId = u64;

/// Where a held event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The log, as the subscription read it.
    Log,
    /// A staff decision released it: replayed, or held behind a parked one.
    Released,
    /// Staff skipped it: delivered once, marked skipped, to be stepped over.
    Skipped,
}

/// An event held for delivery.
#[derive(Debug)]
pub struct Held {
    pub event: Arc<EventRecord>,
    /// Deliveries so far (the next one is numbered one more).
    pub deliveries: u32,
    pub source: Source,
}

impl Held {
    /// Released by staff: tracked in the store's replays, not the cursor.
    pub fn released(&self) -> bool {
        self.source != Source::Log
    }
}

/// Where the head of a key's queue is.
#[derive(Debug)]
pub struct InFlight {
    pub instance: InstanceId,
    pub deadline: Instant,
}

/// A key with held events. Keys with none are not kept: memory follows the
/// work in flight, not the number of keys ever seen.
#[derive(Debug, Default)]
pub struct KeyState {
    /// In position order; the front is the one in flight, if any.
    pub queue: VecDeque<Held>,
    pub in_flight: Option<InFlight>,
    /// The instance the key is stuck to while it has unacknowledged events.
    pub instance: Option<InstanceId>,
    /// After a failed delivery: not before this time.
    pub not_before: Option<Instant>,
    /// Already in the subscription's ready queue.
    pub in_ready: bool,
    /// An instance joined while an event of this key was in flight: the key
    /// may move once that event is acknowledged.
    pub may_move: bool,
    /// Reads of released (replayed) events of this key still under way:
    /// nothing of the key is delivered until they are held, in order.
    pub awaiting: usize,
    /// Released events not read yet (they are read a page at a time): the
    /// key's events from the log wait behind them.
    pub pending_release: VecDeque<i64>,
    /// The skipped one among the released, if any.
    pub skipped: Option<i64>,
}

impl KeyState {
    /// Ready for its next delivery: something held, nothing in flight, not
    /// backing off, nothing released still being read.
    pub fn is_ready(&self) -> bool {
        let next_is_from_log = self
            .queue
            .front()
            .is_some_and(|held| held.source == Source::Log);
        let release_unread = next_is_from_log && !self.pending_release.is_empty();
        !self.queue.is_empty()
            && self.in_flight.is_none()
            && self.not_before.is_none()
            && self.awaiting == 0
            && !release_unread
    }

    pub fn is_idle(&self) -> bool {
        self.queue.is_empty()
            && self.in_flight.is_none()
            && self.awaiting == 0
            && self.pending_release.is_empty()
    }

    /// The next page of released events is due: none is held or being read.
    pub fn needs_release_page(&self) -> bool {
        !self.pending_release.is_empty()
            && self.awaiting == 0
            && !self.queue.iter().any(Held::released)
    }

    /// Holds `held` in position order. Nothing goes before an event in
    /// flight: a released event is older than the key's new ones, and is
    /// read while the key delivers nothing.
    pub fn insert(&mut self, held: Held) {
        let position = held.event.position;
        let after = self
            .queue
            .iter()
            .rposition(|other| other.event.position < position)
            .map_or(0, |index| index + 1);
        let after = if self.in_flight.is_some() {
            after.max(1)
        } else {
            after
        };
        self.queue.insert(after, held);
    }
}

/// The instance a key belongs to among `candidates`: rendezvous hashing, so
/// that a key stays with its instance while the set of instances does not
/// change, and only the keys of an instance that leaves (or a share of all
/// keys, for one that joins) move.
pub fn rendezvous(key: &str, candidates: impl Iterator<Item = InstanceId>) -> Option<InstanceId> {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hasher = BuildHasherDefault::<DefaultHasher>::default();
    candidates.max_by_key(|instance| hasher.hash_one((key, instance)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_is_stable_and_moves_few_keys() {
        let keys: Vec<String> = (0..1000).map(|i| format!("acc-{i}")).collect();
        let before: Vec<_> = keys
            .iter()
            .map(|k| rendezvous(k, [1, 2, 3].into_iter()))
            .collect();
        let again: Vec<_> = keys
            .iter()
            .map(|k| rendezvous(k, [3, 1, 2].into_iter()))
            .collect();
        assert_eq!(before, again, "order of candidates does not matter");

        let after: Vec<_> = keys
            .iter()
            .map(|k| rendezvous(k, [1, 2, 3, 4].into_iter()))
            .collect();
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        assert!(
            after
                .iter()
                .zip(&before)
                .all(|(a, b)| a == b || *a == Some(4)),
            "keys only move to the newcomer"
        );
        assert!(
            (150..350).contains(&moved),
            "about a quarter moves, got {moved}"
        );

        let spread: Vec<usize> = (1..=3)
            .map(|i| before.iter().filter(|&&b| b == Some(i)).count())
            .collect();
        assert!(
            spread.iter().all(|&n| (250..420).contains(&n)),
            "even spread: {spread:?}"
        );
    }

    #[test]
    fn no_candidates_no_instance() {
        assert_eq!(rendezvous("k", std::iter::empty()), None);
    }
}
