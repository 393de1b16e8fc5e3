//! What a subscription owes: events from the writer's batches while it
//! keeps up, from pages of the log while it does not, and staff replays;
//! each owed event is held in its key's queue.

use std::{collections::HashMap, sync::Arc};

use super::{
    Actor, MAX_HELD_BYTES, PAGE_SIZE, PageRead, RELEASE_PAGE, Release, ReleaseRead, weight,
};
use crate::server::subscription::keys::{Held, Source};
use crate::{
    protocol::{EventRecord, EventTypes},
    server::writer::CommittedBatch,
    store::{self, events::Page},
};

impl Actor {
    /// Releases `positions` of `key` (a replayed parked event and the
    /// events held behind it): they are read apart from the cursor's pages,
    /// and the key delivers nothing until they are held, in order.
    pub(super) fn release(&mut self, mut release: Release) {
        release.positions.sort_unstable();
        let state = self.keys.entry(release.key.clone()).or_default();
        state.pending_release.extend(release.positions);
        if release.skipped.is_some() {
            state.skipped = release.skipped;
        }
        self.next_release_page(&release.key);
    }

    /// Reads the key's next page of released events, when one is due.
    pub(super) fn next_release_page(&mut self, key: &str) {
        let Some(state) = self.keys.get_mut(key) else {
            return;
        };
        if !state.needs_release_page() {
            return;
        }
        let take = state.pending_release.len().min(RELEASE_PAGE);
        let positions: Vec<i64> = state.pending_release.drain(..take).collect();
        state.awaiting += 1;
        let pool = self.pool.clone();
        let sender = self.releases.0.clone();
        let key = key.to_owned();
        tokio::spawn(async move {
            let read = store::events::read_positions(&pool, &positions).await;
            let _ = sender.send(ReleaseRead {
                key,
                positions,
                read,
            });
        });
    }

    pub(super) fn on_release(&mut self, release: ReleaseRead) {
        let events = match release.read {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(client_type = %self.client_type, %error, "could not read released events; will retry");
                if let Some(state) = self.keys.get_mut(&release.key) {
                    state.awaiting = state.awaiting.saturating_sub(1);
                    for position in release.positions.into_iter().rev() {
                        state.pending_release.push_front(position);
                    }
                }
                self.failed_releases.push(release.key);
                return;
            }
        };
        let skipped = self.keys.get(&release.key).and_then(|state| state.skipped);
        for event in events {
            let source = if Some(event.position) == skipped {
                Source::Skipped
            } else {
                Source::Released
            };
            self.hold(Arc::new(event), source);
        }
        let Some(state) = self.keys.get_mut(&release.key) else {
            return;
        };
        state.awaiting = state.awaiting.saturating_sub(1);
        if state.is_idle() {
            self.keys.remove(&release.key);
        } else if state.is_ready() && !state.in_ready {
            state.in_ready = true;
            self.ready.push_back(release.key);
        }
    }

    /// Reads again the released events whose read failed.
    pub(super) fn retry_releases(&mut self) {
        for key in std::mem::take(&mut self.failed_releases) {
            self.next_release_page(&key);
        }
    }

    /// Takes the types a registration stored. A type new to this
    /// subscription was stored as owed after the head the registration saw,
    /// but events of it that this subscription has already passed over (or
    /// is reading past, with the old types) would never be delivered: it is
    /// owed from where the subscription has got to instead, here and in the
    /// store.
    pub(super) fn take_types(&mut self, stored: HashMap<String, i64>) {
        let reached = if self.reading {
            self.cursor.max(self.reading_through)
        } else {
            self.cursor
        };
        let mut raised = Vec::new();
        for (event_type, owed_after) in stored {
            if self.owed_after.contains_key(&event_type) {
                continue;
            }
            let owed_after = if owed_after < reached {
                raised.push(event_type.clone());
                reached
            } else {
                owed_after
            };
            self.owed_after.insert(event_type, owed_after);
        }
        if !raised.is_empty() {
            let pool = self.pool.clone();
            let client_type = self.client_type.clone();
            tokio::spawn(async move {
                if let Err(error) =
                    store::subscriptions::raise_owed_after(&pool, &client_type, &raised, reached)
                        .await
                {
                    // Not fatal: after a restart those events are owed, so
                    // delivered, rather than lost.
                    tracing::warn!(%client_type, %error, "could not save where new types are owed from");
                }
            });
        }
    }

    pub(super) fn types(&self) -> EventTypes {
        if self.owed_after.contains_key("*") {
            return EventTypes::All;
        }
        EventTypes::Only(self.owed_after.keys().cloned().collect())
    }

    pub(super) fn owes(&self, event: &EventRecord) -> bool {
        let after = |name: &str| {
            self.owed_after
                .get(name)
                .is_some_and(|&after| event.position > after)
        };
        after("*") || after(&event.event_type)
    }

    pub(super) fn on_batch(&mut self, batch: &CommittedBatch) {
        if !self.live {
            self.newest_seen = self.newest_seen.max(batch.last);
            return;
        }
        if batch.last <= self.cursor {
            return;
        }
        if batch.first > self.cursor + 1 {
            // A batch we did not see: read the log from the cursor.
            self.live = false;
            self.newest_seen = batch.last;
            return;
        }
        for event in &batch.events {
            if event.position > self.cursor {
                self.examine(event.clone());
            }
        }
        self.cursor = batch.last;
        if self.is_full(self.config.max_held) {
            self.live = false;
            self.newest_seen = self.cursor;
        }
    }

    /// Holding `limit` events or more that an instance could take, or four
    /// times as many in all. Events of a type no connected instance takes
    /// (its only taker left) count only against the larger bound, so that
    /// they do not stop the types that do have takers.
    fn is_full(&self, limit: usize) -> bool {
        self.held.saturating_sub(self.stranded) >= limit
            || self.held >= 4 * self.config.max_held
            || self.held_bytes >= MAX_HELD_BYTES
    }

    /// Counts the held events whose type no connected instance takes.
    pub(super) fn count_stranded(&mut self) {
        self.stranded = self
            .keys
            .values()
            .flat_map(|state| state.queue.iter())
            .filter(|held| {
                !self
                    .instances
                    .values()
                    .any(|instance| instance.types.contains(&held.event.event_type))
            })
            .count();
    }

    /// Reads the next page of the log when behind, has room, and has an
    /// instance to deliver to.
    pub(super) fn maybe_read(&mut self) {
        if self.live
            || self.reading
            || self.instances.is_empty()
            || self.is_full(self.config.max_held / 2)
        {
            return;
        }
        self.reading = true;
        let pool = self.pool.clone();
        let sender = self.pages.0.clone();
        let after = self.cursor;
        let types = self.types();
        let head_at_start = self.writer.head();
        self.reading_through = head_at_start;
        tokio::spawn(async move {
            // Never past the writer's head: what lies beyond is not all
            // committed yet, and comes with the writer's batches anyway.
            let page = Page {
                after,
                through: head_at_start,
                types: &types,
                limit: PAGE_SIZE as i64,
            };
            let read = async {
                let mut db = pool.acquire().await?;
                store::events::read_page(&mut db, &page).await
            }
            .await;
            let _ = sender.send(PageRead {
                head_at_start,
                read,
            });
        });
    }

    pub(super) fn on_page(&mut self, page: PageRead) {
        self.reading = false;
        let read = match page.read {
            Ok(read) => read,
            Err(error) => {
                tracing::warn!(client_type = %self.client_type, %error, "could not read the log; will retry");
                return;
            }
        };
        for event in read.events {
            if event.position > self.cursor {
                self.examine(Arc::new(event));
            }
        }
        self.cursor = self.cursor.max(read.covered_through);
        // Caught up with the head the read started from, and no batch seen
        // meanwhile went past it: from here the writer's batches suffice.
        if read.covered_through >= page.head_at_start && self.newest_seen <= self.cursor {
            self.live = true;
        }
        self.skip.retain(|&position| position > self.cursor);
    }

    pub(super) fn examine(&mut self, event: Arc<EventRecord>) {
        if self.skip.remove(&event.position) || !self.owes(&event) {
            return;
        }
        if let Some(&parked) = self.blocking.get(&event.consistency.key) {
            // Its key waits for a staff decision on an earlier event.
            metrics::counter!("bus_blocked_total").increment(1);
            self.progress.blocked.push((event.position, parked));
            return;
        }
        self.outstanding.insert(event.position);
        self.hold(event, Source::Log);
    }

    pub(super) fn hold(&mut self, event: Arc<EventRecord>, source: Source) {
        let deliveries = self.failures.remove(&event.position).unwrap_or(0);
        let key = event.consistency.key.clone();
        let state = self.keys.entry(key.clone()).or_default();
        self.held += 1;
        self.held_bytes += weight(&event);
        state.insert(Held {
            event,
            deliveries,
            source,
        });
        if state.is_ready() && !state.in_ready {
            state.in_ready = true;
            self.ready.push_back(key);
        }
    }
}
