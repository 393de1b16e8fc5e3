//! The single writer: every `new` message of every connection goes through
//! it, and it commits them in groups.
//!
//! Requests that arrive while a commit is in flight wait in the channel and
//! are taken together as the next group: one `COPY` and one fsync for many
//! messages. The writer has a database connection of its own, so a busy
//! query or subscription pool never holds up a commit. Consistency values
//! come from a bounded cache (`key_values`), and keys it does not hold are
//! looked up by index, one round trip per group. Receipts are sent only
//! after the group's commit, and the committed events go to delivery from
//! memory.
//!
//! When the database fails during a group, the writer cannot tell whether
//! the commit happened: every request of the group is answered `unknown`,
//! the connection is dropped, and before the next group the writer reads
//! the log's head again (delivering what was stored after all) and forgets
//! its cached values.

mod key_values;
mod plan;
pub(crate) mod receipts;

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sqlx::{Connection, PgConnection, PgPool, postgres::PgConnectOptions};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot};
use uuid::Uuid;

pub use key_values::DEFAULT_CAPACITY as DEFAULT_KEY_CACHE;
use key_values::KeyValues;
use plan::{Knowledge, Plan, Planned, plan};
use receipts::{success_receipt, unknown};

use crate::{
    protocol::{ErrorCode, EventRecord, EventTypes, NewEvent, Receipt},
    store::{
        self,
        events::{LogHead, StoredId},
    },
};

/// The most events one group commits, and (beyond its first message) the
/// most bytes: a committed batch stays in memory while receivers follow it.
const MAX_GROUP_EVENTS: usize = 10_000;
const MAX_GROUP_BYTES: usize = 4 * 1024 * 1024;
/// Committed batches kept for receivers that follow the writer (the
/// subscriptions and observers); one that falls further behind reads the
/// log instead (a subscription) or is closed (an observer).
const COMMITTED_BATCHES: usize = 1024;
/// Bytes of `new` messages waiting for the writer, over all connections:
/// past this, connections wait before they hand the writer more.
const MAX_INTAKE_BYTES: usize = 64 * 1024 * 1024;
/// How long connecting to the database may take before a group is
/// answered `unknown`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Between tries to read the head again after a failure.
const RELOAD_PAUSE: Duration = Duration::from_millis(100);

/// A `new` message on its way to the log.
pub struct AppendRequest {
    pub request_id: String,
    pub events: Vec<NewEvent>,
    /// Who sent it, stored with each of its events: the connection's
    /// credential name and peer address, `NAME@IP:PORT`.
    pub published_by: Arc<str>,
    pub reply: oneshot::Sender<Receipt>,
    /// Its share of the writer's intake, given back once it is answered.
    pub intake: OwnedSemaphorePermit,
}

impl AppendRequest {
    /// What its events' data weigh.
    fn bytes(&self) -> usize {
        self.events.iter().map(|event| event.data.get().len()).sum()
    }
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
    requests: mpsc::UnboundedSender<AppendRequest>,
    intake: Arc<Semaphore>,
    head: Arc<AtomicI64>,
    key_values: Arc<KeyValues>,
    pool: PgPool,
    committed: broadcast::Sender<Arc<CommittedBatch>>,
}

impl WriterHandle {
    /// Waits for room in the writer's intake for a message of `bytes`.
    pub async fn reserve(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let permits = bytes.clamp(1, MAX_INTAKE_BYTES) as u32;
        self.intake.clone().acquire_many_owned(permits).await.ok()
    }

    /// Queues a message; the receipt comes on `reply`. Errs when the writer
    /// has stopped (the bus is shutting down).
    pub fn append(&self, request: AppendRequest) -> Result<(), AppendRequest> {
        self.requests.send(request).map_err(|error| error.0)
    }

    /// The position of the newest committed event (0 when none).
    pub fn head(&self) -> i64 {
        self.head.load(Ordering::Acquire)
    }

    /// The last committed value of each key (`None`: no event yet): from
    /// the writer's cache, or from the log's index.
    pub async fn values(&self, keys: &[String]) -> Result<Vec<Option<i64>>, sqlx::Error> {
        let peeked = self.key_values.peek(keys.iter().map(String::as_str));
        let mut known = peeked.known;
        if !peeked.missing.is_empty() {
            let missing: Vec<&str> = peeked.missing.iter().map(String::as_str).collect();
            let found = store::events::last_values(&self.pool, &missing).await?;
            for key in peeked.missing {
                let value = found.get(&key).copied();
                known.insert(key, value);
            }
        }
        Ok(keys
            .iter()
            .map(|key| known.get(key).copied().flatten())
            .collect())
    }

    /// Every batch committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CommittedBatch>> {
        self.committed.subscribe()
    }
}

/// Starts the writer on a connection of its own. It stops when every
/// handle is dropped, after committing what it holds.
pub async fn spawn(
    options: PgConnectOptions,
    pool: PgPool,
    key_cache: usize,
) -> Result<(WriterHandle, tokio::task::JoinHandle<()>), sqlx::Error> {
    let options = options.application_name("bus-writer");
    let mut connection = PgConnection::connect_with(&options).await?;
    let head = store::events::load_head(&mut connection).await?;
    tracing::info!(head = head.head, "the log ends here");
    let (requests, receiver) = mpsc::unbounded_channel();
    let (committed, _) = broadcast::channel(COMMITTED_BATCHES);
    let head_position = Arc::new(AtomicI64::new(head.head));
    let key_values = Arc::new(KeyValues::new(key_cache));
    let writer = Writer {
        options,
        connection: Some(connection),
        receiver,
        head: head_position.clone(),
        key_values: key_values.clone(),
        committed: committed.clone(),
        last_timestamp: head.last_timestamp,
        needs_reload: false,
    };
    let task = tokio::spawn(writer.run());
    let handle = WriterHandle {
        requests,
        intake: Arc::new(Semaphore::new(MAX_INTAKE_BYTES)),
        head: head_position,
        key_values,
        pool,
        committed,
    };
    Ok((handle, task))
}

struct Writer {
    options: PgConnectOptions,
    /// `None` after a failure: reconnected before the next group.
    connection: Option<PgConnection>,
    receiver: mpsc::UnboundedReceiver<AppendRequest>,
    head: Arc<AtomicI64>,
    key_values: Arc<KeyValues>,
    committed: broadcast::Sender<Arc<CommittedBatch>>,
    last_timestamp: Option<DateTime<Utc>>,
    /// After a failure whose outcome is unknown, the head is read again
    /// before the next group.
    needs_reload: bool,
}

impl Writer {
    async fn run(mut self) {
        let mut deferred: VecDeque<AppendRequest> = VecDeque::new();
        loop {
            let mut group: Vec<AppendRequest> = deferred.drain(..).collect();
            while group.is_empty() {
                // After a failure, the head is read again without waiting
                // for the next message: what an uncertain commit stored
                // reaches delivery and queries as soon as the database is back.
                if self.needs_reload {
                    tokio::select! {
                        request = self.receiver.recv() => match request {
                            Some(request) => group.push(request),
                            None => return self.stopped().await,
                        },
                        () = tokio::time::sleep(RELOAD_PAUSE) => {
                            if let Err(error) = self.reload().await {
                                tracing::warn!(%error, "the database is still unavailable");
                            }
                        }
                    }
                } else {
                    match self.receiver.recv().await {
                        Some(request) => group.push(request),
                        None => return self.stopped().await,
                    }
                }
            }
            let mut events: usize = group.iter().map(|r| r.events.len()).sum();
            let mut bytes: usize = group.iter().map(AppendRequest::bytes).sum();
            while events < MAX_GROUP_EVENTS && bytes < MAX_GROUP_BYTES {
                match self.receiver.try_recv() {
                    Ok(request) => {
                        events += request.events.len();
                        bytes += request.bytes();
                        group.push(request);
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(group, &mut deferred).await;
        }
    }

    async fn stopped(mut self) {
        if let Some(connection) = self.connection.take() {
            let _ = connection.close().await;
        }
        tracing::info!("writer stopped");
    }

    /// The writer's connection, opened again after a failure.
    async fn connection(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        if self.connection.is_none() {
            let connecting = PgConnection::connect_with(&self.options);
            let connection = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??;
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("connected above"))
    }

    async fn commit_group(
        &mut self,
        group: Vec<AppendRequest>,
        deferred: &mut VecDeque<AppendRequest>,
    ) {
        if self.needs_reload
            && let Err(error) = self.reload().await
        {
            tracing::warn!(%error, "the database is still unavailable");
            return self.answer_unknown(group);
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

        let before = match self.values_before(&requests).await {
            Ok(before) => before,
            Err(error) => return self.fail(requests, error),
        };
        // Ids looked up in the log, and those of them found stored.
        let mut checked: HashSet<Uuid> = HashSet::new();
        let mut stored: HashMap<Uuid, StoredId> = HashMap::new();
        let timestamp = self.next_timestamp();
        loop {
            let planned = plan(
                &requests,
                &Knowledge {
                    before: &before,
                    stored: &stored,
                    checked: &checked,
                    head: self.head.load(Ordering::Acquire),
                    timestamp,
                },
            );
            let to_check: Vec<Uuid> = requests
                .iter()
                .zip(&planned.plans)
                .filter(|(_, plan)| matches!(plan, Plan::MaybeDuplicate))
                .flat_map(|(request, _)| request.events.iter().filter_map(|e| e.event_id))
                .collect();
            if !to_check.is_empty() {
                match self.find_ids(&to_check).await {
                    Ok(found) => {
                        checked.extend(to_check);
                        stored.extend(found);
                        continue;
                    }
                    Err(error) => return self.fail(requests, error),
                }
            }

            match self.insert(&planned.records).await {
                Ok(()) => return self.publish(requests, planned),
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
                            stored.extend(found);
                        }
                        Ok(_) => return self.fail(requests, error),
                        Err(error) => return self.fail(requests, error),
                    }
                }
                Err(error) => return self.fail(requests, error),
            }
        }
    }

    /// Each key's value before the group: cached, or read from the index.
    async fn values_before(
        &mut self,
        requests: &[AppendRequest],
    ) -> Result<HashMap<String, Option<i64>>, sqlx::Error> {
        let keys = requests
            .iter()
            .flat_map(|request| request.events.iter().map(|e| e.consistency.key.as_str()));
        let peeked = self.key_values.get(keys);
        let mut before = peeked.known;
        if peeked.missing.is_empty() {
            return Ok(before);
        }
        let missing: Vec<&str> = peeked.missing.iter().map(String::as_str).collect();
        let found = store::events::last_values(self.connection().await?, &missing).await?;
        let looked_up: Vec<(String, Option<i64>)> = peeked
            .missing
            .into_iter()
            .map(|key| {
                let value = found.get(&key).copied();
                (key, value)
            })
            .collect();
        // Nothing of this writer's is in flight: these are the current values.
        self.key_values.put(looked_up.iter().cloned());
        before.extend(looked_up);
        Ok(before)
    }

    async fn insert(&mut self, records: &[EventRecord]) -> Result<(), sqlx::Error> {
        if records.is_empty() {
            return Ok(());
        }
        store::events::append(self.connection().await?, records).await
    }

    async fn find_ids(&mut self, ids: &[Uuid]) -> Result<HashMap<Uuid, StoredId>, sqlx::Error> {
        store::events::find_ids(self.connection().await?, ids).await
    }

    /// After the commit: the new state, the receipts, then delivery.
    fn publish(&mut self, requests: Vec<AppendRequest>, planned: Planned) {
        let Planned {
            plans,
            records,
            values,
        } = planned;
        if let Some(last) = records.last() {
            self.key_values
                .put(values.into_iter().map(|(key, value)| (key, Some(value))));
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
                Plan::MaybeDuplicate => unknown(&request.request_id, ErrorCode::Unavailable),
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

    /// The database failed while the group was with the writer: whether
    /// anything was stored is unknown, so every answer says so.
    fn fail(&mut self, requests: Vec<AppendRequest>, error: sqlx::Error) {
        tracing::error!(%error, "the database failed during a group of events; its outcome is unknown");
        metrics::counter!("bus_append_failures_total").increment(1);
        self.needs_reload = true;
        self.connection = None;
        // Values cached may be behind what the uncertain commit stored.
        self.key_values.clear();
        self.answer_unknown(requests);
    }

    fn answer_unknown(&self, requests: Vec<AppendRequest>) {
        for request in requests {
            let receipt = unknown(&request.request_id, ErrorCode::Unavailable);
            let _ = request.reply.send(receipt);
        }
    }

    /// Reads the head again, from a database whose writes may have
    /// succeeded although we saw an error. Any failure drops the
    /// connection, so the next try opens a new one.
    async fn reload(&mut self) -> Result<(), sqlx::Error> {
        let reloaded = self.try_reload().await;
        if reloaded.is_err() {
            self.connection = None;
        }
        reloaded
    }

    async fn try_reload(&mut self) -> Result<(), sqlx::Error> {
        let LogHead {
            head,
            last_timestamp,
        } = store::events::load_head(self.connection().await?).await?;
        // A commit whose answer was lost may have happened after all: its
        // events must still reach delivery, or observers and idle
        // subscriptions would never see them.
        self.deliver_stored(head).await?;
        self.last_timestamp = last_timestamp;
        self.needs_reload = false;
        Ok(())
    }

    /// Sends the events after the writer's head up to `through`, read back
    /// from the log, to delivery as committed batches, moving the head with
    /// each (so that a failure part-way resumes where it stopped).
    async fn deliver_stored(&mut self, through: i64) -> Result<(), sqlx::Error> {
        let mut from = self.head.load(Ordering::Acquire);
        while from < through {
            let page = store::events::Page {
                after: from,
                through,
                types: &EventTypes::All,
                limit: MAX_GROUP_EVENTS as i64,
            };
            let read = match store::events::read_page(self.connection().await?, &page).await {
                Ok(read) => read,
                Err(store::StoreError::Database(error)) => return Err(error),
                Err(error) => return Err(sqlx::Error::Protocol(error.to_string())),
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
            self.head.store(from, Ordering::Release);
        }
        Ok(())
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
