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
            } => transient::is_transient(error),
            _ => false,
        }
    }

    /// The key whose event could not be applied, if that is what failed.
    pub fn failed_key(&self) -> Option<&str> {
        match self {
            Self::Handler { key, .. } | Self::Gap { key, .. } => Some(key),
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
}

/// How often a batch catches a key up and tries again before giving up.
const GAP_ROUNDS: u32 = 3;

impl<S: Service> Ctx<S> {
    /// Applies `batch` in one transaction, catching keys up from the bus
    /// first when an event is beyond its key's next value.
    pub(crate) async fn apply_gap_free(&self, batch: Batch<'_>) -> Result<(), ApplyError> {
        let gaps = self.gaps(batch.events).await?;
        if !gaps.is_empty() {
            self.catch_up(&gaps).await?;
        }
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

    /// The keys of `events` on which an event is beyond the next value.
    async fn gaps(&self, events: &[EventRecord]) -> Result<Vec<String>, ApplyError> {
        let keys: Vec<&str> = self
            .applied(events)
            .map(|event| event.consistency.key.as_str())
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut db = self.db().acquire().await?;
        let mut last = applied::peek(&mut db, &keys).await?;
        let mut gaps = BTreeSet::new();
        for event in self.applied(events) {
            let key = &event.consistency.key;
            match applied::verdict(last[key], event) {
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
        Ok(gaps.into_iter().collect())
    }

    /// The events of types this service applies.
    fn applied<'e>(&self, events: &'e [EventRecord]) -> impl Iterator<Item = &'e EventRecord> {
        events
            .iter()
            .filter(|event| S::APPLIES.contains(&event.event_type.as_str()))
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
        let mut claims = applied::lock(&mut tx, &keys).await?;
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
                    self.service()
                        .apply(&mut tx, event)
                        .instrument(event_span(event))
                        .await
                        .map_err(|source| ApplyError::Handler {
                            position: event.position,
                            event_type: event.event_type.clone(),
                            key: event.consistency.key.clone(),
                            source,
                        })?;
                    claims.claim(event);
                }
            }
        }
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
        Ok(())
    }

    /// Reads from the bus the events of `keys` this service has not
    /// applied yet, and applies them. No transaction is open while the bus
    /// answers.
    pub(crate) async fn catch_up(&self, keys: &[String]) -> Result<(), ApplyError> {
        if S::APPLIES.is_empty() || keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let last = applied::peek(&mut *self.db().acquire().await?, &keys).await?;
        let mut events = Vec::new();
        for key in last.keys() {
            events.extend(self.read_key(key, last[key].position, None).await?);
        }
        metrics::counter!("superclient_caught_up_events_total").increment(events.len() as u64);
        self.apply_batch(Batch {
            events: &events,
            complete: true,
            ..Batch::default()
        })
        .await
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
            event_types: S::APPLIES
                .iter()
                .chain(S::REACTS_TO)
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
        if keys.is_empty() || S::APPLIES.is_empty() {
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
