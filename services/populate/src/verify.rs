//! The checks of the log, made from the log alone, independently of the
//! services' own tables:
//!
//! - positions only grow; every key's values run 0, 1, 2, … in position
//!   order, without a gap; each event is on the key its data names;
//! - no event id appears twice;
//! - every `PendingTransaction` has exactly one decision (a transfer of
//!   another client still undecided when the log is read is counted as
//!   pending, not as a fault; the run's own must all be decided), caused by
//!   it and in its correlation;
//! - an accepted transfer has exactly one debit of its amount from its
//!   source and one credit to its destination, at the two positions right
//!   after its decision (the log keeps a message's events together, in its
//!   order, and records no message boundary: this is as close as the log
//!   can show "one message"), caused by the same event and in the
//!   transfer's correlation; a rejected one moves nothing;
//! - deposits and withdrawals were caused by no event (they come from
//!   requests);
//! - replaying credits and debits, no account is ever negative, and each
//!   ends with the balance the accounts service reports now;
//! - all the money held is deposits minus withdrawals;
//! - every event a service gave a receipt for is in the log;
//! - the run's own deposits, withdrawals and transfers (found by the tag in
//!   their note or reference) are in the log exactly as often as the
//!   services said they were done: a retry never paid twice.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt,
};

use bus::protocol::{ConsistencyValue, EventRecord};
use events::{
    AcceptedTransaction, ConfirmedCredit, ConfirmedDebit, DomainEvent, PendingTransaction,
    RejectedTransaction,
};
use rust_decimal::Decimal;

use crate::receipts::Receipt;

/// What the log holds, once it has passed every check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub events: usize,
    pub keys: usize,
    pub transfers_accepted: usize,
    pub transfers_rejected: usize,
    pub deposits: Decimal,
    pub withdrawals: Decimal,
    pub money_held: Decimal,
    pub accounts: usize,
    /// Accounts whose balance was compared with the accounts service's.
    pub balances_compared: usize,
    pub receipts_found: usize,
    /// Other clients' transfers not yet decided when the log was read.
    pub transfers_pending: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let money = |sum: Decimal| events::format_money(sum);
        write!(
            f,
            "verified: {} events on {} keys; {} transfers accepted, {} rejected; \
             deposits {} - withdrawals {} = money held {} in {} accounts; \
             {} balances equal the accounts service's; {} receipts found in the log{}",
            self.events,
            self.keys,
            self.transfers_accepted,
            self.transfers_rejected,
            money(self.deposits),
            money(self.withdrawals),
            money(self.money_held),
            self.accounts,
            self.balances_compared,
            self.receipts_found,
            if self.transfers_pending > 0 {
                format!("; {} other transfers still pending", self.transfers_pending)
            } else {
                String::new()
            },
        )
    }
}

/// The note or reference every deposit, withdrawal and transfer of `run` carries.
pub fn tag(run: &str) -> String {
    format!("populate {run}")
}

/// How many of its movements a run was told were stored, to find in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub tag: String,
    /// Opening deposits and deposits booked.
    pub deposits: u64,
    pub withdrawals: u64,
    /// Transfers asked for (answered 202).
    pub transfers: u64,
    /// Operations without a final answer: each may or may not be stored.
    pub unsure: u64,
}

impl Expected {
    /// From the run's receipts (one per event a service said it stored)
    /// and its failures.
    pub fn of(run: &str, receipts: &[Receipt], report: &crate::Report) -> Self {
        let count = |event_type: &str| {
            receipts
                .iter()
                .filter(|r| r.event_type == event_type)
                .count() as u64
        };
        Self {
            tag: tag(run),
            deposits: count(ConfirmedCredit::TYPE),
            withdrawals: count(ConfirmedDebit::TYPE),
            transfers: count(PendingTransaction::TYPE),
            unsure: report.failed(),
        }
    }
}

/// What is wrong with the log (at most [`PROBLEMS_SHOWN`] of them word for word).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the log fails {count} checks:\n  {}", .shown.join("\n  "))]
pub struct Problems {
    pub count: usize,
    pub shown: Vec<String>,
}

pub const PROBLEMS_SHOWN: usize = 30;

#[derive(Default)]
struct Found {
    count: usize,
    shown: Vec<String>,
}

impl Found {
    fn note(&mut self, problem: String) {
        self.count += 1;
        if self.shown.len() < PROBLEMS_SHOWN {
            self.shown.push(problem);
        }
    }
}

/// A money event of a transfer or of a deposit or withdrawal.
struct Movement<'e> {
    event: &'e EventRecord,
    account_id: i64,
    amount: Decimal,
    transaction_id: Option<i64>,
    note: String,
}

/// Checks `log` (every banking event, in position order), comparing the
/// replayed balances with `reported` (account → balance, as the accounts
/// service reports it now), looking up every receipt and, given a run's
/// expectations, counting its movements.
pub fn verify(
    log: &[EventRecord],
    reported: &BTreeMap<i64, Decimal>,
    receipts: &[Receipt],
    expected: Option<&Expected>,
) -> Result<Summary, Problems> {
    let mut tagged = (0u64, 0u64, 0u64);
    let mut found = Found::default();
    let mut summary = Summary {
        events: log.len(),
        ..Summary::default()
    };

    // Keys, values and ids.
    let mut next_value: HashMap<&str, i64> = HashMap::new();
    let mut at: HashMap<(&str, i64), &EventRecord> = HashMap::new();
    let mut ids = HashSet::new();
    let mut last_position = 0;
    for event in log {
        if event.position <= last_position {
            found.note(format!(
                "position {} comes after position {last_position}",
                event.position
            ));
        }
        last_position = event.position;
        let key = event.consistency.key.as_str();
        let expected = next_value.entry(key).or_insert(0);
        match event.consistency.value {
            ConsistencyValue::Explicit(value) if value == *expected => *expected += 1,
            ConsistencyValue::Explicit(value) => {
                found.note(format!(
                    "key {key}: value {value} at position {}, where {} comes next",
                    event.position, expected
                ));
                *expected = value + 1;
            }
            ConsistencyValue::Implicit => found.note(format!(
                "position {}: stored without a value",
                event.position
            )),
        }
        if let ConsistencyValue::Explicit(value) = event.consistency.value {
            at.insert((key, value), event);
        }
        if !ids.insert(event.event_id) {
            found.note(format!("event id {} appears twice", event.event_id));
        }
    }
    summary.keys = next_value.len();

    // Transfers and money.
    let mut pending: BTreeMap<i64, (&EventRecord, PendingTransaction)> = BTreeMap::new();
    let mut decisions: BTreeMap<i64, Vec<(&EventRecord, bool)>> = BTreeMap::new();
    let mut movements: BTreeMap<i64, Vec<(Movement, bool)>> = BTreeMap::new();
    let mut balances: BTreeMap<i64, Decimal> = BTreeMap::new();
    for event in log {
        let data = event.data.get();
        match event.event_type.as_str() {
            PendingTransaction::TYPE => match PendingTransaction::decode(data) {
                Ok(asked) => {
                    if event.consistency.key != events::transfer_key(asked.transaction_id) {
                        found.note(format!(
                            "position {}: transfer {} on key {}",
                            event.position, asked.transaction_id, event.consistency.key
                        ));
                    }
                    tagged.2 +=
                        u64::from(expected.is_some_and(|expected| asked.reference == expected.tag));
                    if pending
                        .insert(asked.transaction_id, (event, asked))
                        .is_some()
                    {
                        found.note(format!(
                            "transfer asked for twice, again at {}",
                            event.position
                        ));
                    }
                }
                Err(error) => found.note(format!("position {}: {error}", event.position)),
            },
            AcceptedTransaction::TYPE => match AcceptedTransaction::decode(data) {
                Ok(accepted) => decisions
                    .entry(accepted.transaction_id)
                    .or_default()
                    .push((event, true)),
                Err(error) => found.note(format!("position {}: {error}", event.position)),
            },
            RejectedTransaction::TYPE => match RejectedTransaction::decode(data) {
                Ok(rejected) => decisions
                    .entry(rejected.transaction_id)
                    .or_default()
                    .push((event, false)),
                Err(error) => found.note(format!("position {}: {error}", event.position)),
            },
            ConfirmedCredit::TYPE | ConfirmedDebit::TYPE => {
                let credit = event.event_type == ConfirmedCredit::TYPE;
                // Credits and debits carry the same fields.
                let fields = if credit {
                    ConfirmedCredit::decode(data)
                        .map(|c| (c.account_id, c.amount, c.note, c.transaction_id))
                } else {
                    ConfirmedDebit::decode(data)
                        .map(|d| (d.account_id, d.amount, d.note, d.transaction_id))
                };
                let movement = match fields {
                    Ok((account_id, amount, note, transaction_id)) => Movement {
                        event,
                        account_id,
                        amount: amount.value(),
                        transaction_id,
                        note,
                    },
                    Err(error) => {
                        found.note(format!("position {}: {error}", event.position));
                        continue;
                    }
                };
                if event.consistency.key != events::account_key(movement.account_id) {
                    found.note(format!(
                        "position {}: money of account {} on key {}",
                        event.position, movement.account_id, event.consistency.key
                    ));
                }
                if movement.transaction_id.is_none() && event.causation_id.is_some() {
                    found.note(format!(
                        "position {}: a deposit or withdrawal caused by another event",
                        event.position
                    ));
                }
                let balance = balances.entry(movement.account_id).or_default();
                if credit {
                    *balance += movement.amount;
                } else {
                    *balance -= movement.amount;
                }
                if *balance < Decimal::ZERO {
                    found.note(format!(
                        "account {} is negative ({}) at position {}",
                        movement.account_id, balance, event.position
                    ));
                }
                let ours = expected.is_some_and(|expected| movement.note == expected.tag);
                match movement.transaction_id {
                    None if credit => {
                        summary.deposits += movement.amount;
                        tagged.0 += u64::from(ours);
                    }
                    None => {
                        summary.withdrawals += movement.amount;
                        tagged.1 += u64::from(ours);
                    }
                    Some(id) => movements.entry(id).or_default().push((movement, credit)),
                }
            }
            _ => {}
        }
    }

    for (id, (asked_event, asked)) in &pending {
        let decided = decisions.remove(id).unwrap_or_default();
        let moved = movements.remove(id).unwrap_or_default();
        let ours = expected.is_some_and(|expected| asked.reference == expected.tag);
        if decided.is_empty() && moved.is_empty() && !ours && expected.is_some() {
            summary.transfers_pending += 1;
            continue;
        }
        let [(decision, accepted)] = decided[..] else {
            found.note(format!(
                "transfer {id} has {} decisions, not one",
                decided.len()
            ));
            continue;
        };
        if decision.causation_id != Some(asked_event.event_id)
            || decision.correlation_id != asked_event.correlation_id
        {
            found.note(format!(
                "transfer {id}: its decision at {} was not caused by it, in its correlation",
                decision.position
            ));
        }
        if !accepted {
            summary.transfers_rejected += 1;
            if !moved.is_empty() {
                found.note(format!(
                    "rejected transfer {id} moved money {} times",
                    moved.len()
                ));
            }
            continue;
        }
        summary.transfers_accepted += 1;
        let debits: Vec<&Movement> = moved
            .iter()
            .filter(|(_, credit)| !credit)
            .map(|(m, _)| m)
            .collect();
        let credits: Vec<&Movement> = moved
            .iter()
            .filter(|(_, credit)| *credit)
            .map(|(m, _)| m)
            .collect();
        let ([debit], [credit]) = (&debits[..], &credits[..]) else {
            found.note(format!(
                "accepted transfer {id} has {} debits and {} credits, not one each",
                debits.len(),
                credits.len()
            ));
            continue;
        };
        let amount = asked.amount.value();
        if debit.account_id != asked.from_account_id || debit.amount != amount {
            found.note(format!(
                "transfer {id}: the debit is {} from {}",
                debit.amount, debit.account_id
            ));
        }
        if credit.account_id != asked.to_account_id || credit.amount != amount {
            found.note(format!(
                "transfer {id}: the credit is {} to {}",
                credit.amount, credit.account_id
            ));
        }
        // One message: stored together, right after the decision, caused by
        // the same event, in the transfer's correlation.
        let together = [debit.event, credit.event].iter().all(|event| {
            event.causation_id == Some(asked_event.event_id)
                && event.correlation_id == asked_event.correlation_id
        }) && debit.event.position == decision.position + 1
            && credit.event.position == decision.position + 2;
        if !together {
            found.note(format!(
                "transfer {id}: its decision, debit and credit (positions {}, {}, {}) are not one message",
                decision.position, debit.event.position, credit.event.position
            ));
        }
    }
    for id in decisions.keys() {
        found.note(format!("transfer {id} was decided but never asked for"));
    }
    for (id, moved) in &movements {
        found.note(format!(
            "{} money events name transfer {id}, which was never asked for",
            moved.len()
        ));
    }

    summary.money_held = balances.values().copied().sum();
    summary.accounts = balances.len();
    if summary.money_held != summary.deposits - summary.withdrawals {
        found.note(format!(
            "money held {} is not deposits {} minus withdrawals {}",
            summary.money_held, summary.deposits, summary.withdrawals
        ));
    }
    for (account, reported) in reported {
        let replayed = balances.get(account).copied().unwrap_or_default();
        if replayed != *reported {
            found.note(format!(
                "account {account}: the log gives {replayed}, the accounts service reports {reported}"
            ));
        }
    }
    summary.balances_compared = reported.len();

    for receipt in receipts {
        match at.get(&(receipt.key.as_str(), receipt.value)) {
            Some(event) if event.event_type == receipt.event_type => summary.receipts_found += 1,
            Some(event) => found.note(format!(
                "receipt of {} {}@{} (request {}): the log has a {} there",
                receipt.event_type, receipt.key, receipt.value, receipt.request, event.event_type
            )),
            None => found.note(format!(
                "receipt of {} {}@{} (request {}): not in the log",
                receipt.event_type, receipt.key, receipt.value, receipt.request
            )),
        }
    }

    if let Some(expected) = expected {
        let wanted = (expected.deposits, expected.withdrawals, expected.transfers);
        let within = |found: u64, wanted: u64| (wanted..=wanted + expected.unsure).contains(&found);
        if !(within(tagged.0, wanted.0) && within(tagged.1, wanted.1) && within(tagged.2, wanted.2))
        {
            found.note(format!(
                "the run's deposits, withdrawals and transfers in the log are {tagged:?}; \
                 the services said {wanted:?} were stored ({} operations had no final answer)",
                expected.unsure
            ));
        }
    }

    if found.count == 0 {
        Ok(summary)
    } else {
        Err(Problems {
            count: found.count,
            shown: found.shown,
        })
    }
}
