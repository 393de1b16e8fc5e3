//! Publishing decisions safely.
//!
//! A decision reads state (a balance and its version), then publishes events
//! with explicit consistency values ("I have seen everything up to here").
//! When the bus answers `inconsistent`, another instance got there first:
//! the framework catches up on the keys that moved, reading them from the
//! bus, and runs the decision again on the fresh state, with a jittered
//! back-off, a bounded number of times. It never resends the stale events.
//!
//! Reactions to command events are in [`crate::reactions`].

use std::time::Duration;

use bus::{
    client::{BusClient, ClientError, Publish, QueryFrom, QueryItem, QuerySpec},
    protocol::{ErrorCode, EventRecord, Receipt, ReceiptEventStatus, ReceiptStatus},
};
use futures_util::future::BoxFuture;
use rand::Rng;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    applied,
    http::CorrelationId,
    runtime::Ctx,
    service::{Emit, HandlerError, Service},
};

/// How often a decision is run before the caller is told to try again.
pub(crate) const MAX_ATTEMPTS: u32 = 30;

/// The consistency value an emitted event claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this value: the key's next one as the decision saw it.
    Value(i64),
    /// Whatever is next: for keys nobody races on. Such events are not
    /// applied locally at once; they are applied when delivered.
    Any,
}

impl Expect {
    /// The value after `version` (the key's last applied value; `None`: the key is new).
    pub fn after(version: Option<i64>) -> Self {
        Self::Value(version.map_or(0, |v| v + 1))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("other changes to the same data kept coming first; try again")]
    Contention,
    #[error("the bus: {0}")]
    Bus(#[from] ClientError),
    #[error("the bus refused the events ({code:?}): {message}")]
    Refused {
        code: Option<ErrorCode>,
        message: String,
    },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Handler(#[from] HandlerError),
}

/// Where published events come from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    pub correlation_id: Uuid,
    /// The event being reacted to: the causation id, and the seed of the ids.
    pub cause: Option<Uuid>,
}

/// What the bus did with a decision.
pub(crate) enum Outcome {
    /// Stored now, as these records.
    Stored(Vec<EventRecord>),
    /// Stored before (a resend, or an earlier run of the same reaction);
    /// the stored events may differ from these, so read them from the bus.
    AlreadyStored(Vec<String>),
    /// These keys moved on since the decision read them: each with the
    /// value the bus has for it now.
    Inconsistent(Vec<(String, Option<i64>)>),
}

pub(crate) async fn publish(
    bus: &BusClient,
    origin: Origin,
    emits: &[Emit],
) -> Result<Outcome, DecideError> {
    let events: Vec<Publish> = emits
        .iter()
        .enumerate()
        .map(|(index, emit)| {
            let event_id = match origin.cause {
                Some(cause) => Uuid::new_v5(&cause, format!("reaction-{index}").as_bytes()),
                None => Uuid::now_v7(),
            };
            Publish {
                event_type: emit.event_type.clone(),
                key: emit.key.clone(),
                value: emit.consistency_value(),
                data: emit.data.clone(),
                event_id: Some(event_id),
                correlation_id: Some(origin.correlation_id),
                causation_id: origin.cause,
            }
        })
        .collect();
    let receipt = bus.publish(events).await?;
    metrics::counter!("superclient_publishes_total", "status" => format!("{:?}", receipt.status).to_lowercase()).increment(1);
    Ok(match receipt.status {
        ReceiptStatus::Success => Outcome::Stored(stored_records(&receipt, origin, emits)),
        ReceiptStatus::Duplicate => Outcome::AlreadyStored(receipt_keys(&receipt)),
        ReceiptStatus::Inconsistent => Outcome::Inconsistent(
            receipt
                .events
                .iter()
                .filter(|e| e.status == ReceiptEventStatus::Inconsistent)
                .map(|e| (e.consistency.key.clone(), e.current.flatten()))
                .collect(),
        ),
        ReceiptStatus::Rejected if receipt.code == Some(ErrorCode::PartialDuplicate) => {
            Outcome::AlreadyStored(emits.iter().map(|e| e.key.clone()).collect())
        }
        ReceiptStatus::Rejected => {
            return Err(DecideError::Refused {
                code: receipt.code,
                message: receipt.message.unwrap_or_default(),
            });
        }
    })
}

fn receipt_keys(receipt: &Receipt) -> Vec<String> {
    receipt
        .events
        .iter()
        .map(|e| e.consistency.key.clone())
        .collect()
}

/// The published events as the bus stored them (position, value, time).
fn stored_records(receipt: &Receipt, origin: Origin, emits: &[Emit]) -> Vec<EventRecord> {
    receipt
        .events
        .iter()
        .zip(emits)
        .filter(|(_, emit)| matches!(emit.expect, Expect::Value(_)))
        .filter_map(|(stored, emit)| {
            Some(EventRecord {
                position: stored.position?,
                event_id: stored.event_id,
                event_type: emit.event_type.clone(),
                consistency: stored.consistency.clone(),
                correlation_id: origin.correlation_id,
                causation_id: origin.cause,
                timestamp: stored.timestamp?,
                data: emit.data.clone(),
            })
        })
        .collect()
}

impl<S: Service> Ctx<S> {
    /// Claims and applies events the service handles, skipping those applied before.
    pub(crate) async fn apply_all(
        &self,
        db: &mut PgConnection,
        events: &[EventRecord],
    ) -> Result<(), HandlerError> {
        for event in events {
            if S::APPLIES.contains(&event.event_type.as_str()) && applied::claim(db, event).await? {
                self.service().apply(db, event).await?;
            }
        }
        Ok(())
    }

    /// Reads from the bus the events of `keys` this service has not applied
    /// yet, and applies them.
    pub(crate) async fn catch_up(
        &self,
        db: &mut PgConnection,
        keys: &[String],
    ) -> Result<(), DecideError> {
        if S::APPLIES.is_empty() {
            return Ok(());
        }
        for key in keys {
            let after = applied::key_position(db, key).await?;
            let mut answer = self.publisher().query(QuerySpec {
                event_types: S::APPLIES.iter().map(|t| (*t).to_owned()).collect(),
                start: QueryFrom::AfterPosition(after),
                key: Some(key.clone()),
                limit: None,
            })?;
            loop {
                match answer.next().await {
                    Some(Ok(QueryItem::Batch(events))) => self.apply_all(db, &events).await?,
                    Some(Ok(QueryItem::Complete { .. })) => break,
                    Some(Err(error)) => return Err(error.into()),
                    None => return Err(ClientError::Closed.into()),
                }
            }
        }
        Ok(())
    }

    /// Brings the tables up to date with the bus for `keys`, now: for a
    /// request about something the log already has but this service has
    /// not applied yet (an account created a moment ago, by another
    /// instance). Waits for an instance that is applying it to commit.
    pub async fn refresh(&self, keys: &[String]) -> Result<(), DecideError> {
        let mut db = self.db().begin().await?;
        self.catch_up(&mut db, keys).await?;
        db.commit().await?;
        Ok(())
    }

    /// Runs `decision` on fresh state and publishes what it emits, again
    /// and again while another instance wins the race for a key; then
    /// applies the published events to the tables and returns the
    /// decision's output. `keys` are the keys the decision reads: other
    /// decisions of this instance on them wait their turn.
    ///
    /// A decision that refuses (insufficient funds) returns its error,
    /// which is passed on unchanged.
    pub async fn decide<T, E, F>(
        &self,
        keys: &[String],
        correlation: CorrelationId,
        mut decision: F,
    ) -> Result<T, E>
    where
        F: FnMut(PgPool) -> BoxFuture<'static, Result<(Vec<Emit>, T), E>>,
        E: From<DecideError>,
    {
        let _turn = self.key_locks().lock(keys).await;
        let origin = Origin {
            correlation_id: correlation.0,
            cause: None,
        };
        for attempt in 1..=MAX_ATTEMPTS {
            let (emits, output) = decision(self.db().clone()).await?;
            if emits.is_empty() {
                return Ok(output);
            }
            let outcome = publish(self.publisher(), origin, &emits).await?;
            let mut db = self.db().begin().await.map_err(DecideError::from)?;
            match outcome {
                Outcome::Stored(records) => {
                    self.apply_all(&mut db, &records)
                        .await
                        .map_err(DecideError::from)?;
                }
                Outcome::AlreadyStored(keys) => self.catch_up(&mut db, &keys).await?,
                Outcome::Inconsistent(moved) => {
                    let stale = applied::behind(&mut db, &moved)
                        .await
                        .map_err(DecideError::from)?;
                    self.catch_up(&mut db, &stale).await?;
                    db.commit().await.map_err(DecideError::from)?;
                    back_off(attempt).await;
                    continue;
                }
            }
            db.commit().await.map_err(DecideError::from)?;
            return Ok(output);
        }
        metrics::counter!("superclient_decisions_given_up_total").increment(1);
        Err(DecideError::Contention.into())
    }
}

/// A random pause that grows with the attempts, so that racing instances
/// do not collide again in lockstep.
pub(crate) async fn back_off(attempt: u32) {
    metrics::counter!("superclient_decision_retries_total").increment(1);
    let ceiling_ms = 1u64 << attempt.min(6);
    let pause = rand::rng().random_range(0..=ceiling_ms * 1000);
    tokio::time::sleep(Duration::from_micros(pause)).await;
}
