//! The single writer: every `new` message of every connection goes through
//! it, and it commits them in groups.
//!
//! Requests that arrive while a commit is in flight wait in the channel and
//! are taken together as the next group: one INSERT and one fsync for many
//! messages. Consistency values live in memory (loaded at start) and are
//! checked without a database round trip; the receipts are sent only after
//! the group's commit, and the committed events go to delivery from memory.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        Arc, RwLock,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sqlx::PgPool;
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

mod receipts;

use receipts::{duplicate_receipt, inconsistent_receipt, success_receipt, unavailable};

use crate::{
    protocol::{Consistency, ConsistencyValue, EventRecord, NewEvent, Receipt},
    store::{
        self,
        events::{LogState, StoredId},
    },
};

/// The most events one group commits.
const MAX_GROUP_EVENTS: usize = 10_000;

/// A `new` message on its way to the log.
pub struct AppendRequest {
    pub request_id: String,
    pub events: Vec<NewEvent>,
    pub reply: oneshot::Sender<Receipt>,
}

/// Events committed together, in position order: `first..=last`.
#[derive(Debug)]
pub struct CommittedBatch {
    pub first: i64,
    pub last: i64,
    pub events: Vec<Arc<EventRecord>>,
}

/// What the rest of the bus sees of the writer.
#[derive(Clone)]
pub struct WriterHandle {
    requests: mpsc::Sender<AppendRequest>,
    head: Arc<AtomicI64>,
    key_values: Arc<RwLock<HashMap<String, i64>>>,
    committed: broadcast::Sender<Arc<CommittedBatch>>,
}

impl WriterHandle {
    /// Queues a message; the receipt comes on `reply`. Errs when the writer
    /// has stopped (the bus is shutting down).
    pub async fn append(&self, request: AppendRequest) -> Result<(), AppendRequest> {
        self.requests.send(request).await.map_err(|error| error.0)
    }

    /// The position of the newest committed event (0 when none).
    pub fn head(&self) -> i64 {
        self.head.load(Ordering::Acquire)
    }

    /// The last committed value of each key (`None`: no event yet).
    pub fn values(&self, keys: &[String]) -> Vec<Option<i64>> {
        let values = self
            .key_values
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        keys.iter().map(|key| values.get(key).copied()).collect()
    }

    /// Every batch committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CommittedBatch>> {
        self.committed.subscribe()
    }
}

/// Starts the writer from the log's state. It stops when every handle is
/// dropped, after committing what it holds.
pub fn spawn(pool: PgPool, state: LogState) -> (WriterHandle, tokio::task::JoinHandle<()>) {
    let (requests, receiver) = mpsc::channel(16_384);
    let (committed, _) = broadcast::channel(4096);
    let head = Arc::new(AtomicI64::new(state.head));
    let key_values = Arc::new(RwLock::new(state.key_values));
    let writer = Writer {
        pool,
        receiver,
        head: head.clone(),
        key_values: key_values.clone(),
        committed: committed.clone(),
        last_timestamp: state.last_timestamp,
        needs_reload: false,
    };
    let task = tokio::spawn(writer.run());
    (
        WriterHandle {
            requests,
            head,
            key_values,
            committed,
        },
        task,
    )
}

struct Writer {
    pool: PgPool,
    receiver: mpsc::Receiver<AppendRequest>,
    head: Arc<AtomicI64>,
    key_values: Arc<RwLock<HashMap<String, i64>>>,
    committed: broadcast::Sender<Arc<CommittedBatch>>,
    last_timestamp: Option<DateTime<Utc>>,
    /// After a failure whose outcome is unknown, the state is reloaded from
    /// the database before the next group.
    needs_reload: bool,
}

/// What becomes of one request in a group.
enum Plan {
    /// Stored at `records[range]`.
    Accepted(std::ops::Range<usize>),
    /// Answered without storing anything.
    Answered(Receipt),
    /// A stale value, but the message may be a resend: look its ids up.
    MaybeDuplicate,
}

impl Writer {
    async fn run(mut self) {
        let mut deferred: VecDeque<AppendRequest> = VecDeque::new();
        loop {
            let mut group: Vec<AppendRequest> = deferred.drain(..).collect();
            if group.is_empty() {
                match self.receiver.recv().await {
                    Some(request) => group.push(request),
                    None => break,
                }
            }
            let mut events: usize = group.iter().map(|r| r.events.len()).sum();
            while events < MAX_GROUP_EVENTS {
                match self.receiver.try_recv() {
                    Ok(request) => {
                        events += request.events.len();
                        group.push(request);
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(group, &mut deferred).await;
        }
        tracing::info!("writer stopped");
    }

    async fn commit_group(
        &mut self,
        group: Vec<AppendRequest>,
        deferred: &mut VecDeque<AppendRequest>,
    ) {
        if self.needs_reload && !self.reload().await {
            for request in group {
                let receipt = unavailable(&request);
                let _ = request.reply.send(receipt);
            }
            return;
        }
        // A message whose event id is already in this group is a resend of a
        // message not yet committed: it waits for the next group, where it
        // will be found stored.
        let mut group_ids = HashSet::new();
        let mut requests = Vec::with_capacity(group.len());
        for request in group {
            let ids: Vec<Uuid> = request.events.iter().filter_map(|e| e.event_id).collect();
            if ids.iter().any(|id| group_ids.contains(id)) {
                deferred.push_back(request);
            } else {
                group_ids.extend(ids);
                requests.push(request);
            }
        }

        // Ids looked up in the log, and those of them found stored.
        let mut checked: HashSet<Uuid> = HashSet::new();
        let mut known: HashMap<Uuid, StoredId> = HashMap::new();
        let timestamp = self.next_timestamp();
        loop {
            let (plans, records, values) = self.plan(&requests, &known, &checked, timestamp);
            let to_check: Vec<Uuid> = requests
                .iter()
                .zip(&plans)
                .filter(|(_, plan)| matches!(plan, Plan::MaybeDuplicate))
                .flat_map(|(request, _)| request.events.iter().filter_map(|e| e.event_id))
                .collect();
            if !to_check.is_empty() {
                match self.find_ids(&to_check).await {
                    Ok(found) => {
                        checked.extend(to_check);
                        known.extend(found);
                        continue;
                    }
                    Err(error) => return self.fail(requests, error),
                }
            }

            match self.insert(&records).await {
                Ok(()) => {
                    self.publish(requests, plans, records, values);
                    return;
                }
                Err(error) if is_event_id_conflict(&error) => {
                    // A resend of a message stored earlier: find which, and
                    // plan the group again without them.
                    let ids: Vec<Uuid> = requests
                        .iter()
                        .flat_map(|request| request.events.iter().filter_map(|e| e.event_id))
                        .filter(|id| !checked.contains(id))
                        .collect();
                    match self.find_ids(&ids).await {
                        Ok(found) if !found.is_empty() => {
                            checked.extend(ids);
                            known.extend(found);
                        }
                        Ok(_) => return self.fail(requests, error),
                        Err(error) => return self.fail(requests, error),
                    }
                }
                Err(error) => return self.fail(requests, error),
            }
        }
    }

    /// Decides each request against the committed values and the ones
    /// earlier requests of the group take.
    fn plan(
        &self,
        requests: &[AppendRequest],
        known: &HashMap<Uuid, StoredId>,
        checked: &HashSet<Uuid>,
        timestamp: DateTime<Utc>,
    ) -> (Vec<Plan>, Vec<EventRecord>, HashMap<String, i64>) {
        let committed = self
            .key_values
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut group_values: HashMap<String, i64> = HashMap::new();
        let mut records: Vec<EventRecord> = Vec::new();
        let mut plans = Vec::with_capacity(requests.len());
        let mut position = self.head.load(Ordering::Acquire);

        for request in requests {
            if let Some(receipt) = duplicate_receipt(request, known) {
                plans.push(Plan::Answered(receipt));
                continue;
            }
            let current = |key: &str, own: &HashMap<&str, i64>| {
                own.get(key)
                    .or_else(|| group_values.get(key))
                    .or_else(|| committed.get(key))
                    .copied()
            };
            let mut own: HashMap<&str, i64> = HashMap::new();
            let mut assigned = Vec::with_capacity(request.events.len());
            let mut stale = false;
            for event in &request.events {
                let key = event.consistency.key.as_str();
                let next = current(key, &own).map_or(0, |value| value + 1);
                let value = match event.consistency.value {
                    ConsistencyValue::Explicit(value) if value != next => {
                        stale = true;
                        value
                    }
                    _ => next,
                };
                own.insert(key, value);
                assigned.push(value);
            }
            if stale {
                let unchecked = request
                    .events
                    .iter()
                    .filter_map(|e| e.event_id)
                    .any(|id| !checked.contains(&id));
                if unchecked {
                    plans.push(Plan::MaybeDuplicate);
                } else {
                    let mut before: HashMap<&str, Option<i64>> = HashMap::new();
                    for event in &request.events {
                        let key = event.consistency.key.as_str();
                        before
                            .entry(key)
                            .or_insert_with(|| current(key, &HashMap::new()));
                    }
                    plans.push(Plan::Answered(inconsistent_receipt(request, &before)));
                }
                continue;
            }
            let start = records.len();
            for (event, value) in request.events.iter().zip(assigned) {
                position += 1;
                records.push(EventRecord {
                    position,
                    event_id: event.event_id.unwrap_or_else(Uuid::now_v7),
                    event_type: event.event_type.clone(),
                    consistency: Consistency {
                        key: event.consistency.key.clone(),
                        value: ConsistencyValue::Explicit(value),
                    },
                    correlation_id: event.correlation_id.unwrap_or_else(Uuid::now_v7),
                    causation_id: event.causation_id,
                    timestamp,
                    data: event.data.clone(),
                });
            }
            for (key, value) in own {
                group_values.insert(key.to_owned(), value);
            }
            plans.push(Plan::Accepted(start..records.len()));
        }
        (plans, records, group_values)
    }

    async fn insert(&self, records: &[EventRecord]) -> Result<(), sqlx::Error> {
        if records.is_empty() {
            return Ok(());
        }
        let mut connection = self.pool.acquire().await?;
        store::events::append(&mut connection, records).await
    }

    async fn find_ids(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, StoredId>, sqlx::Error> {
        let mut connection = self.pool.acquire().await?;
        store::events::find_ids(&mut connection, ids).await
    }

    /// After the commit: the new state, the receipts, then delivery.
    fn publish(
        &mut self,
        requests: Vec<AppendRequest>,
        plans: Vec<Plan>,
        records: Vec<EventRecord>,
        values: HashMap<String, i64>,
    ) {
        if let Some(last) = records.last() {
            self.key_values
                .write()
                .unwrap_or_else(|poison| poison.into_inner())
                .extend(values);
            self.head.store(last.position, Ordering::Release);
            self.last_timestamp = Some(last.timestamp);
            metrics::counter!("bus_events_appended_total").increment(records.len() as u64);
            metrics::histogram!("bus_group_commit_events").record(records.len() as f64);
        }
        for (request, plan) in requests.into_iter().zip(plans) {
            let receipt = match plan {
                Plan::Accepted(range) => success_receipt(&request.request_id, &records[range]),
                Plan::Answered(receipt) => receipt,
                // Every such plan was looked up and decided before the insert.
                Plan::MaybeDuplicate => unavailable(&request),
            };
            let _ = request.reply.send(receipt);
        }
        if let (Some(first), Some(last)) = (records.first(), records.last()) {
            let batch = CommittedBatch {
                first: first.position,
                last: last.position,
                events: records.into_iter().map(Arc::new).collect(),
            };
            // No receiver is fine: nobody is listening yet.
            let _ = self.committed.send(Arc::new(batch));
        }
    }

    fn fail(&mut self, requests: Vec<AppendRequest>, error: sqlx::Error) {
        tracing::error!(%error, "could not store a group of events; reloading the log state");
        metrics::counter!("bus_append_failures_total").increment(1);
        self.needs_reload = true;
        for request in requests {
            let receipt = unavailable(&request);
            let _ = request.reply.send(receipt);
        }
    }

    /// Reloads head and values from the database, whose writes may have
    /// succeeded although we saw an error. False while it is unreachable.
    async fn reload(&mut self) -> bool {
        let previous_head = self.head.load(Ordering::Acquire);
        let state = match store::events::load_state(&self.pool).await {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(%error, "the database is still unavailable");
                tokio::time::sleep(Duration::from_millis(100)).await;
                return false;
            }
        };
        // A commit whose answer was lost may have happened after all: its
        // events must still reach delivery, or observers and idle
        // subscriptions would never see them.
        if state.head > previous_head && !self.deliver_stored(previous_head, state.head).await {
            return false;
        }
        *self
            .key_values
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = state.key_values;
        self.head.store(state.head, Ordering::Release);
        self.last_timestamp = state.last_timestamp;
        self.needs_reload = false;
        true
    }

    /// Sends the events in `(after, through]`, read back from the log, to
    /// delivery as committed batches.
    async fn deliver_stored(&self, after: i64, through: i64) -> bool {
        let mut from = after;
        while from < through {
            let page = store::events::Page {
                after: from,
                through,
                types: &crate::protocol::EventTypes::All,
                key: None,
                limit: MAX_GROUP_EVENTS as i64,
            };
            let read = match store::events::read_page(&self.pool, &page).await {
                Ok(read) => read,
                Err(error) => {
                    tracing::warn!(%error, "could not read back events of an uncertain commit");
                    return false;
                }
            };
            if let (Some(first), Some(last)) = (read.events.first(), read.events.last()) {
                let batch = CommittedBatch {
                    first: first.position,
                    last: last.position,
                    events: read.events.into_iter().map(Arc::new).collect(),
                };
                let _ = self.committed.send(Arc::new(batch));
            }
            from = read.covered_through;
        }
        true
    }

    /// Now, at microsecond precision (what Postgres keeps), never before the
    /// previous group's timestamp.
    fn next_timestamp(&self) -> DateTime<Utc> {
        let now = Utc::now()
            .duration_trunc(TimeDelta::microseconds(1))
            .unwrap_or_else(|_| Utc::now());
        self.last_timestamp.map_or(now, |last| now.max(last))
    }
}

fn is_event_id_conflict(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.constraint())
        .is_some_and(|constraint| constraint == "events_event_id_unique")
}
