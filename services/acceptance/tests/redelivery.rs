//! kill -9 one of two accounts instances in the middle of a burst of
//! transfers: every transfer is still decided, and nothing is applied twice.

use std::collections::BTreeMap;

use acceptance::{Bank, balances_from_log};
use serde_json::{Value, json};

const USERS: usize = 6;
const TRANSFERS: usize = 300;

#[tokio::test]
async fn a_killed_accounts_instance_loses_nothing_and_doubles_nothing() {
    let mut bank = Bank::start_with_accounts(2).await;
    let accounts = bank.funded_customers(USERS, "100.00").await;

    let mut requests = Vec::new();
    for i in 0..TRANSFERS {
        // A fixed spread of pairs and amounts (some beyond the balance).
        let (from, to) = (i % USERS, (i * 7 + 1) % USERS);
        let to = if to == from { (to + 1) % USERS } else { to };
        let amount = format!("{}.{:02}", (i * 13) % 60 + 1, i % 100);
        let api = bank.call(&bank.transactions);
        let (name, from_account) = accounts[from].clone();
        let to_account = accounts[to].1;
        requests.push(tokio::spawn(async move {
            let (status, body) = api
                .post(Some(&name), "/transfers", json!({"from_account_id": from_account, "to_account_id": to_account, "amount": amount}))
                .await;
            assert_eq!(status, 202, "{body}");
            (name, body["transaction_id"].as_i64().expect("an id"))
        }));
    }
    // Mid-burst: decisions are flowing, most transfers still wait.
    acceptance::eventually("the first decisions", || async {
        let decided = bank
            .log(&["AcceptedTransaction", "RejectedTransaction"])
            .await
            .len();
        (decided >= TRANSFERS / 10).then_some(())
    })
    .await;
    // Frozen first, so that what it was handed stays unacknowledged; then
    // killed. Its unacknowledged events reach the survivor as redeliveries.
    bank.accounts[1].freeze();
    let before = redeliveries(&bank).await;
    bank.accounts[1].kill9();
    acceptance::eventually(
        "the killed instance's events are delivered again",
        || async { (redeliveries(&bank).await > before).then_some(()) },
    )
    .await;

    let mut ids = Vec::new();
    for request in requests {
        ids.push(request.await.expect("the task ran"));
    }
    for (name, id) in &ids {
        let status = bank.decided(name, *id).await["status"].clone();
        assert!(status == "accepted" || status == "rejected", "{status}");
    }

    // One decision per transfer, one debit and one credit per accepted one.
    let log = bank
        .log(&[
            "AcceptedTransaction",
            "RejectedTransaction",
            "ConfirmedDebit",
            "ConfirmedCredit",
        ])
        .await;
    let mut seen: BTreeMap<(String, i64), usize> = BTreeMap::new();
    for event in &log {
        let data: Value = serde_json::from_str(event.data.get()).expect("JSON");
        if let Some(id) = data["transaction_id"].as_i64() {
            *seen.entry((event.event_type.clone(), id)).or_default() += 1;
        }
    }
    assert!(
        seen.values().all(|count| *count == 1),
        "an event was published twice: {seen:?}"
    );
    for (_, id) in &ids {
        let decisions = ["AcceptedTransaction", "RejectedTransaction"]
            .iter()
            .filter(|t| seen.contains_key(&((**t).to_owned(), *id)))
            .count();
        assert_eq!(decisions, 1, "transfer {id}");
    }

    // Every balance and every statement matches the log: nothing applied twice.
    let from_log = balances_from_log(&log_with_deposits(&bank).await);
    for (name, account) in &accounts {
        let expected = from_log.get(account).copied().unwrap_or_default();
        let balance = acceptance::eventually(&format!("account {account} caught up"), || async {
            let balance = bank.balance(name, *account).await;
            (balance == expected).then_some(balance)
        })
        .await;
        assert_eq!(balance, expected);
        let lines = bank.statement_lines(name, *account).await;
        let logged = log_with_deposits(&bank)
            .await
            .iter()
            .filter(|e| {
                e.consistency.key == format!("acc-{account}")
                    && e.event_type.starts_with("Confirmed")
            })
            .count();
        assert_eq!(lines, logged, "account {account}");
    }
}

async fn log_with_deposits(bank: &Bank) -> Vec<bus::protocol::EventRecord> {
    bank.log(&["ConfirmedDebit", "ConfirmedCredit"]).await
}

/// How many events the surviving instance was handed a second time or more.
async fn redeliveries(bank: &Bank) -> u64 {
    bank.accounts_metric("superclient_redeliveries_total").await
}
