//! Handing held events to instances, and what happens after: acks,
//! nacks, timeouts, parking, and instances that leave.

use std::{cmp::Reverse, collections::HashMap, time::Instant};

use super::{Actor, Delivery, Instance, weight};
use crate::server::subscription::keys::{Held, InFlight, InstanceId, Source, rendezvous};

impl Actor {
    pub(super) fn holds(&self, instance: InstanceId, position: i64) -> bool {
        self.in_flight
            .get(&position)
            .and_then(|key| self.keys.get(key))
            .and_then(|state| state.in_flight.as_ref())
            .is_some_and(|flight| flight.instance == instance)
    }

    /// Delivers what is ready to instances with room.
    pub(super) fn pump(&mut self) {
        let mut blocked = Vec::new();
        for _ in 0..self.ready.len() {
            if !self
                .instances
                .values()
                .any(|i| i.in_flight < self.config.max_in_flight)
            {
                break;
            }
            let Some(key) = self.ready.pop_front() else {
                break;
            };
            let Some(state) = self.keys.get_mut(&key) else {
                continue;
            };
            state.in_ready = false;
            if !state.is_ready() {
                continue;
            }
            let Some(held) = state.queue.front() else {
                continue;
            };
            let event_type = held.event.event_type.clone();
            let Some(target) = route(
                &self.instances,
                &key,
                &event_type,
                state.instance,
                self.config.max_in_flight,
            ) else {
                state.in_ready = true;
                blocked.push(key);
                continue;
            };
            let wants_marker = self.instances[&target].skip_markers;
            if state
                .queue
                .front()
                .is_some_and(|h| h.source == Source::Skipped)
                && !wants_marker
            {
                // This instance takes no skip markers: the skip is settled
                // unseen, as if acknowledged, and the key goes on.
                self.settle_skipped(&key);
                continue;
            }
            let state = self.keys.get_mut(&key).expect("looked up above");
            let held = state.queue.front_mut().expect("checked above");
            held.deliveries += 1;
            let delivery = Delivery {
                event: held.event.clone(),
                delivery: held.deliveries,
                skipped: held.source == Source::Skipped,
            };
            let position = held.event.position;
            let instance = self
                .instances
                .get_mut(&target)
                .expect("routed to a live instance");
            if instance.deliveries.send(delivery).is_err() {
                // Its connection is gone; its Leave is on the way.
                held.deliveries -= 1;
                state.in_ready = true;
                blocked.push(key);
                continue;
            }
            instance.in_flight += 1;
            state.instance = Some(target);
            state.in_flight = Some(InFlight {
                instance: target,
                deadline: Instant::now() + self.config.ack_timeout,
            });
            self.in_flight.insert(position, key);
            metrics::counter!("bus_deliveries_total").increment(1);
        }
        self.ready.extend(blocked);
    }

    pub(super) fn ack(&mut self, instance: InstanceId, position: i64) {
        if !self.holds(instance, position) {
            return;
        }
        metrics::counter!("bus_acks_total").increment(1);
        let replay = self.finish(position);
        if replay {
            self.progress.replays_done.push(position);
        }
        // A replay is recorded as acknowledged too: it may lie above the
        // watermark, where only `bus.acks` keeps a restart from delivering
        // it again.
        self.progress.acked.push(position);
    }

    /// Removes the in-flight head of `position`'s key; returns whether it
    /// was a replay.
    pub(super) fn finish(&mut self, position: i64) -> bool {
        let Some(key) = self.in_flight.remove(&position) else {
            return false;
        };
        let Some(state) = self.keys.get_mut(&key) else {
            return false;
        };
        if let Some(flight) = state.in_flight.take()
            && let Some(instance) = self.instances.get_mut(&flight.instance)
        {
            instance.in_flight -= 1;
        }
        let held = state.queue.pop_front();
        self.held -= 1;
        self.held_bytes -= held.as_ref().map_or(0, |held| weight(&held.event));
        if state.may_move {
            state.instance = None;
            state.may_move = false;
        }
        let replay = held.as_ref().is_some_and(Held::released);
        if !replay {
            self.outstanding.remove(&position);
        }
        self.after_front_removed(key);
        replay
    }

    /// The key's front event left: forget an idle key, or offer its next
    /// event, and read its next page of released events when one is due.
    fn after_front_removed(&mut self, key: String) {
        let Some(state) = self.keys.get_mut(&key) else {
            return;
        };
        if state.is_idle() {
            self.keys.remove(&key);
            return;
        }
        if state.is_ready() && !state.in_ready {
            state.in_ready = true;
            self.ready.push_back(key.clone());
        }
        self.next_release_page(&key);
    }

    /// Settles the key's front event, a skipped one, without delivering it.
    fn settle_skipped(&mut self, key: &str) {
        let Some(held) = self
            .keys
            .get_mut(key)
            .and_then(|state| state.queue.pop_front())
        else {
            return;
        };
        self.held -= 1;
        self.held_bytes -= weight(&held.event);
        let position = held.event.position;
        self.progress.replays_done.push(position);
        self.progress.acked.push(position);
        self.after_front_removed(key.to_owned());
    }

    /// A nack or a timeout: back off, or park after `max_deliveries`.
    pub(super) fn fail(&mut self, position: i64, reason: String) {
        let Some(key) = self.in_flight.get(&position).cloned() else {
            return;
        };
        let front = self.keys.get(&key).and_then(|state| state.queue.front());
        let deliveries = front.map_or(0, |held| held.deliveries);
        // A skip marker is never parked: it carries nothing to fail at,
        // and parking it would block the key staff just released.
        let skipped = front.is_some_and(|held| held.source == Source::Skipped);
        if deliveries >= self.config.max_deliveries && !skipped {
            tracing::warn!(client_type = %self.client_type, position, deliveries, %reason, "parking an event");
            metrics::counter!("bus_parked_total").increment(1);
            let replay = self.finish(position);
            if replay {
                self.progress.replays_done.push(position);
            }
            self.progress.parked.push((position, deliveries, reason));
            self.block_key(key, position);
            return;
        }
        let Some(state) = self.keys.get_mut(&key) else {
            return;
        };
        if let Some(flight) = state.in_flight.take()
            && let Some(instance) = self.instances.get_mut(&flight.instance)
        {
            instance.in_flight -= 1;
        }
        self.in_flight.remove(&position);
        let until = Instant::now() + self.config.backoff(deliveries);
        state.not_before = Some(until);
        self.backing_off.push(Reverse((until, key)));
        self.progress.failed.push((position, deliveries, reason));
    }

    pub(super) fn leave(&mut self, instance: InstanceId) {
        self.instances.remove(&instance);
        let mut freed = Vec::new();
        for (key, state) in &mut self.keys {
            if state.instance == Some(instance) {
                state.instance = None;
            }
            if let Some(flight) = &state.in_flight
                && flight.instance == instance
            {
                if let Some(held) = state.queue.front() {
                    self.in_flight.remove(&held.event.position);
                }
                state.in_flight = None;
                if state.is_ready() && !state.in_ready {
                    state.in_ready = true;
                    freed.push(key.clone());
                }
            }
        }
        // They were next in line: first in the queue again, in position order.
        freed.sort_by_key(|key| self.keys[key].queue.front().map(|held| held.event.position));
        for key in freed.into_iter().rev() {
            self.ready.push_front(key);
        }
    }

    pub(super) fn on_tick(&mut self) {
        self.count_stranded();
        let now = Instant::now();
        let expired: Vec<i64> = self
            .in_flight
            .iter()
            .filter(|(_, key)| {
                self.keys
                    .get(*key)
                    .and_then(|state| state.in_flight.as_ref())
                    .is_some_and(|flight| flight.deadline <= now)
            })
            .map(|(position, _)| *position)
            .collect();
        for position in expired {
            metrics::counter!("bus_ack_timeouts_total").increment(1);
            self.fail(
                position,
                "not acknowledged within the ack timeout".to_owned(),
            );
        }
        while let Some(Reverse((until, _))) = self.backing_off.peek() {
            if *until > now {
                break;
            }
            let Some(Reverse((_, key))) = self.backing_off.pop() else {
                break;
            };
            if let Some(state) = self.keys.get_mut(&key) {
                state.not_before = None;
                if state.is_ready() && !state.in_ready {
                    state.in_ready = true;
                    self.ready.push_back(key);
                }
            }
        }
        self.retry_releases();
        self.save();
    }
}

/// The instance for a key's next event: the one it is stuck to; else by
/// rendezvous hashing among those taking the type; else, when that one is
/// full, the least loaded with room.
fn route(
    instances: &HashMap<InstanceId, Instance>,
    key: &str,
    event_type: &str,
    stuck_to: Option<InstanceId>,
    max_in_flight: usize,
) -> Option<InstanceId> {
    if let Some(id) = stuck_to
        && let Some(instance) = instances.get(&id)
        && instance.types.contains(event_type)
    {
        return (instance.in_flight < max_in_flight).then_some(id);
    }
    let takers = || {
        instances
            .iter()
            .filter(|(_, i)| i.types.contains(event_type))
    };
    let hashed = rendezvous(key, takers().map(|(id, _)| *id))?;
    if instances[&hashed].in_flight < max_in_flight {
        return Some(hashed);
    }
    takers()
        .filter(|(_, i)| i.in_flight < max_in_flight)
        .min_by_key(|(_, i)| i.in_flight)
        .map(|(id, _)| *id)
}
