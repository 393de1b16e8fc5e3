//! Publishing an HTTP request's decision safely.
//!
//! A decision reads state (a balance and its version), then publishes
//! events with explicit consistency values ("I have seen everything up to
//! here"). Before it reads, the keys are brought up to date with the bus,
//! so that a refusal ("insufficient funds") never rests on an old balance.
//! When the bus answers `inconsistent`, another instance got there first:
//! the framework catches up on the keys that moved and runs the decision
//! again, with a jittered back-off, a bounded number of times. It never
//! resends stale events.
//!
//! The events' ids derive from the request's idempotency key, and they are
//! saved before they are sent: a retry of the request sends exactly those
//! again. Once the bus has them, the answer is read from what it stored,
//! never an error; no transaction is open while the bus is asked anything.
//!
//! Reactions to command events are in [`crate::reactions`].

mod error;

use bus::{client::Publish, protocol::EventRecord};
use futures_util::future::BoxFuture;
use sqlx::PgPool;

pub use error::DecideError;

use crate::{
    apply::{ApplyError, Batch},
    context::Ctx,
    idempotency::Idempotency,
    origin::CorrelationId,
    publish::{Outcome, publish},
    service::{Emit, Service},
    transient,
};
use error::not_current;

/// How often a decision is run before the caller is told to try again.
pub(crate) const MAX_ATTEMPTS: u32 = 30;

impl<S: Service> Ctx<S> {
    /// Brings the tables up to date with the bus for `keys`, now: for a
    /// request about something the log already has but this service has
    /// not applied yet (an account created a moment ago, by another
    /// service's instance).
    pub async fn refresh(&self, keys: &[String]) -> Result<(), DecideError> {
        self.sync(keys).await.map_err(not_current)
    }

    /// Runs `decision` on current state and publishes what it emits, again
    /// and again while another instance wins the race for a key; then
    /// applies the stored events to the tables and returns them, as stored.
    /// `keys` are the keys the decision reads: other decisions of this
    /// instance on them wait their turn. A decision that refuses
    /// (insufficient funds) returns its error, passed on unchanged; one
    /// that emits nothing returns no events.
    pub async fn decide<E, F>(
        &self,
        request: &mut Idempotency,
        keys: &[String],
        correlation: CorrelationId,
        mut decision: F,
    ) -> Result<Vec<EventRecord>, E>
    where
        F: FnMut(PgPool) -> BoxFuture<'static, Result<Vec<Emit>, E>>,
        E: From<DecideError>,
    {
        let _turn = self.key_locks().lock(keys).await;
        // An earlier try saved these and may have published them: they go
        // out again, exactly, before anything is decided anew.
        if let Some(saved) = request.saved().map(<[Publish]>::to_vec) {
            match self.publish_decided(&saved).await? {
                Some(stored) => return Ok(stored),
                None => request.forget().await.map_err(DecideError::from)?,
            }
        }
        let origin = request.origin(correlation);
        for attempt in 1..=MAX_ATTEMPTS {
            self.sync(keys).await.map_err(not_current)?;
            let emits = decision(self.db().clone()).await?;
            if emits.is_empty() {
                return Ok(Vec::new());
            }
            let events = origin.events(&emits);
            request.save(&events).await.map_err(DecideError::from)?;
            if let Some(stored) = self.publish_decided(&events).await? {
                return Ok(stored);
            }
            metrics::counter!("superclient_decision_retries_total").increment(1);
            transient::pause(attempt).await;
        }
        metrics::counter!("superclient_decisions_given_up_total").increment(1);
        Err(DecideError::Contention.into())
    }

    /// Publishes `events`: the events as stored (now or before) and
    /// applied here, or `None` when nothing was stored because a key moved
    /// (the keys that moved are caught up for the next decision).
    async fn publish_decided(
        &self,
        events: &[Publish],
    ) -> Result<Option<Vec<EventRecord>>, DecideError> {
        let stored = match publish(self.publisher(), events).await? {
            Outcome::Stored(records) => records,
            Outcome::AlreadyStored(at) => self
                .read_stored(&at)
                .await
                .map_err(|error| DecideError::NotYetVisible(ApplyError::Bus(error)))?,
            Outcome::PartlyStored(_) => return Err(DecideError::Conflict),
            Outcome::Inconsistent(moved) => {
                let moved = moved.into_iter().collect();
                let behind = self.behind(&moved).await?;
                self.catch_up(&behind).await.map_err(not_current)?;
                return Ok(None);
            }
        };
        // Read your writes. The events are durable whatever happens here;
        // a failure is retried inside, and only a database that stays down
        // keeps the answer from showing them.
        self.apply_gap_free(Batch {
            events: &stored,
            ..Batch::default()
        })
        .await
        .map_err(DecideError::NotYetVisible)?;
        Ok(Some(stored))
    }
}
