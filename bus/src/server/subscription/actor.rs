//! One consume-mode subscription (one client type), run as a task that owns
//! all of its delivery state; instances and the writer talk to it by message.
//!
//! Events come from the writer's committed batches while the subscription
//! keeps up ("live"), and from pages of the log when it does not (after a
//! restart, a gap, or while it holds too much). Either way the subscription
//! examines the log in position order up to `cursor`, and holds what it owes
//! in per-key queues until acknowledged. Its acknowledgement watermark and
//! the acks above it are saved periodically, well within a second.

use std::{
    cmp::Reverse,
    collections::{BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use sqlx::PgPool;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::keys::{Held, InFlight, InstanceId, KeyState, rendezvous};
use crate::{
    protocol::{EventRecord, EventTypes},
    server::{
        config::DeliveryConfig,
        writer::{CommittedBatch, WriterHandle},
    },
    store::{
        self,
        events::Page,
        subscriptions::{Progress, StoredSubscription},
    },
};

/// A delivery to one instance.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event: Arc<EventRecord>,
    pub delivery: u32,
}

pub enum Command {
    Join {
        instance: InstanceId,
        types: EventTypes,
        /// The subscription's types as stored after this registration.
        owed_after: HashMap<String, i64>,
        deliveries: mpsc::UnboundedSender<Delivery>,
    },
    Leave {
        instance: InstanceId,
    },
    Ack {
        instance: InstanceId,
        positions: Vec<i64>,
    },
    Nack {
        instance: InstanceId,
        position: i64,
        reason: String,
    },
    Replay {
        position: i64,
    },
    /// Save progress and stop.
    Stop {
        done: oneshot::Sender<()>,
    },
}

struct Instance {
    types: EventTypes,
    deliveries: mpsc::UnboundedSender<Delivery>,
    in_flight: usize,
}

/// The result of a page read from the log.
struct PageRead {
    /// The writer's head when the read started: once the log is covered up
    /// to it, everything later comes with the writer's batches.
    head_at_start: i64,
    read: Result<store::events::PageRead, store::StoreError>,
}

type ReplaySender = mpsc::UnboundedSender<Result<Vec<EventRecord>, store::StoreError>>;
type ReplayReceiver = mpsc::UnboundedReceiver<Result<Vec<EventRecord>, store::StoreError>>;

const PAGE_SIZE: usize = 1000;
const TICK: Duration = Duration::from_millis(100);

pub struct Actor {
    client_type: String,
    pool: PgPool,
    writer: WriterHandle,
    config: DeliveryConfig,
    commands: mpsc::UnboundedReceiver<Command>,

    owed_after: HashMap<String, i64>,
    /// Every position at or below has been examined.
    cursor: i64,
    /// Following the writer's batches directly.
    live: bool,
    /// The newest batch end seen while not live.
    newest_seen: i64,
    reading: bool,
    pages: (
        mpsc::UnboundedSender<PageRead>,
        mpsc::UnboundedReceiver<PageRead>,
    ),
    replays: (ReplaySender, ReplayReceiver),

    keys: HashMap<String, KeyState>,
    held: usize,
    /// Held positions not yet acknowledged or parked: the watermark is just
    /// below the first.
    outstanding: BTreeSet<i64>,
    /// Acked or parked above the stored watermark (known after a restart).
    skip: HashSet<i64>,
    /// Failed deliveries of events not yet held (known after a restart).
    failures: HashMap<i64, u32>,
    in_flight: HashMap<i64, String>,
    ready: VecDeque<String>,
    backing_off: BinaryHeap<Reverse<(Instant, String)>>,
    instances: HashMap<InstanceId, Instance>,

    progress: Progress,
    saved_watermark: i64,
    saving: Option<tokio::task::JoinHandle<Result<(), store::StoreError>>>,
    in_save: Progress,
}

impl Actor {
    pub fn new(
        stored: StoredSubscription,
        pool: PgPool,
        writer: WriterHandle,
        config: DeliveryConfig,
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> Self {
        Self {
            client_type: stored.client_type,
            pool,
            writer,
            config,
            commands,
            owed_after: stored.owed_after,
            cursor: stored.acked_through,
            live: false,
            newest_seen: 0,
            reading: false,
            pages: mpsc::unbounded_channel(),
            replays: mpsc::unbounded_channel(),
            keys: HashMap::new(),
            held: 0,
            outstanding: BTreeSet::new(),
            // Replays come by their own path, not again through the cursor.
            skip: stored
                .acked_above
                .into_iter()
                .chain(stored.parked_above)
                .chain(stored.replays.iter().copied())
                .collect(),
            failures: stored.failures,
            in_flight: HashMap::new(),
            ready: VecDeque::new(),
            backing_off: BinaryHeap::new(),
            instances: HashMap::new(),
            progress: Progress::default(),
            saved_watermark: stored.acked_through,
            saving: None,
            in_save: Progress::default(),
        }
        .with_replays(stored.replays)
    }

    fn with_replays(self, replays: Vec<i64>) -> Self {
        if !replays.is_empty() {
            self.read_replays(replays);
        }
        self
    }

    /// Replayed events are read apart from the cursor's pages.
    fn read_replays(&self, positions: Vec<i64>) {
        let pool = self.pool.clone();
        let sender = self.replays.0.clone();
        tokio::spawn(async move {
            let _ = sender.send(store::events::read_positions(&pool, &positions).await);
        });
    }

    pub async fn run(mut self) {
        let mut committed = self.writer.subscribe();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Stop { done }) => {
                        self.stop().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(command) => self.handle(command),
                    None => {
                        self.stop().await;
                        return;
                    }
                },
                batch = committed.recv() => match batch {
                    Ok(batch) => self.on_batch(&batch),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.live = false,
                    Err(broadcast::error::RecvError::Closed) => {
                        self.stop().await;
                        return;
                    }
                },
                Some(page) = self.pages.1.recv() => self.on_page(page),
                Some(events) = self.replays.1.recv() => self.on_replay(events),
                _ = tick.tick() => self.on_tick(),
            }
            self.maybe_read();
            self.pump();
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Join {
                instance,
                types,
                owed_after,
                deliveries,
            } => {
                self.owed_after = owed_after;
                self.instances.insert(
                    instance,
                    Instance {
                        types,
                        deliveries,
                        in_flight: 0,
                    },
                );
                // Keys with nothing in flight may move to the newcomer.
                for state in self.keys.values_mut() {
                    if state.in_flight.is_none() {
                        state.instance = None;
                    }
                }
            }
            Command::Leave { instance } => self.leave(instance),
            Command::Ack {
                instance,
                positions,
            } => {
                for position in positions {
                    self.ack(instance, position);
                }
            }
            Command::Nack {
                instance,
                position,
                reason,
            } => {
                if self.holds(instance, position) {
                    metrics::counter!("bus_nacks_total").increment(1);
                    self.fail(position, reason);
                }
            }
            Command::Replay { position } => self.read_replays(vec![position]),
            Command::Stop { .. } => unreachable!("handled by run"),
        }
    }

    fn types(&self) -> EventTypes {
        if self.owed_after.contains_key("*") {
            return EventTypes::All;
        }
        EventTypes::Only(self.owed_after.keys().cloned().collect())
    }

    fn owes(&self, event: &EventRecord) -> bool {
        let after = |name: &str| {
            self.owed_after
                .get(name)
                .is_some_and(|&after| event.position > after)
        };
        after("*") || after(&event.event_type)
    }

    fn on_batch(&mut self, batch: &CommittedBatch) {
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
        if self.held >= self.config.max_held {
            self.live = false;
            self.newest_seen = self.cursor;
        }
    }

    /// Reads the next page of the log when behind, has room, and has an
    /// instance to deliver to.
    fn maybe_read(&mut self) {
        if self.live
            || self.reading
            || self.instances.is_empty()
            || self.held >= self.config.max_held / 2
        {
            return;
        }
        self.reading = true;
        let pool = self.pool.clone();
        let sender = self.pages.0.clone();
        let after = self.cursor;
        let types = self.types();
        let head_at_start = self.writer.head();
        tokio::spawn(async move {
            // Never past the writer's head: what lies beyond is not all
            // committed yet, and comes with the writer's batches anyway.
            let page = Page {
                after,
                through: head_at_start,
                types: &types,
                key: None,
                limit: PAGE_SIZE as i64,
            };
            let read = store::events::read_page(&pool, &page).await;
            let _ = sender.send(PageRead {
                head_at_start,
                read,
            });
        });
    }

    fn on_page(&mut self, page: PageRead) {
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

    fn on_replay(&mut self, events: Result<Vec<EventRecord>, store::StoreError>) {
        match events {
            Ok(events) => {
                for event in events {
                    self.hold(Arc::new(event), true);
                }
            }
            Err(error) => {
                tracing::warn!(client_type = %self.client_type, %error, "could not read a replayed event");
            }
        }
    }

    fn examine(&mut self, event: Arc<EventRecord>) {
        if self.skip.remove(&event.position) || !self.owes(&event) {
            return;
        }
        self.outstanding.insert(event.position);
        self.hold(event, false);
    }

    fn hold(&mut self, event: Arc<EventRecord>, replay: bool) {
        let deliveries = self.failures.remove(&event.position).unwrap_or(0);
        let key = event.consistency.key.clone();
        let state = self.keys.entry(key.clone()).or_default();
        state.queue.push_back(Held {
            event,
            deliveries,
            replay,
        });
        self.held += 1;
        if state.is_ready() && !state.in_ready {
            state.in_ready = true;
            self.ready.push_back(key);
        }
    }

    fn holds(&self, instance: InstanceId, position: i64) -> bool {
        self.in_flight
            .get(&position)
            .and_then(|key| self.keys.get(key))
            .and_then(|state| state.in_flight.as_ref())
            .is_some_and(|flight| flight.instance == instance)
    }

    /// Delivers what is ready to instances with room.
    fn pump(&mut self) {
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
            let held = state.queue.front_mut().expect("checked above");
            held.deliveries += 1;
            let delivery = Delivery {
                event: held.event.clone(),
                delivery: held.deliveries,
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

    fn ack(&mut self, instance: InstanceId, position: i64) {
        if !self.holds(instance, position) {
            return;
        }
        metrics::counter!("bus_acks_total").increment(1);
        let replay = self.finish(position);
        if replay {
            self.progress.replays_done.push(position);
        } else {
            self.progress.acked.push(position);
        }
    }

    /// Removes the in-flight head of `position`'s key; returns whether it
    /// was a replay.
    fn finish(&mut self, position: i64) -> bool {
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
        // With nothing unacknowledged the key may move: routing by hash
        // keeps it where it is unless an instance joined or left meanwhile.
        state.instance = None;
        let replay = held.as_ref().is_some_and(|held| held.replay);
        if !replay {
            self.outstanding.remove(&position);
        }
        if state.is_idle() {
            self.keys.remove(&key);
        } else if state.is_ready() && !state.in_ready {
            state.in_ready = true;
            self.ready.push_back(key);
        }
        replay
    }

    /// A nack or a timeout: back off, or park after `max_deliveries`.
    fn fail(&mut self, position: i64, reason: String) {
        let Some(key) = self.in_flight.get(&position).cloned() else {
            return;
        };
        let deliveries = self
            .keys
            .get(&key)
            .and_then(|state| state.queue.front())
            .map_or(0, |held| held.deliveries);
        if deliveries >= self.config.max_deliveries {
            tracing::warn!(client_type = %self.client_type, position, deliveries, %reason, "parking an event");
            metrics::counter!("bus_parked_total").increment(1);
            let replay = self.finish(position);
            if replay {
                self.progress.replays_done.push(position);
            }
            self.progress.parked.push((position, deliveries, reason));
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

    fn leave(&mut self, instance: InstanceId) {
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

    fn on_tick(&mut self) {
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
        self.save();
    }

    fn watermark(&self) -> i64 {
        self.outstanding
            .first()
            .map_or(self.cursor, |first| first - 1)
    }

    /// Starts saving progress in the background, one save at a time.
    fn save(&mut self) {
        if let Some(saving) = &self.saving {
            if !saving.is_finished() {
                return;
            }
            let saving = self.saving.take().expect("checked above");
            let in_save = std::mem::take(&mut self.in_save);
            match futures_util::FutureExt::now_or_never(saving) {
                Some(Ok(Ok(()))) => self.saved_watermark = in_save.acked_through,
                other => {
                    tracing::warn!(client_type = %self.client_type, ?other, "could not save delivery progress; retrying");
                    self.progress = merge(in_save, std::mem::take(&mut self.progress));
                }
            }
        }
        let watermark = self.watermark();
        if self.progress.is_empty() && watermark == self.saved_watermark {
            return;
        }
        let mut progress = std::mem::take(&mut self.progress);
        progress.acked_through = watermark;
        self.in_save = progress.clone();
        let pool = self.pool.clone();
        let client_type = self.client_type.clone();
        self.saving = Some(tokio::spawn(async move {
            store::subscriptions::save_progress(&pool, &client_type, &progress).await
        }));
    }

    async fn stop(&mut self) {
        for _ in 0..50 {
            if let Some(saving) = self.saving.take() {
                let result = saving.await;
                let in_save = std::mem::take(&mut self.in_save);
                match result {
                    Ok(Ok(())) => self.saved_watermark = in_save.acked_through,
                    _ => self.progress = merge(in_save, std::mem::take(&mut self.progress)),
                }
            }
            self.save();
            if self.saving.is_none() {
                return;
            }
        }
    }
}

/// Progress that failed to save, with what came after it.
fn merge(mut earlier: Progress, later: Progress) -> Progress {
    earlier.acked.extend(later.acked);
    earlier.failed.extend(later.failed);
    earlier.parked.extend(later.parked);
    earlier.replays_done.extend(later.replays_done);
    earlier.acked_through = later.acked_through.max(earlier.acked_through);
    earlier
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
