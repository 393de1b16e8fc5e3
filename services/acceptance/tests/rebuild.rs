//! Stop the services, drop their tables, start them again while transfers
//! keep flowing: they rebuild from the log and catch up with what came
//! meanwhile, and what they show equals what the log says.

use std::collections::BTreeMap;

use acceptance::{Bank, balances_from_log, eventually};
use bus::{
    client::{BusClient, Publish},
    protocol::{ConsistencyValue, ReceiptStatus},
};
use serde_json::{Value, json};

/// Transfers published while the services are down and rebuilding.
const FLOWING: i64 = 200;
/// Their ids, far above the ones the transactions service hands out.
const FIRST_ID: i64 = 1_000_000;

/// Publishes `FLOWING` transfers among `accounts`, as the transactions
/// service would (with its token), ten at a time.
async fn keep_transferring(
    bank: &Bank,
    accounts: Vec<(String, i64)>,
) -> tokio::task::JoinHandle<()> {
    let (client, _) = BusClient::connect(bank.bus_config(Some("transactions")))
        .await
        .expect("connect");
    tokio::spawn(async move {
        for batch in (0..FLOWING).collect::<Vec<_>>().chunks(10) {
            let events = batch
                .iter()
                .map(|n| {
                    let id = FIRST_ID + n;
                    let from = &accounts[*n as usize % accounts.len()];
                    let to = &accounts[(*n as usize + 1) % accounts.len()];
                    let data = json!({"transaction_id": id, "from_account_id": from.1,
                        "to_account_id": to.1, "amount": format!("{}.25", n % 7),
                        "reference": "", "username": from.0});
                    Publish::new(
                        "PendingTransaction",
                        format!("trans-{id}"),
                        ConsistencyValue::Explicit(0),
                        &data,
                    )
                    .expect("encode")
                })
                .collect();
            let receipt = client.publish(events).await.expect("a receipt");
            assert_eq!(receipt.status, ReceiptStatus::Success);
            // Pacing the load over the restart, not waiting for anything.
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        client.close();
    })
}

#[tokio::test]
async fn dropped_tables_are_rebuilt_while_transfers_flow_and_equal_the_log() {
    let mut bank = Bank::start().await;
    let mut accounts = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let account = bank.sign_up(name).await;
        bank.deposit(name, account, "120.00").await;
        accounts.push((name.to_owned(), account));
    }
    let asked = bank
        .transfer("alice", accounts[0].1, accounts[1].1, "20.00")
        .await;
    bank.decided("alice", asked).await;

    let flowing = keep_transferring(&bank, accounts.clone()).await;
    for service in [
        &mut bank.users,
        &mut bank.accounts[0],
        &mut bank.transactions,
    ] {
        assert!(service.terminate().success(), "a graceful stop");
    }
    let pool = bank.db.pool().await;
    sqlx::raw_sql(
        "DROP SCHEMA users CASCADE; DROP SCHEMA accounts CASCADE; DROP SCHEMA transactions CASCADE",
    )
    .execute(&pool)
    .await
    .expect("drop the services' tables");
    bank.users.restart();
    bank.accounts[0].restart();
    bank.transactions.restart();
    bank.restarted();
    flowing.await.expect("every transfer published");

    // Every transfer decided, once.
    let decisions = eventually("every transfer decided", || async {
        let decisions = bank
            .log(&["AcceptedTransaction", "RejectedTransaction"])
            .await;
        (decisions.len() as i64 == FLOWING + 1).then_some(decisions)
    })
    .await;

    // Balances and statements equal the log's.
    let money = bank.log(&["ConfirmedCredit", "ConfirmedDebit"]).await;
    let from_log = balances_from_log(&money);
    for (name, account) in &accounts {
        bank.balance_becomes(name, *account, from_log[account])
            .await;
        let lines = bank.statement_lines(name, *account).await;
        let logged = money
            .iter()
            .filter(|event| event.consistency.key == format!("acc-{account}"))
            .count();
        assert_eq!(lines, logged, "account {account}'s statement");
    }
    // Every transfer's status equals its decision in the log.
    let decided: BTreeMap<i64, &str> = decisions
        .iter()
        .map(|event| {
            let data: Value = serde_json::from_str(event.data.get()).expect("JSON");
            let status = match event.event_type.as_str() {
                "AcceptedTransaction" => "accepted",
                _ => "rejected",
            };
            (data["transaction_id"].as_i64().expect("an id"), status)
        })
        .collect();
    let shown = eventually(
        "the transactions service applied every decision",
        || async {
            let mut shown = BTreeMap::new();
            for (name, _) in &accounts {
                for (id, status) in transfers_of(&bank, name).await {
                    shown.insert(id, status);
                }
            }
            let done = shown.len() == decided.len() && shown.values().all(|s| s != "pending");
            done.then_some(shown)
        },
    )
    .await;
    for (id, status) in &decided {
        assert_eq!(
            shown.get(id).map(String::as_str),
            Some(*status),
            "transfer {id}"
        );
    }

    // The rebuilt services go on: the password still works, new ids do not collide.
    let (status, _) = bank
        .call(&bank.users)
        .post(
            None,
            "/sessions",
            json!({"username": "alice", "password": acceptance::PASSWORD}),
        )
        .await;
    assert_eq!(status, 200);
    let dave = bank.sign_up("dave").await;
    assert!(
        accounts.iter().all(|(_, account)| *account < dave),
        "account {dave} is new"
    );
    let next = bank.transfer("bob", accounts[1].1, dave, "1.00").await;
    assert!(next > asked);
    assert!(bank.decided("bob", next).await["status"].is_string());
}

/// A user's transfers (every page): id and status.
async fn transfers_of(bank: &Bank, user: &str) -> Vec<(i64, String)> {
    let api = bank.call(&bank.transactions);
    let mut found = Vec::new();
    let mut path = format!("/transfers?username={user}&limit=200");
    loop {
        let (status, page) = api.get(Some(user), &path).await;
        assert_eq!(status, 200, "{page}");
        for transfer in page["transfers"].as_array().expect("transfers") {
            found.push((
                transfer["transaction_id"].as_i64().expect("an id"),
                transfer["status"].as_str().expect("a status").to_owned(),
            ));
        }
        match page["next_before"].as_i64() {
            Some(before) => path = format!("/transfers?username={user}&limit=200&before={before}"),
            None => return found,
        }
    }
}
