//! Applying events to the service's tables: exactly once, in order, never
//! over a gap, and never with a transaction open while waiting on the bus.
//!
//! Every path comes here: live batches, rebuilds, the events a decision
//! published, and catching a key up from the bus. A transaction locks the
//! keys it claims up front and in order (no deadlock), applies what is
//! exactly next, and commits; a transient failure (a serialization failure,
//! a lost connection) runs it again. An event beyond its key's next value
//! first makes the key catch up from the bus: the bus is asked (no
//! transaction open), then the answer is applied in a transaction of its
//! own.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use bus::{
    client::{ClientError, QueryFrom, QueryItem, QuerySpec},
    protocol::EventRecord,
};
use tracing::Instrument;

use crate::{
    applied::{self, Verdict},
    context::Ctx,
    publish::StoredAt,
    service::{HandlerError, Service},
    spans::event_span,
    transient,
};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event {position} ({event_type}) of {key} could not be applied: {source}")]
    Handler {
        position: i64,
        event_type: String,
        key: String,
        source: HandlerError,
    },
    #[error("{events} events of {keys:?} could not be applied together: {source}")]
    Together {
        events: usize,
        /// Their keys, distinct.
        keys: Vec<String>,
        source: HandlerError,
    },
    #[error("event {position} of {key} comes after one not applied here yet")]
    Gap { key: String, position: i64 },
    #[error("the bus: {0}")]
    Bus(#[from] ClientError),
}

impl ApplyError {
    fn is_transient(&self) -> bool {
        match self {
            Self::Database(error) => transient::is_transient(error),
            Self::Handler {
                source: HandlerError::Database(error),
                ..
            }
            | Self::Together {
                source: HandlerError::Database(error),
                ..
            } => transient::is_transient(error),
            _ => false,
        }
    }

    /// The key whose event could not be applied, if that is what failed.
    pub fn failed_key(&self) -> Option<&str> {
        match self {
            Self::Handler { key, .. } | Self::Gap { key, .. } => Some(key),
            Self::Together { keys, .. } if keys.len() == 1 => Some(&keys[0]),
            _ => None,
        }
    }
}

/// What one transaction applies and settles.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Batch<'a> {
    /// Events, in position order within each key; those of types the
    /// service does not apply are left alone.
    pub events: &'a [EventRecord],
    /// The events are a key query's whole answer after what the key had
    /// applied: a gap among them is of types the service does not apply.
    pub complete: bool,
    /// Commands whose reactions are settled (or that staff skipped):
    /// claimed as handled.
    pub commands: &'a [&'a EventRecord],
    /// Moves the rebuild mark to this position.
    pub mark: Option<i64>,
    /// Keys whose claim rows are known to exist (rows are never deleted
    /// while the service runs): locking them needs no insert first.
    pub known: Option<&'a HashSet<String>>,
}

/// What of a batch is not applied yet.
#[derive(Debug, Default)]
struct Unapplied {
    /// Keys on which an event is beyond the next value.
    gaps: Vec<String>,
    /// Events not applied yet.
    fresh: usize,
    /// Keys with a claim row.
    known: HashSet<String>,
}

/// How often a batch catches a key up and tries again before giving up.
const GAP_ROUNDS: u32 = 3;
/// A batch with nothing new to apply (events this instance applied when
/// it published them, delivered back) opens no transaction; the rebuild
/// mark it would have moved is written once it is this many positions
/// ahead of the last one written, so that a restart reads little history
/// again without a commit per batch.
const MARK_STRIDE: i64 = 10_000;

impl<S: Service> Ctx<S> {
    /// Applies `batch` in one transaction, catching keys up from the bus
    /// first when an event is beyond its key's next value.
    pub(crate) async fn apply_gap_free(&self, batch: Batch<'_>) -> Result<(), ApplyError> {
        let Unapplied { gaps, fresh, known } = self.unapplied(batch.events).await?;
        if fresh == 0 && batch.commands.is_empty() {
            if let Some(mark) = batch.mark {
                self.mark_now_and_then(mark).await?;
            }
            return Ok(());
        }
        if !gaps.is_empty() {
            self.catch_up(&gaps).await?;
        }
        let batch = Batch {
            known: Some(&known),
            ..batch
        };
        let mut round = 0;
        loop {
            round += 1;
            match self.apply_batch(batch).await {
                Err(ApplyError::Gap { key, .. }) if round < GAP_ROUNDS => {
                    self.catch_up(std::slice::from_ref(&key)).await?;
                }
                other => return other,
            }
        }
    }

    /// What of `events` is not applied yet: the keys on which an event is
    /// beyond the next value, and how many events are new.
    async fn unapplied(&self, events: &[EventRecord]) -> Result<Unapplied, ApplyError> {
        let keys: Vec<&str> = self
            .applied(events)
            .map(|event| event.consistency.key.as_str())
            .collect();
        if keys.is_empty() {
            return Ok(Unapplied::default());
        }
        let mut db = self.db().acquire().await?;
        let mut last = applied::peek(&mut db, &keys).await?;
        let known = last
            .iter()
            .filter(|(_, last)| **last != applied::Last::NONE)
            .map(|(key, _)| key.clone())
            .collect();
        let mut gaps = BTreeSet::new();
        let mut fresh = 0;
        for event in self.applied(events) {
            let key = &event.consistency.key;
            let verdict = applied::verdict(last[key], event);
            if verdict != Verdict::Applied {
                fresh += 1;
            }
            match verdict {
                Verdict::Gap { .. } => {
                    gaps.insert(key.clone());
                }
                Verdict::Next => {
                    last.insert(
                        key.clone(),
                        applied::Last {
                            value: applied::value_of(event),
                            position: event.position,
                        },
                    );
                }
                Verdict::Applied => {}
            }
        }
        Ok(Unapplied {
            gaps: gaps.into_iter().collect(),
            fresh,
            known,
        })
    }

    /// Moves the rebuild mark to `mark` when it is far enough ahead of
    /// the one last written.
    async fn mark_now_and_then(&self, mark: i64) -> Result<(), ApplyError> {
        if mark - self.marked() < MARK_STRIDE {
            return Ok(());
        }
        applied::set_rebuilt_through(&mut *self.db().acquire().await?, mark).await?;
        self.note_marked(mark);
        Ok(())
    }

    /// The events of types this service applies.
    fn applied<'e>(&self, events: &'e [EventRecord]) -> impl Iterator<Item = &'e EventRecord> {
        events.iter().filter(|event| {
            self.service()
                .applies()
                .contains(&event.event_type.as_str())
        })
    }

    /// One transaction: lock, apply what is next, claim, commit. Run again
    /// after a transient failure.
    pub(crate) async fn apply_batch(&self, batch: Batch<'_>) -> Result<(), ApplyError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_apply_batch(batch).await {
                Err(error) if error.is_transient() && attempt < transient::ATTEMPTS => {
                    metrics::counter!("superclient_transient_retries_total").increment(1);
                    tracing::info!(%error, attempt, "a transaction failed transiently; running it again");
                    transient::pause(attempt).await;
                }
                other => return other,
            }
        }
    }

    async fn try_apply_batch(&self, batch: Batch<'_>) -> Result<(), ApplyError> {
        let keys: Vec<&str> = self
            .applied(batch.events)
            .chain(batch.commands.iter().copied())
            .map(|event| event.consistency.key.as_str())
            .collect();
        let mut tx = self.db().begin().await?;
        let mut claims = applied::lock(&mut tx, &keys, batch.known).await?;
        // Events staff skipped are stepped over wherever they come from.
        let positions: Vec<i64> = self.applied(batch.events).map(|e| e.position).collect();
        let skipped: HashSet<i64> = if positions.is_empty() {
            HashSet::new()
        } else {
            applied::skipped_among(&mut tx, &positions)
                .await?
                .into_iter()
                .collect()
        };
        let mut next = Vec::new();
        for event in self.applied(batch.events) {
            match claims.verdict(event) {
                Verdict::Applied => continue,
                Verdict::Gap { .. } if !batch.complete => {
                    return Err(ApplyError::Gap {
                        key: event.consistency.key.clone(),
                        position: event.position,
                    });
                }
                Verdict::Next | Verdict::Gap { .. } if skipped.contains(&event.position) => {
                    tracing::info!(position = event.position, key = %event.consistency.key,
                        "stepping over an event staff skipped");
                    claims.claim(event);
                }
                Verdict::Next | Verdict::Gap { .. } => {
                    next.push(event);
                    claims.claim(event);
                }
            }
        }
        self.apply_all(&mut tx, &next).await?;
        for command in batch.commands {
            // A command's key holds no state of this service: claiming it
            // only marks the command handled.
            if claims.verdict(command) != Verdict::Applied {
                claims.claim(command);
            }
        }
        claims.save(&mut tx).await?;
        if let Some(mark) = batch.mark {
            applied::set_rebuilt_through(&mut tx, mark).await?;
        }
        tx.commit().await?;
        if let Some(mark) = batch.mark {
            self.note_marked(mark);
        }
        Ok(())
    }

    /// Hands `events` to the service, all at once; an error names the
    /// event when there was one.
    async fn apply_all(
        &self,
        db: &mut sqlx::PgConnection,
        events: &[&EventRecord],
    ) -> Result<(), ApplyError> {
        match events {
            [] => Ok(()),
            [event] => self
                .service()
                .apply_all(db, events)
                .instrument(event_span(event))
                .await
                .map_err(|source| ApplyError::Handler {
                    position: event.position,
                    event_type: event.event_type.clone(),
                    key: event.consistency.key.clone(),
                    source,
                }),
            _ => self
                .service()
                .apply_all(db, events)
                .instrument(tracing::info_span!("apply", events = events.len()))
                .await
                .map_err(|source| {
                    let keys: BTreeSet<&str> =
                        events.iter().map(|e| e.consistency.key.as_str()).collect();
                    ApplyError::Together {
                        events: events.len(),
                        keys: keys.into_iter().map(str::to_owned).collect(),
                        source,
                    }
                }),
        }
    }

    /// Reads from the bus the events of `keys` this service has not
    /// applied yet, and applies them. No transaction is open while the bus
    /// answers.
    pub(crate) async fn catch_up(&self, keys: &[String]) -> Result<(), ApplyError> {
        if self.service().applies().is_empty() || keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let last = applied::peek(&mut *self.db().acquire().await?, &keys).await?;
        let mut events = Vec::new();
        for key in last.keys() {
            events.extend(self.read_key(key, last[key].position, None).await?);
        }
        metrics::counter!("superclient_caught_up_events_total").increment(events.len() as u64);
        let together = self
            .apply_batch(Batch {
                events: &events,
                complete: true,
                ..Batch::default()
            })
            .await;
        match together {
            // Key by key, so that the error names the key that cannot be
            // brought up to date.
            Err(ApplyError::Together { keys, .. }) if keys.len() > 1 => {
                for key in keys {
                    let of_key: Vec<EventRecord> = events
                        .iter()
                        .filter(|event| event.consistency.key == key)
                        .cloned()
                        .collect();
                    self.apply_batch(Batch {
                        events: &of_key,
                        complete: true,
                        ..Batch::default()
                    })
                    .await?;
                }
                Ok(())
            }
            other => other,
        }
    }

    /// The events of `key` of the service's types after `after_position`
    /// (at most `limit`), read by key.
    async fn read_key(
        &self,
        key: &str,
        after_position: i64,
        limit: Option<i64>,
    ) -> Result<Vec<EventRecord>, ClientError> {
        let mut answer = self.publisher().query(QuerySpec {
            event_types: self
                .service()
                .applies()
                .iter()
                .chain(self.service().reacts_to())
                .map(|t| (*t).to_owned())
                .collect(),
            start: QueryFrom::AfterPosition(after_position),
            key: Some(key.to_owned()),
            limit,
        })?;
        let mut events = Vec::new();
        loop {
            match answer.next().await {
                Some(Ok(QueryItem::Batch(batch))) => events.extend(batch),
                Some(Ok(QueryItem::Complete { .. })) => return Ok(events),
                Some(Err(error)) => return Err(error),
                None => return Err(ClientError::Closed),
            }
        }
    }

    /// Makes `keys` current: asks the bus for their values and catches up
    /// those this service is behind on. Errs with the key when one cannot
    /// be (an event of it fails to apply: it is parked, and its key held).
    pub(crate) async fn sync(&self, keys: &[String]) -> Result<(), ApplyError> {
        if keys.is_empty() || self.service().applies().is_empty() {
            return Ok(());
        }
        let current = self.publisher().consistency(keys.to_vec()).await?;
        let behind = self.behind(&current).await?;
        if behind.is_empty() {
            return Ok(());
        }
        self.catch_up(&behind).await?;
        // What the bus had then is applied now, unless an event of a key
        // is not of this service's types (then the key is current for it).
        Ok(())
    }

    /// Of keys with the bus's current values, those whose last applied
    /// value is below it.
    pub(crate) async fn behind(
        &self,
        current: &BTreeMap<String, Option<i64>>,
    ) -> Result<Vec<String>, sqlx::Error> {
        let keys: Vec<&str> = current.keys().map(String::as_str).collect();
        let last = applied::peek(&mut *self.db().acquire().await?, &keys).await?;
        Ok(current
            .iter()
            .filter(|(key, value)| value.is_some_and(|value| value > last[*key].value))
            .map(|(key, _)| key.clone())
            .collect())
    }

    /// The events stored at `stored` (a duplicate's receipt), read back from
    /// the bus by key.
    pub(crate) async fn read_stored(
        &self,
        stored: &[StoredAt],
    ) -> Result<Vec<EventRecord>, ClientError> {
        let mut events = Vec::with_capacity(stored.len());
        for at in stored {
            let found = self.read_key(&at.key, at.position - 1, Some(1)).await?;
            events.extend(found.into_iter().filter(|e| e.position == at.position));
        }
        Ok(events)
    }
}
