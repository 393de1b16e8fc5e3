//! Stop the services, drop their tables, start them: the same state.

use acceptance::{Bank, balances_from_log, money};
use serde_json::{Value, json};

/// Everything the APIs show about these users and accounts.
async fn snapshot(bank: &Bank, users: &[(&str, i64)]) -> Value {
    let mut state = Vec::new();
    for (username, account) in users {
        let accounts = bank.call(&bank.accounts[0]);
        let (_, balance) = accounts
            .get(Some(username), &format!("/accounts/{account}"))
            .await;
        let (_, statement) = accounts
            .get(
                Some(username),
                &format!("/accounts/{account}/statement?limit=200"),
            )
            .await;
        let (_, transfers) = bank
            .call(&bank.transactions)
            .get(Some(username), &format!("/transfers?username={username}"))
            .await;
        let (_, requests) = bank
            .call(&bank.users)
            .get(Some(username), &format!("/users/{username}/accounts"))
            .await;
        state.push(json!({"account": balance, "statement": statement, "transfers": transfers, "requests": requests}));
    }
    Value::Array(state)
}

#[tokio::test]
async fn dropped_tables_come_back_identical_from_the_log() {
    let mut bank = Bank::start().await;
    let alice = bank.sign_up("alice").await;
    let bob = bank.sign_up("bob").await;
    let carol = bank.sign_up("carol").await;
    bank.deposit("alice", alice, "120.00").await;
    bank.deposit("bob", bob, "15.50").await;
    let mut transfers = Vec::new();
    for (user, from, to, amount) in [
        ("alice", alice, bob, "20.00"),
        ("bob", bob, carol, "35.25"),
        ("alice", alice, carol, "500.00"),
        ("carol", carol, alice, "0.01"),
    ] {
        transfers.push((user, bank.transfer(user, from, to, amount).await));
    }
    for (user, id) in &transfers {
        bank.decided(user, *id).await;
    }
    let (status, _) = bank
        .call(&bank.accounts[0])
        .post(
            Some("bob"),
            &format!("/accounts/{bob}/withdrawals"),
            json!({"amount": "0.25", "note": "coffee"}),
        )
        .await;
    assert_eq!(status, 201);

    let users = [("alice", alice), ("bob", bob), ("carol", carol)];
    // Let the accounts service finish applying what it decided.
    let from_log = balances_from_log(&bank.log(&["ConfirmedCredit", "ConfirmedDebit"]).await);
    for (username, account) in users {
        bank.balance_becomes(username, account, from_log[&account])
            .await;
    }
    let before = snapshot(&bank, &users).await;
    assert_eq!(
        money(&before[1]["account"]["balance"]),
        "0.00".parse().unwrap(),
        "{before}"
    );

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

    let after = snapshot(&bank, &users).await;
    assert_eq!(after, before);

    // The rebuilt services go on: the password still works, new ids do not collide.
    let (status, _) = bank
        .call(&bank.users)
        .post(
            None,
            "/users/alice/verify",
            json!({"password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, 200);
    let dave = bank.sign_up("dave").await;
    assert!(dave > carol, "account {dave} is new");
    let next = bank.transfer("alice", alice, dave, "1.00").await;
    assert!(transfers.iter().all(|(_, id)| *id < next));
    assert_eq!(bank.decided("alice", next).await["status"], "accepted");
}
