//! A small bank's log over six hours: two users, three accounts, deposits,
//! withdrawals, an accepted transfer and a rejected one; and balances
//! replayed from it independently of the service.

use std::collections::BTreeMap;

use bus::protocol::{Consistency, ConsistencyValue, EventRecord};
use chrono::{DateTime, TimeDelta, Utc};
use events::{
    AcceptedTransaction, AccountCreated, AccountCreationRequest, Amount, ConfirmedCredit,
    ConfirmedDebit, DomainEvent, PendingTransaction, RejectedTransaction,
};
use rust_decimal::Decimal;
use uuid::Uuid;

/// 2025-03-01T09:00:00Z: the first event.
pub fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-01T09:00:00Z")
        .expect("a time")
        .with_timezone(&Utc)
}

/// `start` plus `seconds` (and `millis`).
pub fn at(seconds: i64, millis: i64) -> DateTime<Utc> {
    start() + TimeDelta::seconds(seconds) + TimeDelta::milliseconds(millis)
}

pub fn correlation(n: u128) -> Uuid {
    Uuid::from_u128(0xc0 << 64 | n)
}

pub fn event_id(position: i64) -> Uuid {
    Uuid::from_u128(0xe0 << 64 | position as u128)
}

pub fn request_id(n: u128) -> Uuid {
    Uuid::from_u128(0xa0 << 64 | n)
}

fn money(text: &str) -> Amount {
    text.parse().expect("an amount")
}

struct Log {
    events: Vec<EventRecord>,
    values: BTreeMap<String, i64>,
}

impl Log {
    fn push<E: DomainEvent>(
        &mut self,
        payload: &E,
        at: DateTime<Utc>,
        correlation: Uuid,
        cause: Option<i64>,
    ) {
        let key = payload.key();
        let value = self.values.entry(key.clone()).or_insert(-1);
        *value += 1;
        let position = self.events.len() as i64 + 1;
        self.events.push(EventRecord {
            position,
            event_id: event_id(position),
            event_type: E::TYPE.to_owned(),
            consistency: Consistency {
                key,
                value: ConsistencyValue::Explicit(*value),
            },
            correlation_id: correlation,
            causation_id: cause.map(event_id),
            timestamp: at,
            data: serde_json::value::to_raw_value(payload).expect("a payload"),
            published_by: None,
        });
    }
}

/// The 17 events, positions 1 to 17.
pub fn events() -> Vec<EventRecord> {
    let mut log = Log {
        events: Vec::new(),
        values: BTreeMap::new(),
    };
    let open = |log: &mut Log, n: u128, id: i64, user: &str, seconds: i64| {
        let request = AccountCreationRequest {
            request_id: request_id(n),
            username: user.to_owned(),
        };
        log.push(&request, at(seconds, 0), correlation(n), None);
        let cause = log.events.len() as i64;
        let created = AccountCreated {
            account_id: id,
            request_id: request_id(n),
            username: user.to_owned(),
        };
        log.push(&created, at(seconds + 1, 0), correlation(n), Some(cause));
    };
    open(&mut log, 1, 1, "alice", 0); // 1, 2 at 09:00
    open(&mut log, 2, 2, "bob", 300); // 3, 4 at 09:05
    open(&mut log, 3, 3, "alice", 600); // 5, 6 at 09:10
    let credit = |id, amount, note: &str, transaction_id| ConfirmedCredit {
        account_id: id,
        amount: money(amount),
        note: note.to_owned(),
        transaction_id,
    };
    let debit = |id, amount, note: &str, transaction_id| ConfirmedDebit {
        account_id: id,
        amount: money(amount),
        note: note.to_owned(),
        transaction_id,
    };
    log.push(
        &credit(1, "100", "salary", None),
        at(3600, 0),
        correlation(4),
        None,
    ); // 7, 10:00
    log.push(
        &credit(2, "50", "", None),
        at(5400, 0),
        correlation(5),
        None,
    ); // 8, 10:30
    log.push(
        &debit(1, "20", "cash", None),
        at(8100, 0),
        correlation(6),
        None,
    ); // 9, 11:15
    let pending = PendingTransaction {
        transaction_id: 1,
        from_account_id: 1,
        to_account_id: 2,
        amount: money("30"),
        reference: "rent".to_owned(),
        username: "alice".to_owned(),
    };
    log.push(&pending, at(10800, 0), correlation(7), None); // 10, 12:00
    let accepted = AcceptedTransaction { transaction_id: 1 };
    log.push(&accepted, at(10800, 100), correlation(7), Some(10)); // 11
    let rent = "Transfer to account 2: rent";
    log.push(
        &debit(1, "30", rent, Some(1)),
        at(10800, 100),
        correlation(7),
        Some(10),
    ); // 12
    let rent = "Transfer from account 1: rent";
    log.push(
        &credit(2, "30", rent, Some(1)),
        at(10800, 100),
        correlation(7),
        Some(10),
    ); // 13
    let pending = PendingTransaction {
        transaction_id: 2,
        from_account_id: 2,
        to_account_id: 3,
        amount: money("500"),
        reference: String::new(),
        username: "bob".to_owned(),
    };
    log.push(&pending, at(16200, 0), correlation(8), None); // 14, 13:30
    let rejected = RejectedTransaction {
        transaction_id: 2,
        reason: "insufficient funds".to_owned(),
    };
    log.push(&rejected, at(16200, 50), correlation(8), Some(14)); // 15
    log.push(
        &credit(3, "1000", "bonus", None),
        at(20730, 0),
        correlation(9),
        None,
    ); // 16, 14:45:30
    log.push(
        &debit(2, "5", "", None),
        at(22810, 0),
        correlation(10),
        None,
    ); // 17, 15:20:10
    log.events
}

/// What the log says at a time, worked out here from the payloads alone.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replay {
    pub balances: BTreeMap<i64, Decimal>,
    pub versions: BTreeMap<i64, i64>,
    pub users: BTreeMap<String, DateTime<Utc>>,
    pub events: i64,
    pub deposits: Decimal,
    pub withdrawals: Decimal,
}

impl Replay {
    /// Over the events recorded at or before `at`.
    pub fn at(events: &[EventRecord], at: DateTime<Utc>) -> Self {
        let mut replay = Self::default();
        for event in events.iter().filter(|e| e.timestamp <= at) {
            replay.events += 1;
            let data = event.data.get();
            let version = match event.consistency.value {
                ConsistencyValue::Explicit(value) => value,
                ConsistencyValue::Implicit => unreachable!(),
            };
            match event.event_type.as_str() {
                AccountCreationRequest::TYPE => {
                    let request = AccountCreationRequest::decode(data).unwrap();
                    replay
                        .users
                        .entry(request.username)
                        .or_insert(event.timestamp);
                }
                AccountCreated::TYPE => {
                    let created = AccountCreated::decode(data).unwrap();
                    replay
                        .users
                        .entry(created.username)
                        .or_insert(event.timestamp);
                    replay.balances.insert(created.account_id, Decimal::ZERO);
                    replay.versions.insert(created.account_id, version);
                }
                ConfirmedCredit::TYPE => {
                    let credit = ConfirmedCredit::decode(data).unwrap();
                    *replay.balances.get_mut(&credit.account_id).unwrap() += credit.amount.value();
                    replay.versions.insert(credit.account_id, version);
                    if credit.transaction_id.is_none() {
                        replay.deposits += credit.amount.value();
                    }
                }
                ConfirmedDebit::TYPE => {
                    let debit = ConfirmedDebit::decode(data).unwrap();
                    *replay.balances.get_mut(&debit.account_id).unwrap() -= debit.amount.value();
                    replay.versions.insert(debit.account_id, version);
                    if debit.transaction_id.is_none() {
                        replay.withdrawals += debit.amount.value();
                    }
                }
                _ => {}
            }
        }
        replay
    }

    pub fn money_held(&self) -> Decimal {
        self.balances.values().sum()
    }
}

pub fn text(amount: Decimal) -> String {
    events::format_money(amount)
}
