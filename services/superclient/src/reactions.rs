//! Reacting to the command events of a batch.
//!
//! Each reaction publishes with explicit consistency values, and a publish
//! waits for the bus's commit (an fsync). Publishing one reaction after the
//! other would cap an instance near 300 reactions a second, so a batch's
//! reactions are decided in groups, in rounds: every pending reaction
//! decides on the state the batch's transaction shows, and all of them
//! publish at once (the bus commits them together); the stored ones are
//! applied. A reaction that writes a key an earlier one of its round writes
//! (two transfers out of one account) waits for the next round, and so does
//! one that lost a race with another instance: they decide again on the
//! state that now includes the winners.
//!
//! Events a reaction publishes get ids derived from the event that caused
//! them. If the reaction runs again after a crash or a redelivery, the bus
//! recognises them (`duplicate`, or `partial_duplicate` when the second
//! decision came out differently) and nothing is published twice.

use std::collections::HashSet;

use bus::protocol::EventRecord;
use futures_util::future::try_join_all;
use sqlx::PgConnection;
use tracing::Instrument;

use crate::{
    applied,
    consumer::event_span,
    decide::{DecideError, Expect, MAX_ATTEMPTS, Origin, Outcome, back_off, publish},
    runtime::Ctx,
    service::Service,
};

/// Reactions decided together. Rounds repeat while reactions of a group
/// write the same keys, so a group stays small next to the number of keys.
const GROUP: usize = 64;

impl<S: Service> Ctx<S> {
    /// Reacts to `events` (commands, in delivery order) inside the batch's
    /// transaction, and marks each handled.
    pub(crate) async fn react_all(
        &self,
        db: &mut PgConnection,
        events: &[&EventRecord],
    ) -> Result<(), DecideError> {
        let mut fresh = Vec::with_capacity(events.len());
        for event in events {
            if !applied::is_applied(db, event).await? {
                fresh.push(*event);
            }
        }
        for group in fresh.chunks(GROUP) {
            self.react_group(db, group).await?;
        }
        Ok(())
    }

    /// Decides and publishes `group` in rounds until every reaction is stored.
    async fn react_group(
        &self,
        db: &mut PgConnection,
        group: &[&EventRecord],
    ) -> Result<(), DecideError> {
        let mut pending = group.to_vec();
        let mut round = 0;
        while !pending.is_empty() {
            round += 1;
            // Each round stores at least one reaction unless another
            // instance wins: only those lost races count against the bound.
            if round > MAX_ATTEMPTS + group.len() as u32 {
                return Err(DecideError::Contention);
            }
            let mut decided = Vec::with_capacity(pending.len());
            let mut deferred = Vec::new();
            let mut taken: HashSet<String> = HashSet::new();
            for event in pending.drain(..) {
                let emits = self
                    .service()
                    .react(db, event)
                    .instrument(event_span(event))
                    .await?;
                let claims: Vec<&String> = emits
                    .iter()
                    .filter(|emit| matches!(emit.expect, Expect::Value(_)))
                    .map(|emit| &emit.key)
                    .collect();
                if emits.is_empty() {
                    applied::claim(db, event).await?;
                } else if claims.iter().any(|key| taken.contains(*key)) {
                    // An earlier reaction of this round writes the same key:
                    // this one would lose; it decides again next round.
                    deferred.push(event);
                } else {
                    taken.extend(claims.into_iter().cloned());
                    decided.push((event, emits));
                }
            }
            let outcomes = try_join_all(decided.iter().map(|(event, emits)| {
                let origin = Origin {
                    correlation_id: event.correlation_id,
                    cause: Some(event.event_id),
                };
                publish(self.publisher(), origin, emits).instrument(event_span(event))
            }))
            .await?;
            // The winners first: what they stored is what the losers must see.
            let mut moved_keys = Vec::new();
            let mut already_stored = Vec::new();
            for ((event, _), outcome) in decided.iter().zip(outcomes) {
                match outcome {
                    Outcome::Stored(records) => {
                        self.apply_all(db, &records).await?;
                        applied::claim(db, event).await?;
                    }
                    Outcome::AlreadyStored(keys) => already_stored.push((*event, keys)),
                    Outcome::Inconsistent(moved) => {
                        moved_keys.extend(moved);
                        pending.push(*event);
                    }
                }
            }
            for (event, keys) in already_stored {
                self.catch_up(db, &keys).await?;
                applied::claim(db, event).await?;
            }
            if !pending.is_empty() {
                // Another instance wrote these keys (those this one has
                // applied since need nothing): read them, and step aside a little.
                let stale = applied::behind(db, &moved_keys).await?;
                if !stale.is_empty() {
                    self.catch_up(db, &stale).await?;
                    back_off(round).await;
                }
            }
            pending.extend(deferred);
        }
        Ok(())
    }
}
