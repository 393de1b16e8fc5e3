//! Chains: transfers out of one account that reach the accounts service
//! together are decided each on the balance the one before leaves, and
//! published together; never below zero, never twice, even when an earlier
//! run stored part of what the chain holds.

use acceptance::{Bank, balances_from_log, eventually};
use bus::{
    client::{BusClient, Publish},
    protocol::{ConsistencyValue, EventRecord, ReceiptStatus},
};
use rust_decimal::Decimal;
use serde_json::json;
use superclient::origin::Origin;

/// Transfer ids far above the ones the transactions service hands out.
const FIRST: i64 = 1_000_000;

/// Publishes transfers of `amount` from `from` to `to` as the transactions
/// service would, one message each; their ids.
async fn pending_transfers(bank: &Bank, from: i64, to: i64, amount: &str, count: i64) -> Vec<i64> {
    let (transactions, _) = BusClient::connect(bank.bus_config(Some("transactions")))
        .await
        .expect("connect");
    let mut ids = Vec::new();
    for n in 0..count {
        let id = FIRST + n;
        let pending = json!({"transaction_id": id, "from_account_id": from, "to_account_id": to,
            "amount": amount, "reference": "", "username": "alice"});
        let event = Publish::new(
            "PendingTransaction",
            format!("trans-{id}"),
            ConsistencyValue::Explicit(0),
            &pending,
        )
        .expect("encode");
        let receipt = transactions.publish(vec![event]).await.expect("a receipt");
        assert_eq!(receipt.status, ReceiptStatus::Success, "{receipt:?}");
        ids.push(id);
    }
    transactions.close();
    ids
}

/// The accounts instance's count of publishes that ended with `status`.
async fn publishes(bank: &Bank, status: &str) -> u64 {
    let series = format!("superclient_publishes_total{{status=\"{status}\"}}");
    bank.accounts_metric(&series).await
}

/// Waits until the log holds `count` decisions; returns them.
async fn decisions(bank: &Bank, count: usize) -> Vec<EventRecord> {
    eventually(&format!("{count} transfers decided"), || async {
        let decided = bank
            .log(&["AcceptedTransaction", "RejectedTransaction"])
            .await;
        (decided.len() == count).then_some(decided)
    })
    .await
}

#[tokio::test]
async fn transfers_out_of_one_account_are_decided_in_a_chain_and_never_overdraw() {
    let bank = Bank::start().await;
    let alice = bank.sign_up("alice").await;
    let bob = bank.sign_up("bob").await;
    bank.deposit("alice", alice, "100.00").await;

    // Thirty £7 transfers reach the accounts service at once: £100 covers
    // fourteen of them.
    let before = publishes(&bank, "success").await;
    bank.accounts[0].freeze();
    pending_transfers(&bank, alice, bob, "7.00", 30).await;
    bank.accounts[0].resume();
    let decided = decisions(&bank, 30).await;
    let published = publishes(&bank, "success").await - before;

    let accepted = decided
        .iter()
        .filter(|event| event.event_type == "AcceptedTransaction")
        .count();
    assert_eq!(accepted, 14, "£100 covers fourteen £7 transfers");
    for rejected in decided
        .iter()
        .filter(|event| event.event_type == "RejectedTransaction")
    {
        assert!(
            rejected.data.get().contains("insufficient funds"),
            "{}",
            rejected.data.get()
        );
    }
    bank.balance_becomes("alice", alice, Decimal::new(200, 2))
        .await;
    bank.balance_becomes("bob", bob, Decimal::from(98)).await;
    let from_log = balances_from_log(&bank.log(&["ConfirmedCredit", "ConfirmedDebit"]).await);
    assert_eq!(from_log[&alice], Decimal::new(200, 2));
    assert_eq!(from_log[&bob], Decimal::from(98));
    // One decision per message would take thirty publishes.
    println!("30 decisions on one account took {published} publishes");
    assert!(
        published <= 10,
        "30 decisions on one account took {published} publishes: they were not chained"
    );
}

#[tokio::test]
async fn a_chain_that_an_earlier_run_partly_stored_decides_each_transfer_once() {
    let bank = Bank::start().await;
    let alice = bank.sign_up("alice").await;
    let bob = bank.sign_up("bob").await;
    bank.deposit("alice", alice, "100.00").await;

    bank.accounts[0].freeze();
    let ids = pending_transfers(&bank, alice, bob, "30.00", 2).await;
    // An earlier run decided the first transfer alone, stored its decision
    // and crashed before applying it: its events are in the log under the
    // ids the service derives from the transfer's event.
    let first = bank
        .log(&["PendingTransaction"])
        .await
        .into_iter()
        .find(|event| event.consistency.key == format!("trans-{}", ids[0]))
        .expect("the first transfer is in the log");
    let origin = Origin::reaction(&first);
    let decision = [
        (
            "AcceptedTransaction",
            format!("trans-{}", ids[0]),
            1,
            json!({"transaction_id": ids[0]}),
        ),
        (
            "ConfirmedDebit",
            format!("acc-{alice}"),
            2,
            json!({"account_id": alice, "amount": "30.00", "note": format!("Transfer to account {bob}"), "transaction_id": ids[0]}),
        ),
        (
            "ConfirmedCredit",
            format!("acc-{bob}"),
            1,
            json!({"account_id": bob, "amount": "30.00", "note": format!("Transfer from account {alice}"), "transaction_id": ids[0]}),
        ),
    ];
    let events = decision
        .into_iter()
        .enumerate()
        .map(|(index, (event_type, key, value, data))| {
            let mut event = Publish::new(event_type, key, ConsistencyValue::Explicit(value), &data)
                .expect("encode");
            event.event_id = Some(origin.event_id(index));
            event.correlation_id = Some(first.correlation_id);
            event.causation_id = Some(first.event_id);
            event
        })
        .collect();
    let (accounts, _) = BusClient::connect(bank.bus_config(Some("accounts")))
        .await
        .expect("connect");
    let receipt = accounts.publish(events).await.expect("a receipt");
    assert_eq!(receipt.status, ReceiptStatus::Success, "{receipt:?}");
    accounts.close();

    // The service now chains both transfers into one message, which the bus
    // finds partly stored; each is decided again alone.
    bank.accounts[0].resume();
    let decided = decisions(&bank, 2).await;
    assert!(
        decided
            .iter()
            .all(|event| event.event_type == "AcceptedTransaction"),
        "{decided:?}"
    );
    for id in &ids {
        let key = format!("trans-{id}");
        assert_eq!(
            decided
                .iter()
                .filter(|event| event.consistency.key == key)
                .count(),
            1,
            "transfer {id} decided once"
        );
    }
    bank.balance_becomes("alice", alice, Decimal::from(40))
        .await;
    bank.balance_becomes("bob", bob, Decimal::from(60)).await;
    let from_log = balances_from_log(&bank.log(&["ConfirmedCredit", "ConfirmedDebit"]).await);
    assert_eq!(from_log[&alice], Decimal::from(40));
    assert_eq!(from_log[&bob], Decimal::from(60));
    assert!(
        publishes(&bank, "rejected").await >= 1,
        "the bus never refused a partly stored chain: the test proved nothing"
    );
}
