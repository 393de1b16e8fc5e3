//! Reacting to the command events of a batch.
//!
//! Each reaction publishes with explicit consistency values, and a publish
//! waits for the bus's commit (an fsync). Publishing one reaction after the
//! other would cap an instance near 300 reactions a second, so a batch's
//! reactions are decided in groups, in rounds: every pending reaction
//! decides on the state the tables show (no transaction open: nothing waits
//! on the bus inside one), all of them publish at once (the bus commits
//! them together), and what was stored is applied, with the commands marked
//! handled, in one transaction. A reaction that writes a key an earlier one
//! of its round writes (two transfers out of one account) waits for the
//! next round, and so does one that lost a race with another instance:
//! they decide again on the state that now includes the winners.
//!
//! A rejection reads balances it does not write. Before it is published,
//! the bus confirms those reads were current (one `consistency` request for
//! the round); a stale one is caught up and decided again, so that no
//! rejection ever rests on an old balance or a missing account.
//!
//! Events a reaction publishes get ids derived from the event that caused
//! them. If the reaction runs again after a crash or a redelivery, the bus
//! recognises them (`duplicate`, or `partial_duplicate` when the second
//! decision came out differently) and nothing is published twice.

use std::collections::{BTreeMap, HashMap, HashSet};

use bus::protocol::EventRecord;
use futures_util::future::join_all;
use tracing::Instrument;

use crate::{
    applied::{self, Verdict},
    apply::{ApplyError, Batch},
    context::Ctx,
    origin::Origin,
    publish::{Outcome, PublishError, publish},
    service::{HandlerError, Reaction, Service},
    spans::event_span,
    transient,
};

/// Reactions decided together. Rounds repeat while reactions of a group
/// write the same keys, so a group stays small next to the number of keys.
const GROUP: usize = 64;
/// Rounds a group may take beyond one per reaction before what is left is
/// given up (its commands nacked, to be delivered again later).
const SPARE_ROUNDS: usize = 30;

#[derive(Debug, thiserror::Error)]
pub enum ReactError {
    #[error(transparent)]
    Handler(#[from] HandlerError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A step that settles several commands at once failed.
    #[error("{0}")]
    Failed(String),
    #[error("other decisions on the same keys kept coming first")]
    Contention,
}

impl ReactError {
    fn failed(error: impl std::fmt::Display) -> Self {
        Self::Failed(error.to_string())
    }
}

/// One command's decision in a round.
struct Decided<'e> {
    command: &'e EventRecord,
    reaction: Reaction,
}

impl<S: Service> Ctx<S> {
    /// Reacts to `commands` (in delivery order); one outcome per command.
    pub(crate) async fn react_all(&self, commands: &[EventRecord]) -> Vec<Result<(), ReactError>> {
        let mut outcomes: Vec<Option<Result<(), ReactError>>> =
            commands.iter().map(|_| None).collect();
        let index: HashMap<i64, usize> = commands
            .iter()
            .enumerate()
            .map(|(i, command)| (command.position, i))
            .collect();
        for group in commands.chunks(GROUP) {
            let span = tracing::info_span!("reactions", commands = group.len());
            for (position, outcome) in self.react_group(group).instrument(span).await {
                outcomes[index[&position]] = Some(outcome);
            }
        }
        outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or(Err(ReactError::Contention)))
            .collect()
    }

    /// Decides and publishes `group` in rounds until every reaction is
    /// settled; the outcome of each command, by position.
    async fn react_group(&self, group: &[EventRecord]) -> Vec<(i64, Result<(), ReactError>)> {
        let mut outcomes = Vec::with_capacity(group.len());
        let mut pending = match self.not_handled(group).await {
            Ok(pending) => pending,
            Err(error) => {
                return group
                    .iter()
                    .map(|c| (c.position, Err(ReactError::failed(&error))))
                    .collect();
            }
        };
        for command in group {
            if !pending.iter().any(|p| p.position == command.position) {
                outcomes.push((command.position, Ok(())));
            }
        }
        // Each round settles at least one reaction unless another instance
        // wins or a read was stale: those rounds are bounded, and paced.
        let limit = group.len() + SPARE_ROUNDS;
        let mut rounds = 0;
        let mut lost_rounds = 0;
        while !pending.is_empty() {
            rounds += 1;
            if rounds > limit {
                outcomes.extend(
                    pending
                        .iter()
                        .map(|c| (c.position, Err(ReactError::Contention))),
                );
                break;
            }
            let round = self.round(&pending).await;
            outcomes.extend(round.settled);
            if !round.lost.is_empty() {
                lost_rounds += 1;
                transient::pause(lost_rounds).await;
            }
            pending = round.lost.into_iter().chain(round.deferred).collect();
        }
        outcomes
    }

    /// Of `commands`, those not handled before (a redelivery after a crash).
    async fn not_handled<'e>(
        &self,
        commands: &'e [EventRecord],
    ) -> Result<Vec<&'e EventRecord>, sqlx::Error> {
        let keys: Vec<&str> = commands
            .iter()
            .map(|c| c.consistency.key.as_str())
            .collect();
        let last = applied::peek(&mut *self.db().acquire().await?, &keys).await?;
        Ok(commands
            .iter()
            .filter(|c| applied::verdict(last[&c.consistency.key], c) != Verdict::Applied)
            .collect())
    }

    /// One round: decide, confirm the reads, publish, apply.
    async fn round<'e>(&self, pending: &[&'e EventRecord]) -> Round<'e> {
        let mut round = Round::default();
        let decided = self.decide_round(pending, &mut round).await;
        let decided = self.confirm_reads(decided, &mut round).await;

        let (quiet, loud): (Vec<Decided>, Vec<Decided>) = decided
            .into_iter()
            .partition(|d| d.reaction.emits.is_empty());
        let published = join_all(loud.iter().map(|decided| {
            let events = Origin::reaction(decided.command).events(&decided.reaction.emits);
            async move { publish(self.publisher(), &events).await }
                .instrument(event_span(decided.command))
        }))
        .await;

        // The winners first: what they stored is what the losers must see.
        let mut stored = Vec::new();
        let mut handled: Vec<&EventRecord> = quiet.iter().map(|d| d.command).collect();
        let mut read_back: Vec<(&EventRecord, Vec<String>)> = Vec::new();
        let mut moved: BTreeMap<String, Option<i64>> = BTreeMap::new();
        for (decided, outcome) in loud.iter().zip(published) {
            match outcome {
                Ok(Outcome::Stored(records)) => {
                    stored.extend(records);
                    handled.push(decided.command);
                }
                Ok(Outcome::AlreadyStored(at)) => {
                    read_back.push((decided.command, at.into_iter().map(|at| at.key).collect()))
                }
                Ok(Outcome::PartlyStored(keys)) => read_back.push((decided.command, keys)),
                Ok(Outcome::Inconsistent(keys)) => {
                    moved.extend(keys);
                    round.lost.push(decided.command);
                }
                Err(error) => round
                    .settled
                    .push((decided.command.position, Err(error.into()))),
            }
        }
        let applied = self
            .apply_gap_free(Batch {
                events: &stored,
                commands: &handled,
                ..Batch::default()
            })
            .await;
        round.settle(&handled, applied);

        // Stored by an earlier run: read it from the bus, then mark handled.
        if !read_back.is_empty() {
            let keys: Vec<String> = read_back.iter().flat_map(|(_, k)| k.clone()).collect();
            let commands: Vec<&EventRecord> = read_back.iter().map(|(c, _)| *c).collect();
            let result = match self.catch_up(&keys).await {
                Ok(()) => {
                    self.apply_batch(Batch {
                        commands: &commands,
                        ..Batch::default()
                    })
                    .await
                }
                Err(error) => Err(error),
            };
            round.settle(&commands, result);
        }
        // Another instance wrote these keys (those this one has applied
        // since need nothing): read them before deciding again. A key that
        // cannot be brought up to date (an event of it is parked) fails the
        // commands that lost on it now: they are nacked, and wait at the bus.
        if !moved.is_empty() {
            let caught_up = match self.behind(&moved).await {
                Ok(stale) => self.catch_up(&stale).await,
                Err(error) => Err(error.into()),
            };
            if let Err(error) = caught_up {
                let lost = std::mem::take(&mut round.lost);
                round.settle(&lost, Err(error));
            }
        }
        round
    }

    /// Every pending reaction decides on the tables as they are; one that
    /// reads or writes a key an earlier one of the round reads or writes
    /// waits for the next round (a rejection of the round must not rest on
    /// a balance an acceptance of the same round changes).
    async fn decide_round<'e>(
        &self,
        pending: &[&'e EventRecord],
        round: &mut Round<'e>,
    ) -> Vec<Decided<'e>> {
        let mut db = match self.db().acquire().await {
            Ok(db) => db,
            Err(error) => {
                for command in pending {
                    round
                        .settled
                        .push((command.position, Err(ReactError::failed(&error))));
                }
                return Vec::new();
            }
        };
        let reactions = self
            .service()
            .react_all(&mut db, pending)
            .instrument(tracing::info_span!("decide", commands = pending.len()))
            .await;
        let mut decided = Vec::new();
        let mut taken: HashSet<String> = HashSet::new();
        for (command, reaction) in pending.iter().zip(reactions) {
            let reaction = match reaction {
                Ok(reaction) => reaction,
                Err(error) => {
                    round.settled.push((command.position, Err(error.into())));
                    continue;
                }
            };
            let touched: Vec<&String> = reaction
                .pinned_keys()
                .chain(reaction.reads.iter().map(|read| &read.key))
                .collect();
            if touched.iter().any(|key| taken.contains(*key)) {
                round.deferred.push(command);
                continue;
            }
            taken.extend(touched.into_iter().cloned());
            decided.push(Decided { command, reaction });
        }
        decided
    }

    /// Keeps the decisions whose unpinned reads the bus confirms current;
    /// the others catch those keys up and decide again next round.
    async fn confirm_reads<'e>(
        &self,
        decided: Vec<Decided<'e>>,
        round: &mut Round<'e>,
    ) -> Vec<Decided<'e>> {
        let keys: Vec<String> = decided
            .iter()
            .flat_map(|d| d.reaction.unpinned_reads().map(|read| read.key.clone()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if keys.is_empty() {
            return decided;
        }
        let current = match self.publisher().consistency(keys).await {
            Ok(current) => current,
            Err(error) => {
                for d in decided {
                    round
                        .settled
                        .push((d.command.position, Err(ReactError::failed(&error))));
                }
                return Vec::new();
            }
        };
        let mut confirmed = Vec::with_capacity(decided.len());
        let mut stale_keys = Vec::new();
        let mut stale_commands = Vec::new();
        for d in decided {
            let stale: Vec<String> = d
                .reaction
                .unpinned_reads()
                .filter(|read| current.get(&read.key).copied().flatten() != read.version)
                .map(|read| read.key.clone())
                .collect();
            if stale.is_empty() {
                confirmed.push(d);
            } else {
                metrics::counter!("superclient_stale_reads_total").increment(1);
                stale_keys.extend(stale);
                stale_commands.push(d.command);
            }
        }
        match self.catch_up(&stale_keys).await {
            Ok(()) => round.deferred.extend(stale_commands),
            // Deciding again would read the same stale state.
            Err(error) => round.settle(&stale_commands, Err(error)),
        }
        confirmed
    }
}

/// What a round settled, and what goes to the next one.
#[derive(Default)]
struct Round<'e> {
    settled: Vec<(i64, Result<(), ReactError>)>,
    /// Lost a race with another instance.
    lost: Vec<&'e EventRecord>,
    /// Waits for a key an earlier reaction of the round wrote, or decided
    /// on a stale read.
    deferred: Vec<&'e EventRecord>,
}

impl Round<'_> {
    fn settle(&mut self, commands: &[&EventRecord], result: Result<(), ApplyError>) {
        for command in commands {
            let outcome = match &result {
                Ok(()) => Ok(()),
                Err(error) => Err(ReactError::failed(error)),
            };
            self.settled.push((command.position, outcome));
        }
    }
}
