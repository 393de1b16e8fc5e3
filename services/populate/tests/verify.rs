//! The log checks catch every kind of damage: a sound log passes, and each
//! corruption of it is named.

use std::collections::BTreeMap;

use bus::protocol::{Consistency, ConsistencyValue, EventRecord};
use populate::{
    receipts::Receipt,
    verify::{Expected, verify},
};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

/// A log being written, one event at a time, with sound keys and values.
#[derive(Default)]
struct Log {
    events: Vec<EventRecord>,
    values: BTreeMap<String, i64>,
}

impl Log {
    fn push(
        &mut self,
        event_type: &str,
        key: &str,
        data: Value,
        correlation: Uuid,
        cause: Option<Uuid>,
    ) -> Uuid {
        let value = self.values.entry(key.to_owned()).or_insert(0);
        let event_id = Uuid::now_v7();
        self.events.push(EventRecord {
            position: self.events.len() as i64 + 1,
            event_id,
            event_type: event_type.to_owned(),
            consistency: Consistency {
                key: key.to_owned(),
                value: ConsistencyValue::Explicit(*value),
            },
            correlation_id: correlation,
            causation_id: cause,
            timestamp: chrono::Utc::now(),
            data: serde_json::value::to_raw_value(&data).expect("JSON"),
            published_by: Some("test@127.0.0.1:1".into()),
        });
        *value += 1;
        event_id
    }

    fn deposit(&mut self, account: i64, amount: &str) {
        self.push("ConfirmedCredit", &format!("acc-{account}"),
            json!({"account_id": account, "amount": amount, "note": "populate t", "transaction_id": null}),
            Uuid::now_v7(), None);
    }

    fn withdrawal(&mut self, account: i64, amount: &str) {
        self.push("ConfirmedDebit", &format!("acc-{account}"),
            json!({"account_id": account, "amount": amount, "note": "populate t", "transaction_id": null}),
            Uuid::now_v7(), None);
    }

    /// A transfer and its decision (with its debit and credit when accepted).
    fn transfer(&mut self, id: i64, from: i64, to: i64, amount: &str, accepted: bool) {
        let correlation = Uuid::now_v7();
        let key = format!("trans-{id}");
        let pending = self.push("PendingTransaction", &key,
            json!({"transaction_id": id, "from_account_id": from, "to_account_id": to, "amount": amount,
                   "reference": "populate t", "username": "u"}),
            correlation, None);
        if !accepted {
            self.push(
                "RejectedTransaction",
                &key,
                json!({"transaction_id": id, "reason": "insufficient funds"}),
                correlation,
                Some(pending),
            );
            return;
        }
        self.push(
            "AcceptedTransaction",
            &key,
            json!({"transaction_id": id}),
            correlation,
            Some(pending),
        );
        self.push(
            "ConfirmedDebit",
            &format!("acc-{from}"),
            json!({"account_id": from, "amount": amount, "note": "t", "transaction_id": id}),
            correlation,
            Some(pending),
        );
        self.push(
            "ConfirmedCredit",
            &format!("acc-{to}"),
            json!({"account_id": to, "amount": amount, "note": "t", "transaction_id": id}),
            correlation,
            Some(pending),
        );
    }

    fn data(&mut self, position: usize) -> Value {
        serde_json::from_str(self.events[position - 1].data.get()).expect("JSON")
    }

    fn set_data(&mut self, position: usize, data: Value) {
        self.events[position - 1].data = serde_json::value::to_raw_value(&data).expect("JSON");
    }
}

fn money(text: &str) -> Decimal {
    text.parse().expect("money")
}

/// Two accounts, two deposits, a withdrawal, one accepted and one rejected transfer.
fn sound() -> Log {
    let mut log = Log::default();
    log.deposit(1, "100.00"); // 1
    log.deposit(2, "50.00"); // 2
    log.transfer(1, 1, 2, "30.00", true); // 3..=6
    log.transfer(2, 2, 1, "500.00", false); // 7..=8
    log.withdrawal(2, "80.00"); // 9
    log
}

fn balances() -> BTreeMap<i64, Decimal> {
    BTreeMap::from([(1, money("70.00")), (2, money("0.00"))])
}

fn expected() -> Expected {
    Expected {
        tag: "populate t".into(),
        deposits: 2,
        withdrawals: 1,
        transfers: 2,
        unsure: 0,
    }
}

fn receipt(event_type: &'static str, key: &str, value: i64) -> Receipt {
    Receipt {
        event_type,
        key: key.into(),
        value,
        request: "k".into(),
    }
}

/// The checks' complaints about `log` (none: passes).
fn problems(log: &Log, reported: &BTreeMap<i64, Decimal>, receipts: &[Receipt]) -> Vec<String> {
    match verify(&log.events, reported, receipts, Some(&expected())) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.shown,
    }
}

fn assert_caught(log: &Log, what: &str) {
    let found = problems(log, &balances(), &[]);
    assert!(
        found.iter().any(|problem| problem.contains(what)),
        "expected {what:?}, found {found:?}"
    );
}

#[test]
fn a_sound_log_passes_with_its_totals() {
    let log = sound();
    let receipts = [
        receipt("ConfirmedCredit", "acc-1", 0),
        receipt("PendingTransaction", "trans-1", 0),
    ];
    let summary = verify(&log.events, &balances(), &receipts, Some(&expected())).expect("sound");
    assert_eq!(summary.events, 9);
    assert_eq!(
        (summary.transfers_accepted, summary.transfers_rejected),
        (1, 1)
    );
    assert_eq!(summary.deposits, money("150.00"));
    assert_eq!(summary.withdrawals, money("80.00"));
    assert_eq!(summary.money_held, money("70.00"));
    assert_eq!(summary.balances_compared, 2);
    assert_eq!(summary.receipts_found, 2);
}

#[test]
fn a_gap_in_a_keys_values_is_caught() {
    let mut log = sound();
    log.events[8].consistency.value = ConsistencyValue::Explicit(5);
    assert_caught(&log, "key acc-2: value 5");
}

#[test]
fn an_event_id_twice_is_caught() {
    let mut log = sound();
    log.events[1].event_id = log.events[0].event_id;
    assert_caught(&log, "appears twice");
}

#[test]
fn a_transfer_without_a_decision_or_with_two_is_caught() {
    let mut log = sound();
    log.events.truncate(7);
    let found = problems(&log, &balances(), &[]);
    assert!(
        found
            .iter()
            .any(|p| p.contains("transfer 2 has 0 decisions")),
        "{found:?}"
    );

    let mut log = sound();
    let correlation = log.events[6].correlation_id;
    log.push(
        "AcceptedTransaction",
        "trans-2",
        json!({"transaction_id": 2}),
        correlation,
        None,
    );
    assert_caught(&log, "transfer 2 has 2 decisions");
}

#[test]
fn a_debit_outside_the_decisions_message_or_of_another_amount_is_caught() {
    let mut log = sound();
    // The debit and the credit swap places with the rejected transfer's events.
    log.events.swap(4, 6);
    log.events.swap(5, 7);
    for (index, event) in log.events.iter_mut().enumerate() {
        event.position = index as i64 + 1;
    }
    assert_caught(&log, "are not one message");

    let mut log = sound();
    let mut debit = log.data(5);
    debit["amount"] = json!("31.00");
    log.set_data(5, debit);
    assert_caught(&log, "the debit is 31.00 from 1");
}

#[test]
fn a_rejected_transfer_that_moved_money_is_caught() {
    let mut log = sound();
    let (correlation, cause) = (log.events[6].correlation_id, log.events[6].event_id);
    log.push(
        "ConfirmedCredit",
        "acc-1",
        json!({"account_id": 1, "amount": "500.00", "note": "t", "transaction_id": 2}),
        correlation,
        Some(cause),
    );
    assert_caught(&log, "rejected transfer 2 moved money 1 times");
}

#[test]
fn a_negative_balance_at_any_position_is_caught() {
    let mut log = Log::default();
    log.deposit(1, "10.00");
    log.withdrawal(1, "20.00");
    log.deposit(1, "10.00");
    let found = problems(&log, &BTreeMap::from([(1, Decimal::ZERO)]), &[]);
    assert!(
        found
            .iter()
            .any(|p| p.contains("account 1 is negative (-10.00) at position 2")),
        "{found:?}"
    );
}

#[test]
fn a_balance_the_service_reports_differently_is_caught() {
    let log = sound();
    let reported = BTreeMap::from([(1, money("70.00")), (2, money("0.01"))]);
    let found = problems(&log, &reported, &[]);
    assert_eq!(
        found,
        ["account 2: the log gives 0.00, the accounts service reports 0.01"]
    );
}

#[test]
fn a_receipt_missing_from_the_log_or_of_another_type_is_caught() {
    let log = sound();
    let found = problems(&log, &balances(), &[receipt("ConfirmedCredit", "acc-1", 7)]);
    assert!(
        found
            .iter()
            .any(|p| p.contains("acc-1@7 (request k): not in the log")),
        "{found:?}"
    );
    let found = problems(&log, &balances(), &[receipt("ConfirmedDebit", "acc-1", 0)]);
    assert!(
        found
            .iter()
            .any(|p| p.contains("the log has a ConfirmedCredit there")),
        "{found:?}"
    );
}

#[test]
fn a_deposit_paid_twice_by_a_retry_is_caught() {
    let mut log = sound();
    log.deposit(1, "100.00");
    let reported = BTreeMap::from([(1, money("170.00")), (2, money("0.00"))]);
    let found = problems(&log, &reported, &[]);
    assert!(
        found.iter().any(|p| p.contains("are (3, 1, 2)")),
        "{found:?}"
    );
}

#[test]
fn a_decision_after_its_debit_and_credit_is_caught() {
    let mut log = sound();
    // Decision, debit, credit (3, 4, 5 after the pending at 3) become debit, credit, decision.
    log.events[3..6].rotate_left(1);
    for (index, event) in log.events.iter_mut().enumerate() {
        event.position = index as i64 + 1;
    }
    assert_caught(&log, "are not one message");
}

#[test]
fn money_on_another_accounts_key_is_caught() {
    let mut log = sound();
    log.events[0].consistency.key = "acc-9".into();
    assert_caught(&log, "money of account 1 on key acc-9");
}

#[test]
fn a_deposit_caused_by_another_event_is_caught() {
    let mut log = sound();
    log.events[0].causation_id = Some(log.events[2].event_id);
    assert_caught(&log, "a deposit or withdrawal caused by another event");
}

#[test]
fn positions_that_do_not_grow_are_caught() {
    let mut log = sound();
    log.events[4].position = 4;
    assert_caught(&log, "position 4 comes after position 4");
}

#[test]
fn another_clients_undecided_transfer_is_pending_not_a_fault() {
    let mut log = sound();
    log.push(
        "PendingTransaction",
        "trans-3",
        json!({"transaction_id": 3, "from_account_id": 1, "to_account_id": 2, "amount": "1.00",
               "reference": "someone else's", "username": "v"}),
        Uuid::now_v7(),
        None,
    );
    let summary = verify(&log.events, &balances(), &[], Some(&expected())).expect("sound");
    assert_eq!(summary.transfers_pending, 1);
}

#[test]
fn operations_without_an_answer_may_or_may_not_be_in_the_log() {
    let mut log = sound();
    log.deposit(1, "100.00");
    let reported = BTreeMap::from([(1, money("170.00")), (2, money("0.00"))]);
    let unsure = Expected {
        unsure: 1,
        ..expected()
    };
    verify(&log.events, &reported, &[], Some(&unsure)).expect("one unanswered deposit was stored");
}
