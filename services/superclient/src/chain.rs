//! Chains: decisions of one round that build on each other.
//!
//! A service may decide a round's commands each on the state the ones
//! before it leave: the second of two transfers out of one account sees
//! the balance after the first. Such decisions form a chain. A chain goes
//! to the bus as one message, its events in order, so either every
//! decision of it is stored or none is: no decision ever rests on one
//! that was not stored. This is what lets one account answer many
//! transfers a round instead of one.
//!
//! Of the reads of a chain, only the first read of each key was of the
//! tables. If an event of the chain pins that key (an explicit value),
//! the bus checks it when it stores the message; otherwise the bus must
//! confirm it before the chain is published. The later reads are of the
//! chain's own events.
//!
//! A decision that read a key at another version than the round's
//! decisions so far leave it (it decided on the tables, not on them) waits
//! for the next round. So does one that would join a chain that must go
//! alone, or make a chain's message too long. A decision that waits blocks
//! every key it touches for the rest of the round: the service may have
//! decided a later command on the state the waiting one would have left,
//! and that state will not be published.

use std::collections::{BTreeSet, HashMap, HashSet};

use bus::{client::Publish, protocol::EventRecord};

use crate::{
    origin::Origin,
    service::{Expect, Reaction, Read},
    spans::event_span,
};

/// The most events one chain's message carries (the bus takes 1,000 by
/// default).
const MAX_EVENTS: usize = 256;

/// A command and what the service decided for it.
pub(crate) struct Decided<'e> {
    pub command: &'e EventRecord,
    pub reaction: Reaction,
}

/// Decisions published together, in the order they were decided.
pub(crate) struct Chain<'e> {
    links: Vec<Decided<'e>>,
    /// No other decision may join it: its command is decided alone,
    /// because the message of a chain it was in was partly stored before.
    alone: bool,
}

impl<'e> Chain<'e> {
    pub fn commands(&self) -> impl Iterator<Item = &'e EventRecord> + '_ {
        self.links.iter().map(|link| link.command)
    }

    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// Nothing to publish: every decision of it decided to emit nothing.
    pub fn is_quiet(&self) -> bool {
        self.event_count() == 0
    }

    fn event_count(&self) -> usize {
        self.links
            .iter()
            .map(|link| link.reaction.emits.len())
            .sum()
    }

    /// The chain's events, each with the id its own command derives.
    pub fn events(&self) -> Vec<Publish> {
        self.links
            .iter()
            .flat_map(|link| Origin::reaction(link.command).events(&link.reaction.emits))
            .collect()
    }

    /// The reads the bus must confirm: each key's first read, unless an
    /// event of the chain pins that key.
    pub fn reads_to_confirm(&self) -> Vec<&Read> {
        let pinned: HashSet<&str> = self
            .links
            .iter()
            .flat_map(|link| &link.reaction.emits)
            .filter(|emit| matches!(emit.expect, Expect::Value(_)))
            .map(|emit| emit.key.as_str())
            .collect();
        let mut seen = HashSet::new();
        self.links
            .iter()
            .flat_map(|link| &link.reaction.reads)
            .filter(|read| !pinned.contains(read.key.as_str()) && seen.insert(read.key.as_str()))
            .collect()
    }

    pub fn span(&self) -> tracing::Span {
        match self.links.as_slice() {
            [only] => event_span(only.command),
            links => tracing::info_span!(
                "chain",
                commands = links.len(),
                first_position = links[0].command.position
            ),
        }
    }
}

/// Where a key a decision of the round touched stands.
struct KeyState {
    chain: usize,
    /// Its version after the round's decisions so far (`None`: no event).
    version: Option<i64>,
}

/// Where a decision goes: the versions it leaves its keys at, and the
/// chains it joins.
type Placement<'r> = (HashMap<&'r str, Option<i64>>, BTreeSet<usize>);

/// A round's decisions, gathered into chains.
#[derive(Default)]
pub(crate) struct Chains<'e> {
    chains: Vec<Chain<'e>>,
    keys: HashMap<String, KeyState>,
    /// Keys a decision given back touches: no later one of the round may.
    blocked: HashSet<String>,
}

impl<'e> Chains<'e> {
    /// Adds `decided` to the round, chained after the decisions whose keys
    /// it shares; gives it back if it did not decide on the state they
    /// leave, cannot join them, or touches a key a decision given back
    /// touches (to decide again next round). An `alone` decision shares no
    /// key with another.
    pub fn add(&mut self, decided: Decided<'e>, alone: bool) -> Result<(), Decided<'e>> {
        let Some((after, joined)) = self.place(&decided.reaction, alone) else {
            let touched = touched_keys(&decided.reaction).map(str::to_owned);
            self.blocked.extend(touched);
            return Err(decided);
        };
        let target = match joined.first() {
            Some(first) => *first,
            None => {
                self.chains.push(Chain {
                    links: Vec::new(),
                    alone,
                });
                self.chains.len() - 1
            }
        };
        // Chains that share no key may go in either order: the merged one
        // keeps each one's order.
        for other in joined.iter().skip(1) {
            let links = std::mem::take(&mut self.chains[*other].links);
            self.chains[target].links.extend(links);
        }
        for state in self.keys.values_mut() {
            if joined.contains(&state.chain) {
                state.chain = target;
            }
        }
        for (key, version) in after {
            let state = KeyState {
                chain: target,
                version,
            };
            self.keys.insert(key.to_owned(), state);
        }
        self.chains[target].links.push(decided);
        Ok(())
    }

    /// Where `reaction` would go; `None` if it cannot go in this round.
    fn place<'r>(&self, reaction: &'r Reaction, alone: bool) -> Option<Placement<'r>> {
        if touched_keys(reaction).any(|key| self.blocked.contains(key)) {
            return None;
        }
        let after = self.versions_after(reaction)?;
        let joined: BTreeSet<usize> = after
            .keys()
            .filter_map(|key| self.keys.get(*key))
            .map(|state| state.chain)
            .collect();
        let events = joined
            .iter()
            .map(|chain| self.chains[*chain].event_count())
            .sum::<usize>()
            + reaction.emits.len();
        let fits = joined.is_empty()
            || (!alone
                && !joined.iter().any(|chain| self.chains[*chain].alone)
                && events <= MAX_EVENTS);
        fits.then_some((after, joined))
    }

    /// The versions `reaction` leaves the keys it touches at, if it read
    /// each at the version the round's decisions so far leave it, and pins
    /// each at the value after; `None` if it did not.
    fn versions_after<'r>(&self, reaction: &'r Reaction) -> Option<HashMap<&'r str, Option<i64>>> {
        let mut after: HashMap<&str, Option<i64>> = HashMap::new();
        let known = |after: &HashMap<&str, Option<i64>>, key: &str| {
            after
                .get(key)
                .copied()
                .or_else(|| self.keys.get(key).map(|state| state.version))
        };
        for read in &reaction.reads {
            match known(&after, &read.key) {
                Some(version) if version != read.version => return None,
                _ => {
                    after.insert(&read.key, read.version);
                }
            }
        }
        for emit in &reaction.emits {
            let Expect::Value(value) = emit.expect else {
                continue;
            };
            if let Some(version) = known(&after, &emit.key)
                && value != version.map_or(0, |v| v + 1)
            {
                return None;
            }
            after.insert(&emit.key, Some(value));
        }
        Some(after)
    }

    pub fn into_chains(self) -> impl Iterator<Item = Chain<'e>> {
        self.chains
            .into_iter()
            .filter(|chain| !chain.links.is_empty())
    }
}

/// The keys `reaction` reads or pins.
fn touched_keys(reaction: &Reaction) -> impl Iterator<Item = &str> {
    let read = reaction.reads.iter().map(|read| read.key.as_str());
    let pinned = (reaction.emits.iter())
        .filter(|emit| matches!(emit.expect, Expect::Value(_)))
        .map(|emit| emit.key.as_str());
    read.chain(pinned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Emit;
    use bus::protocol::{Consistency, ConsistencyValue};
    use chrono::Utc;
    use serde_json::value::RawValue;
    use uuid::Uuid;

    fn command(position: i64) -> EventRecord {
        EventRecord {
            position,
            event_id: Uuid::now_v7(),
            event_type: "PendingTransaction".into(),
            consistency: Consistency {
                key: format!("tx-{position}"),
                value: ConsistencyValue::Explicit(0),
            },
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            timestamp: Utc::now(),
            data: RawValue::from_string("{}".into()).unwrap(),
            published_by: None,
        }
    }

    fn read(key: &str, version: Option<i64>) -> Read {
        Read {
            key: key.into(),
            version,
        }
    }

    fn emit(key: &str, expect: Expect) -> Emit {
        Emit::new("ConfirmedDebit", key.into(), expect, &()).unwrap()
    }

    /// A transfer out of `acc-1` into `acc-2` decided on these versions.
    fn accepted(from: i64, to: i64) -> Reaction {
        Reaction {
            emits: vec![
                emit("acc-1", Expect::Value(from + 1)),
                emit("acc-2", Expect::Value(to + 1)),
            ],
            reads: vec![read("acc-1", Some(from)), read("acc-2", Some(to))],
        }
    }

    fn rejected(from: i64, to: i64) -> Reaction {
        Reaction {
            emits: vec![emit("result", Expect::Any)],
            reads: vec![read("acc-1", Some(from)), read("acc-2", Some(to))],
        }
    }

    fn gather<'e>(decisions: Vec<(&'e EventRecord, Reaction, bool)>) -> (Vec<Chain<'e>>, Vec<i64>) {
        let mut chains = Chains::default();
        let mut deferred = Vec::new();
        for (command, reaction, alone) in decisions {
            if let Err(back) = chains.add(Decided { command, reaction }, alone) {
                deferred.push(back.command.position);
            }
        }
        (chains.into_chains().collect(), deferred)
    }

    fn positions(chain: &Chain) -> Vec<i64> {
        chain.commands().map(|command| command.position).collect()
    }

    #[test]
    fn decisions_each_on_the_state_the_last_leaves_form_one_chain() {
        let (a, b, c) = (command(1), command(2), command(3));
        let (chains, deferred) = gather(vec![
            (&a, accepted(4, 9), false),
            (&b, accepted(5, 10), false),
            (&c, rejected(6, 11), false),
        ]);
        assert!(deferred.is_empty());
        assert_eq!(chains.len(), 1);
        assert_eq!(positions(&chains[0]), [1, 2, 3]);
        let values: Vec<_> = chains[0]
            .events()
            .iter()
            .map(|event| (event.key.clone(), event.value))
            .collect();
        assert_eq!(
            values,
            [
                ("acc-1".into(), ConsistencyValue::Explicit(5)),
                ("acc-2".into(), ConsistencyValue::Explicit(10)),
                ("acc-1".into(), ConsistencyValue::Explicit(6)),
                ("acc-2".into(), ConsistencyValue::Explicit(11)),
                ("result".into(), ConsistencyValue::Implicit),
            ]
        );
        assert!(
            chains[0].reads_to_confirm().is_empty(),
            "the rejection read what the chain's own pinned events leave"
        );
    }

    #[test]
    fn a_decision_on_the_tables_as_they_were_waits_for_the_next_round() {
        let (a, b) = (command(1), command(2));
        let (chains, deferred) = gather(vec![
            (&a, accepted(4, 9), false),
            (&b, accepted(4, 9), false),
        ]);
        assert_eq!(deferred, [2]);
        assert_eq!(chains.len(), 1);
        assert_eq!(positions(&chains[0]), [1]);
    }

    #[test]
    fn a_pin_that_skips_a_value_waits_too() {
        let (a, b) = (command(1), command(2));
        let skipping = Reaction {
            emits: vec![emit("acc-1", Expect::Value(7))],
            reads: Vec::new(),
        };
        let (_, deferred) = gather(vec![(&a, accepted(4, 9), false), (&b, skipping, false)]);
        assert_eq!(deferred, [2]);
    }

    #[test]
    fn decisions_on_other_keys_go_in_chains_of_their_own_and_a_link_joins_them() {
        let (a, b, c) = (command(1), command(2), command(3));
        let elsewhere = Reaction {
            emits: vec![emit("acc-3", Expect::Value(1))],
            reads: vec![read("acc-3", Some(0))],
        };
        let both = Reaction {
            emits: vec![
                emit("acc-3", Expect::Value(2)),
                emit("acc-1", Expect::Value(6)),
            ],
            reads: vec![read("acc-3", Some(1)), read("acc-1", Some(5))],
        };
        let (chains, deferred) = gather(vec![
            (&a, accepted(4, 9), false),
            (&b, elsewhere, false),
            (&c, both, false),
        ]);
        assert!(deferred.is_empty());
        assert_eq!(chains.len(), 1);
        assert_eq!(positions(&chains[0]), [1, 2, 3]);
    }

    #[test]
    fn only_first_reads_of_keys_no_event_pins_are_confirmed() {
        let (a, b) = (command(1), command(2));
        let (chains, _) = gather(vec![
            (&a, rejected(4, 9), false),
            (&b, rejected(4, 9), false),
        ]);
        assert_eq!(chains.len(), 1);
        assert_eq!(
            chains[0].reads_to_confirm(),
            [&read("acc-1", Some(4)), &read("acc-2", Some(9))]
        );
        let (c, d) = (command(3), command(4));
        let (chains, _) = gather(vec![
            (&c, rejected(4, 9), false),
            (&d, accepted(4, 9), false),
        ]);
        assert!(
            chains[0].reads_to_confirm().is_empty(),
            "the acceptance pins what the rejection read, in the same message"
        );
    }

    #[test]
    fn a_decision_marked_alone_shares_no_message() {
        let (a, b, c) = (command(1), command(2), command(3));
        let (chains, deferred) = gather(vec![
            (&a, accepted(4, 9), true),
            (&b, accepted(5, 10), false),
            (&c, accepted(4, 9), true),
        ]);
        assert_eq!(deferred, [2, 3]);
        assert_eq!(chains.len(), 1);
        assert_eq!(positions(&chains[0]), [1]);
        let (d, e) = (command(4), command(5));
        let (_, deferred) = gather(vec![
            (&d, accepted(4, 9), false),
            (&e, accepted(5, 10), true),
        ]);
        assert_eq!(deferred, [5]);
    }

    /// A decision given back may have changed the state the service
    /// decided later commands on: those wait too, even on keys no chain
    /// of the round holds yet.
    #[test]
    fn nothing_after_a_decision_given_back_builds_on_it() {
        let (p, d, e) = (command(1), command(2), command(3));
        let transfer = |from: &str, from_version: i64, to: &str, to_version: i64| Reaction {
            emits: vec![
                emit(from, Expect::Value(from_version + 1)),
                emit(to, Expect::Value(to_version + 1)),
            ],
            reads: vec![read(from, Some(from_version)), read(to, Some(to_version))],
        };
        let (chains, deferred) = gather(vec![
            (&p, transfer("acc-9", 0, "acc-5", 0), false),
            // Alone, so it cannot join acc-9's chain; the service credited
            // acc-1 with it all the same.
            (&d, transfer("acc-9", 1, "acc-1", 4), true),
            // Decided on acc-1 as that credit leaves it.
            (&e, transfer("acc-1", 5, "acc-3", 0), false),
        ]);
        assert_eq!(deferred, [2, 3]);
        assert_eq!(chains.len(), 1);
        assert_eq!(positions(&chains[0]), [1]);
    }

    #[test]
    fn a_chain_stops_growing_before_its_message_is_too_long() {
        let commands: Vec<EventRecord> = (0..200).map(command).collect();
        let decisions = commands
            .iter()
            .enumerate()
            .map(|(i, command)| (command, accepted(i as i64, 1000 + i as i64), false))
            .collect();
        let (chains, deferred) = gather(decisions);
        assert_eq!(chains.len(), 1);
        assert_eq!(chains[0].len(), MAX_EVENTS / 2);
        assert_eq!(deferred.len(), 200 - MAX_EVENTS / 2);
    }
}
