//! One consume-mode subscription (one client type), run as a task that owns
//! all of its delivery state; instances and the writer talk to it by message.
//!
//! Events come from the writer's committed batches while the subscription
//! keeps up ("live"), and from pages of the log when it does not (after a
//! restart, a gap, or while it holds too much). Either way the subscription
//! examines the log in position order up to `cursor`, and holds what it owes
//! in per-key queues until acknowledged. Its acknowledgement watermark and
//! the acks above it are saved periodically, well within a second.
//!
//! A parked event blocks its key (protocol v1.1): the key's later events
//! are recorded as blocked instead of held, until staff replay or skip the
//! parked one; then they are read back and delivered, in order.
//!
//! - `intake`: what it owes, from batches, pages and released events.
//! - `delivery`: routing to instances, acks, nacks, timeouts, parking.
//! - `progress`: saving the watermark and what happened since.

mod delivery;
mod intake;
mod parking;
mod progress;

use std::{
    cmp::Reverse,
    collections::{BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use sqlx::PgPool;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::keys::{InstanceId, KeyState};
use crate::{
    protocol::{EventRecord, EventTypes},
    server::{config::DeliveryConfig, writer::WriterHandle},
    store::{
        self,
        parking::DecisionRecord,
        subscriptions::{Progress, StoredReplay, StoredSubscription},
    },
};

/// A delivery to one instance.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event: Arc<EventRecord>,
    pub delivery: u32,
    /// Staff skipped it: the instance steps over it, applying nothing.
    pub skipped: bool,
}

pub enum Command {
    Join {
        instance: InstanceId,
        types: EventTypes,
        skip_markers: bool,
        /// The subscription's types as stored after this registration.
        owed_after: HashMap<String, i64>,
        deliveries: mpsc::UnboundedSender<Delivery>,
        /// Answered once the subscription takes the registration's types.
        joined: oneshot::Sender<()>,
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
    /// A staff decision on a parked event; answered with the number of
    /// held events it released, `None` when the event is not parked.
    Decide {
        position: i64,
        record: DecisionRecord,
        reply: oneshot::Sender<Result<Option<usize>, store::StoreError>>,
    },
    /// How many instances are connected and how many events they hold.
    Instances {
        reply: oneshot::Sender<Occupancy>,
    },
    /// Save progress and stop.
    Stop {
        done: oneshot::Sender<()>,
    },
}

/// What a running subscription has in memory now, for staff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Occupancy {
    /// Instances registered in consume mode and not gone.
    pub instances: usize,
    /// Events delivered to them and not yet acknowledged (nor nacked or
    /// timed out).
    pub in_flight: usize,
}

struct Instance {
    types: EventTypes,
    deliveries: mpsc::UnboundedSender<Delivery>,
    in_flight: usize,
    /// Wants events staff skipped, marked (else they are settled unseen).
    skip_markers: bool,
}

/// The result of a page read from the log.
struct PageRead {
    /// The writer's head when the read started: once the log is covered up
    /// to it, everything later comes with the writer's batches.
    head_at_start: i64,
    read: Result<store::events::PageRead, store::StoreError>,
}

/// A page of one key's released events, read back from the log.
struct ReleaseRead {
    key: String,
    positions: Vec<i64>,
    read: Result<Vec<EventRecord>, store::StoreError>,
}

/// Released events are read (and held) this many at a time.
const RELEASE_PAGE: usize = 1000;

const PAGE_SIZE: usize = 1000;

/// Events of one key a staff decision released, in position order.
#[derive(Debug, Clone)]
pub(super) struct Release {
    key: String,
    positions: Vec<i64>,
    /// The one staff skipped, if any.
    skipped: Option<i64>,
}
/// Bytes of held events past which a subscription stops taking live events
/// (and reads the log in pages instead), whatever their count.
const MAX_HELD_BYTES: usize = 64 * 1024 * 1024;

/// What an event held in memory weighs, roughly.
fn weight(event: &EventRecord) -> usize {
    event.data.get().len() + event.consistency.key.len() + event.event_type.len() + 160
}
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
    /// Where the page read in flight ends (its types fixed when it started).
    reading_through: i64,
    pages: (
        mpsc::UnboundedSender<PageRead>,
        mpsc::UnboundedReceiver<PageRead>,
    ),
    releases: (
        mpsc::UnboundedSender<ReleaseRead>,
        mpsc::UnboundedReceiver<ReleaseRead>,
    ),
    /// Keys whose release read failed, tried again at the next tick.
    failed_releases: Vec<String>,

    keys: HashMap<String, KeyState>,
    /// Keys with a parked event, and its position: their later events are
    /// blocked, not held.
    blocking: HashMap<String, i64>,
    held: usize,
    /// What the held events weigh, roughly: memory follows this, not the count.
    held_bytes: usize,
    /// Of those, the ones no connected instance takes (counted each tick).
    stranded: usize,
    /// Held positions not yet acknowledged or parked: the watermark is just
    /// below the first.
    outstanding: BTreeSet<i64>,
    /// Acked, parked, blocked or to be released above the stored watermark
    /// (known after a restart): the cursor passes them by.
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
            reading_through: 0,
            pages: mpsc::unbounded_channel(),
            releases: mpsc::unbounded_channel(),
            failed_releases: Vec::new(),
            keys: HashMap::new(),
            blocking: stored.blocking,
            held: 0,
            held_bytes: 0,
            stranded: 0,
            outstanding: BTreeSet::new(),
            // Released events come by their own path, not again through the cursor.
            skip: stored
                .acked_above
                .into_iter()
                .chain(stored.settled_above)
                .chain(stored.replays.iter().map(|replay| replay.position))
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

    fn with_replays(mut self, replays: Vec<StoredReplay>) -> Self {
        let mut by_key: HashMap<String, Release> = HashMap::new();
        for replay in replays {
            let release = by_key.entry(replay.key.clone()).or_insert_with(|| Release {
                key: replay.key,
                positions: Vec::new(),
                skipped: None,
            });
            release.positions.push(replay.position);
            if replay.skipped {
                release.skipped = Some(replay.position);
            }
        }
        for release in by_key.into_values() {
            self.release(release);
        }
        self
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
                    Some(Command::Decide { position, record, reply }) => {
                        let _ = reply.send(self.decide(position, record).await);
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
                Some(read) = self.releases.1.recv() => self.on_release(read),
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
                skip_markers,
                owed_after,
                deliveries,
                joined,
            } => {
                self.take_types(owed_after);
                let _ = joined.send(());
                self.instances.insert(
                    instance,
                    Instance {
                        types,
                        deliveries,
                        in_flight: 0,
                        skip_markers,
                    },
                );
                // Keys may move to the newcomer: now if nothing of theirs is
                // in flight, else once that is acknowledged.
                for state in self.keys.values_mut() {
                    if state.in_flight.is_none() {
                        state.instance = None;
                    } else {
                        state.may_move = true;
                    }
                }
            }
            Command::Leave { instance } => self.leave(instance),
            Command::Instances { reply } => {
                let _ = reply.send(Occupancy {
                    instances: self.instances.len(),
                    in_flight: self.in_flight.len(),
                });
            }
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
            Command::Decide { .. } | Command::Stop { .. } => unreachable!("handled by run"),
        }
    }
}
