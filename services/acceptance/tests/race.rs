//! Two instances of every service, and withdrawals and transfers racing on
//! one account across them, round after round, as an outside client would
//! send them: no answer is ever a 500, every answer agrees with the log,
//! and the log never lets the account go below zero.

use std::collections::HashMap;

use acceptance::{Bank, Service, balances_from_log, eventually};
use rust_decimal::Decimal;
use serde_json::{Value, json};

const ROUNDS: usize = 5;
const RACERS: usize = 50;

#[tokio::test]
async fn racing_requests_across_instances_are_answered_as_the_log_says() {
    let bank = Bank::start_with_accounts(2).await;
    // Both apply the users' events into one schema while the others race.
    let _second_users = bank.another(Service::Users);
    let second_transactions = bank.another(Service::Transactions);
    let alice = bank.sign_up("alice").await;
    let bob = bank.sign_up("bob").await;
    let accounts = [bank.call(&bank.accounts[0]), bank.call(&bank.accounts[1])];
    let transactions = [
        bank.call(&bank.transactions),
        bank.call(&second_transactions),
    ];

    let mut withdrawn_total = Decimal::ZERO;
    let mut accepted_total = Decimal::ZERO;
    for round in 0..ROUNDS {
        bank.deposit("alice", alice, "30.00").await;
        let mut withdrawals = Vec::new();
        let mut transfers = Vec::new();
        for racer in 0..RACERS {
            let api = accounts[racer % 2].clone();
            withdrawals.push(tokio::spawn(async move {
                let key = format!("w-{round}-{racer}");
                let answer = api
                    .post_with_key(
                        Some("alice"),
                        &format!("/accounts/{alice}/withdrawals"),
                        json!({"amount": "1.00"}),
                        &key,
                    )
                    .await;
                (key, answer)
            }));
            let api = transactions[racer % 2].clone();
            transfers.push(tokio::spawn(async move {
                api.post(
                    Some("alice"),
                    "/transfers",
                    json!({"from_account_id": alice, "to_account_id": bob, "amount": "1.00"}),
                )
                .await
            }));
        }

        // What each withdrawal was told.
        let mut told: HashMap<i64, String> = HashMap::new();
        let mut withdrawn = 0;
        for withdrawal in withdrawals {
            let (key, (status, body)) = withdrawal.await.expect("the task ran");
            match status {
                201 => {
                    withdrawn += 1;
                    let version = body["entry"]["version"].as_i64().expect("an entry");
                    assert_eq!(body["entry"]["kind"], "debit", "{body}");
                    assert!(
                        told.insert(version, key).is_none(),
                        "two answers, one entry"
                    );
                }
                422 => assert_eq!(body["error"]["code"], "insufficient_funds", "{body}"),
                other => panic!("round {round}: a withdrawal answered {other}: {body}"),
            }
        }
        let mut ids = Vec::new();
        for transfer in transfers {
            let (status, body) = transfer.await.expect("the task ran");
            assert_eq!(status, 202, "round {round}: {body}");
            ids.push(body["transaction_id"].as_i64().expect("an id"));
        }
        let mut accepted = 0;
        for id in &ids {
            match bank.decided("alice", *id).await["status"].as_str() {
                Some("accepted") => accepted += 1,
                Some("rejected") => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            withdrawn + accepted,
            30,
            "round {round}: exactly the £30 deposited"
        );
        withdrawn_total += Decimal::from(withdrawn);
        accepted_total += Decimal::from(accepted);

        // Every 201 is a debit in the log at the version it named, and no
        // debit of a withdrawal is in the log without a 201 for it.
        let log = bank.log(&["ConfirmedDebit"]).await;
        let withdrawals_logged: Vec<i64> = log
            .iter()
            .filter(|event| {
                let data: Value = serde_json::from_str(event.data.get()).expect("JSON");
                event.consistency.key == format!("acc-{alice}") && data["transaction_id"].is_null()
            })
            .map(value_of)
            .collect();
        let expected: usize = withdrawn_total.try_into().unwrap();
        assert_eq!(withdrawals_logged.len(), expected, "round {round}");
        for version in told.keys() {
            assert!(
                withdrawals_logged.contains(version),
                "round {round}: version {version}"
            );
        }
        bank.balance_becomes("alice", alice, Decimal::ZERO).await;
    }

    let log = bank.log(&["ConfirmedCredit", "ConfirmedDebit"]).await;
    let from_log = balances_from_log(&log);
    assert_eq!(from_log[&alice], Decimal::ZERO);
    assert_eq!(from_log[&bob], accepted_total);
    let total: Decimal = from_log.values().sum();
    assert_eq!(total, Decimal::from(30 * ROUNDS) - withdrawn_total);
    eventually("bob's credits applied", || async {
        (bank.balance("bob", bob).await == accepted_total).then_some(())
    })
    .await;
}

fn value_of(event: &bus::protocol::EventRecord) -> i64 {
    match event.consistency.value {
        bus::protocol::ConsistencyValue::Explicit(value) => value,
        bus::protocol::ConsistencyValue::Implicit => -1,
    }
}
