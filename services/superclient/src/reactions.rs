//! Reacting to the command events of a batch.
//!
//! Each reaction publishes with explicit consistency values, and a publish
//! waits for the bus's commit (an fsync). Publishing one reaction after the
//! other would cap an instance near 300 reactions a second, so a batch's
//! reactions are decided in groups, in rounds: every pending reaction
//! decides on the state the tables show (no transaction open: nothing waits
//! on the bus inside one), all of them publish at once (the bus commits
//! them together), and what was stored is applied, with the commands marked
//! handled, in one transaction. Decisions of a round that build on each
//! other (two transfers out of one account, the second deciding on the
//! balance the first leaves) are chained and published as one message
//! ([`crate::chain`]). One that decided on the tables although an earlier
//! decision of its round writes a key it touches waits for the next round,
//! and so does one that lost a race with another instance: they decide
//! again on the state that now includes the winners.
//!
//! A chain's message that the bus finds partly stored already (an earlier
//! run chained the same commands otherwise, then crashed before applying)
//! is not resent: its commands are decided again, each alone, so the bus
//! can say of each whether it was stored.
//!
//! A rejection reads balances it does not write. Before it is published,
//! the bus confirms those reads were current (one `consistency` request for
//! the round), unless its chain's own pinned events show it; a stale one is
//! caught up and decided again, so that no rejection ever rests on an old
//! balance or a missing account.
//!
//! Events a reaction publishes get ids derived from the event that caused
//! them. If the reaction runs again after a crash or a redelivery, the bus
//! recognises them (`duplicate`, or `partial_duplicate` when the second
//! decision came out differently) and nothing is published twice.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bus::protocol::EventRecord;
use futures_util::future::join_all;
use tracing::Instrument;

use crate::{
    applied::{self, Verdict},
    apply::{ApplyError, Batch},
    chain::{Chain, Chains, Decided},
    context::Ctx,
    publish::{Outcome, publish},
    service::{HandlerError, Service},
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
        let mut alone = HashSet::new();
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
            let round = self.round(&pending, &alone).await;
            outcomes.extend(round.settled);
            if !round.lost.is_empty() {
                lost_rounds += 1;
                transient::pause(lost_rounds).await;
            }
            alone.extend(round.alone.iter().map(|command| command.position));
            pending = (round.lost.into_iter())
                .chain(round.deferred)
                .chain(round.alone)
                .collect();
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

    /// One round: decide, confirm the reads, publish, apply. Commands in
    /// `alone` are decided and published each on its own.
    async fn round<'e>(&self, pending: &[&'e EventRecord], alone: &HashSet<i64>) -> Round<'e> {
        let mut round = Round::default();
        let chains = self.decide_round(pending, alone, &mut round).await;
        let chains = self.confirm_reads(chains, &mut round).await;

        let (quiet, loud): (Vec<Chain>, Vec<Chain>) = chains.into_iter().partition(Chain::is_quiet);
        let published = join_all(loud.iter().map(|chain| {
            let events = chain.events();
            async move { publish(self.publisher(), &events).await }.instrument(chain.span())
        }))
        .await;

        // The winners first: what they stored is what the losers must see.
        let mut stored = Vec::new();
        let mut handled: Vec<&EventRecord> = quiet.iter().flat_map(Chain::commands).collect();
        let mut read_back_keys: Vec<String> = Vec::new();
        let mut read_back: Vec<&EventRecord> = Vec::new();
        let mut moved: BTreeMap<String, Option<i64>> = BTreeMap::new();
        for (chain, outcome) in loud.iter().zip(published) {
            match outcome {
                Ok(Outcome::Stored(records)) => {
                    stored.extend(records);
                    handled.extend(chain.commands());
                }
                Ok(Outcome::AlreadyStored(at)) => {
                    read_back_keys.extend(at.into_iter().map(|at| at.key));
                    read_back.extend(chain.commands());
                }
                Ok(Outcome::PartlyStored(keys)) if chain.len() == 1 => {
                    read_back_keys.extend(keys);
                    read_back.extend(chain.commands());
                }
                // An earlier run stored some of these decisions, in a chain
                // made otherwise: each decides again alone, and the bus
                // tells which were stored.
                Ok(Outcome::PartlyStored(_)) => round.alone.extend(chain.commands()),
                Ok(Outcome::Inconsistent(keys)) => {
                    moved.extend(keys);
                    round.lost.extend(chain.commands());
                }
                Err(error) => {
                    for command in chain.commands() {
                        (round.settled).push((command.position, Err(ReactError::failed(&error))));
                    }
                }
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
            let result = match self.catch_up(&read_back_keys).await {
                Ok(()) => {
                    self.apply_batch(Batch {
                        commands: &read_back,
                        ..Batch::default()
                    })
                    .await
                }
                Err(error) => Err(error),
            };
            round.settle(&read_back, result);
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

    /// Every pending command is decided on the tables as they are, and the
    /// decisions are gathered into chains (see [`crate::chain`]); one that
    /// cannot join the decisions before it that share its keys waits for
    /// the next round.
    async fn decide_round<'e>(
        &self,
        pending: &[&'e EventRecord],
        alone: &HashSet<i64>,
        round: &mut Round<'e>,
    ) -> Vec<Chain<'e>> {
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
        let mut chains = Chains::default();
        for (command, reaction) in pending.iter().zip(reactions) {
            match reaction {
                Ok(reaction) => {
                    let decided = Decided { command, reaction };
                    if let Err(back) = chains.add(decided, alone.contains(&command.position)) {
                        round.deferred.push(back.command);
                    }
                }
                Err(error) => round.settled.push((command.position, Err(error.into()))),
            }
        }
        chains.into_chains().collect()
    }

    /// Keeps the chains whose reads of the tables the bus confirms current;
    /// the others catch those keys up and decide again next round.
    async fn confirm_reads<'e>(
        &self,
        chains: Vec<Chain<'e>>,
        round: &mut Round<'e>,
    ) -> Vec<Chain<'e>> {
        let keys: Vec<String> = chains
            .iter()
            .flat_map(|chain| chain.reads_to_confirm())
            .map(|read| read.key.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if keys.is_empty() {
            return chains;
        }
        let current = match self.publisher().consistency(keys).await {
            Ok(current) => current,
            Err(error) => {
                for command in chains.iter().flat_map(Chain::commands) {
                    round
                        .settled
                        .push((command.position, Err(ReactError::failed(&error))));
                }
                return Vec::new();
            }
        };
        let mut confirmed = Vec::with_capacity(chains.len());
        let mut stale_keys = Vec::new();
        let mut stale_commands = Vec::new();
        for chain in chains {
            let stale: Vec<String> = chain
                .reads_to_confirm()
                .into_iter()
                .filter(|read| current.get(&read.key).copied().flatten() != read.version)
                .map(|read| read.key.clone())
                .collect();
            if stale.is_empty() {
                confirmed.push(chain);
            } else {
                metrics::counter!("superclient_stale_reads_total").increment(1);
                stale_keys.extend(stale);
                stale_commands.extend(chain.commands());
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
    /// To be decided again, each alone.
    alone: Vec<&'e EventRecord>,
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
