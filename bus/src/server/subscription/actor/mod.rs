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
//! - `intake`: what it owes, from batches, pages and replays.
//! - `delivery`: routing to instances, acks, nacks, timeouts, parking.
//! - `progress`: saving the watermark and what happened since.

mod delivery;
mod intake;
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
    /// Where the page read in flight ends (its types fixed when it started).
    reading_through: i64,
    pages: (
        mpsc::UnboundedSender<PageRead>,
        mpsc::UnboundedReceiver<PageRead>,
    ),
    replays: (ReplaySender, ReplayReceiver),

    keys: HashMap<String, KeyState>,
    held: usize,
    /// Of those, the ones no connected instance takes (counted each tick).
    stranded: usize,
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
            reading_through: 0,
            pages: mpsc::unbounded_channel(),
            replays: mpsc::unbounded_channel(),
            keys: HashMap::new(),
            held: 0,
            stranded: 0,
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
}
