//! Two accounts instances, one account holding £100, and 200 concurrent £1
//! withdrawals and transfers out of it: exactly 100 succeed.

use acceptance::{Bank, balances_from_log, eventually};
use rust_decimal::Decimal;
use serde_json::json;

#[tokio::test]
async fn two_hundred_racing_pounds_out_of_a_hundred_succeed_exactly_a_hundred_times() {
    let bank = Bank::start_with_accounts(2).await;
    let alice = bank.sign_up("alice").await;
    let bob = bank.sign_up("bob").await;
    bank.deposit("alice", alice, "100.00").await;

    let mut withdrawals = Vec::new();
    let mut transfers = Vec::new();
    for i in 0..200 {
        if i % 2 == 0 {
            // Alternate between the two instances, so they race each other.
            let api = bank.call(&bank.accounts[(i / 2) % 2]);
            withdrawals.push(tokio::spawn(async move {
                api.post(
                    Some("alice"),
                    &format!("/accounts/{alice}/withdrawals"),
                    json!({"amount": "1.00"}),
                )
                .await
            }));
        } else {
            let api = bank.call(&bank.transactions);
            transfers.push(tokio::spawn(async move {
                api.post(
                    Some("alice"),
                    "/transfers",
                    json!({"from_account_id": alice, "to_account_id": bob, "amount": "1.00"}),
                )
                .await
            }));
        }
    }

    let mut withdrawn = 0;
    for withdrawal in withdrawals {
        let (status, body) = withdrawal.await.expect("the task ran");
        match status {
            201 => withdrawn += 1,
            422 => assert_eq!(body["error"]["code"], "insufficient_funds"),
            other => panic!("a withdrawal answered {other}: {body}"),
        }
    }
    let mut ids = Vec::new();
    for transfer in transfers {
        let (status, body) = transfer.await.expect("the task ran");
        assert_eq!(status, 202, "{body}");
        ids.push(body["transaction_id"].as_i64().expect("an id"));
    }
    let mut accepted = 0;
    for id in ids {
        let transfer = bank.decided("alice", id).await;
        match transfer["status"].as_str() {
            Some("accepted") => accepted += 1,
            Some("rejected") => assert_eq!(transfer["reason"], "insufficient funds"),
            _ => panic!("{transfer}"),
        }
    }
    assert_eq!(
        withdrawn + accepted,
        100,
        "{withdrawn} withdrawals and {accepted} transfers"
    );

    // The log agrees, never dips below zero, and no money appeared or vanished.
    let log = bank.log(&["ConfirmedCredit", "ConfirmedDebit"]).await;
    let from_log = balances_from_log(&log);
    bank.balance_becomes("alice", alice, Decimal::ZERO).await;
    let alice_balance = bank.balance("alice", alice).await;
    let bob_balance = eventually("bob's credits applied", || async {
        let balance = bank.balance("bob", bob).await;
        (balance == Decimal::from(accepted)).then_some(balance)
    })
    .await;
    assert_eq!(alice_balance, Decimal::ZERO);
    assert_eq!(from_log.get(&alice).copied(), Some(alice_balance));
    assert_eq!(from_log.get(&bob).copied().unwrap_or_default(), bob_balance);
    let total: Decimal = from_log.values().sum();
    assert_eq!(
        total,
        Decimal::from(100 - withdrawn),
        "deposits minus withdrawals"
    );
}
