//! The seed's acceptance scenarios, against the real bus and services.

use acceptance::{Bank, money};
use rust_decimal::Decimal;
use serde_json::json;

fn pounds(text: &str) -> Decimal {
    text.parse().expect("a decimal")
}

#[tokio::test]
async fn a_transfer_is_accepted_and_moves_the_money_with_one_correlation_id() {
    let bank = Bank::start().await;
    let alice = bank.sign_up("alice").await;
    let bob = bank.sign_up("bob").await;
    bank.deposit("alice", alice, "50.00").await;
    // Read your writes: the deposit is in the balance when it is answered.
    assert_eq!(bank.balance("alice", alice).await, pounds("50.00"));
    assert_eq!(bank.balance("bob", bob).await, pounds("0.00"));

    let correlation = uuid::Uuid::now_v7();
    let transactions = bank.call(&bank.transactions);
    let (http, base) = transactions.raw();
    let request = http
        .post(format!("{base}/transfers"))
        .header("x-correlation-id", correlation.to_string())
        .json(&json!({"from_account_id": alice, "to_account_id": bob, "amount": "30.00", "reference": "rent"}));
    let (status, pending) = transactions.send(request, Some("alice")).await;
    assert_eq!(status, 202, "{pending}");
    // The accounts service may have decided already by the time it answers.
    assert!(
        ["pending", "accepted"].contains(&pending["status"].as_str().unwrap_or_default()),
        "{pending}"
    );
    assert_eq!(pending["amount"], "30.00");
    let id = pending["transaction_id"].as_i64().expect("an id");

    let transfer = bank.decided("alice", id).await;
    assert_eq!(transfer["status"], "accepted", "{transfer}");
    // The accounts service commits its decision's debit and credit as the
    // transactions service learns of it: a moment apart.
    bank.balance_becomes("alice", alice, pounds("20.00")).await;
    bank.balance_becomes("bob", bob, pounds("30.00")).await;

    let log = bank.log(&["*"]).await;
    let of_transfer: Vec<_> = log
        .iter()
        .filter(|e| e.correlation_id == correlation)
        .collect();
    let types: Vec<&str> = of_transfer.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "PendingTransaction",
            "AcceptedTransaction",
            "ConfirmedDebit",
            "ConfirmedCredit"
        ]
    );
    let pending_event = of_transfer[0];
    for event in &of_transfer[1..] {
        assert_eq!(
            event.causation_id,
            Some(pending_event.event_id),
            "caused by the pending transfer"
        );
    }
    for (event, account) in [(of_transfer[2], alice), (of_transfer[3], bob)] {
        let data: serde_json::Value = serde_json::from_str(event.data.get()).expect("JSON");
        assert_eq!(data["amount"], "30.00");
        assert_eq!(data["account_id"], account);
        assert_eq!(data["transaction_id"], id);
    }

    // Both see it in their statements, newest first, with running balances.
    let (status, statement) = bank
        .call(&bank.accounts[0])
        .get(Some("alice"), &format!("/accounts/{alice}/statement"))
        .await;
    assert_eq!(status, 200, "{statement}");
    let entries = statement["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (
            entries[0]["kind"].as_str(),
            money(&entries[0]["amount"]),
            money(&entries[0]["balance"])
        ),
        (Some("debit"), pounds("30"), pounds("20"))
    );
    assert_eq!(
        (entries[1]["kind"].as_str(), money(&entries[1]["balance"])),
        (Some("credit"), pounds("50"))
    );
}

#[tokio::test]
async fn a_transfer_beyond_the_balance_is_rejected_and_changes_nothing() {
    let bank = Bank::start().await;
    let alice = bank.sign_up("alice").await;
    let bob = bank.sign_up("bob").await;
    bank.deposit("alice", alice, "50.00").await;

    let id = bank.transfer("alice", alice, bob, "51.00").await;
    let transfer = bank.decided("alice", id).await;
    assert_eq!(transfer["status"], "rejected");
    assert_eq!(transfer["reason"], "insufficient funds");
    assert_eq!(bank.balance("alice", alice).await, pounds("50.00"));
    assert_eq!(bank.balance("bob", bob).await, pounds("0.00"));

    let to_nowhere = bank.transfer("alice", alice, 999_999, "1.00").await;
    let transfer = bank.decided("alice", to_nowhere).await;
    assert_eq!(
        (transfer["status"].as_str(), transfer["reason"].as_str()),
        (Some("rejected"), Some("unknown account"))
    );

    let withdrawals = bank.call(&bank.accounts[0]);
    let (status, body) = withdrawals
        .post(
            Some("alice"),
            &format!("/accounts/{alice}/withdrawals"),
            json!({"amount": "50.01"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("insufficient_funds")),
        "{body}"
    );
    assert_eq!(bank.balance("alice", alice).await, pounds("50.00"));
}

#[tokio::test]
async fn signing_up_gives_the_user_and_a_first_account_and_checks_the_password() {
    let bank = Bank::start().await;
    let users = bank.call(&bank.users);
    let (status, body) = users
        .post(None, "/users", json!({"username": "carol", "display_name": " Carol C. ", "password": "long enough password"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["user"],
        json!({"username": "carol", "display_name": "Carol C.", "staff": false})
    );
    assert_eq!(body["first_account"]["status"], "created");
    let account = body["first_account"]["account_id"]
        .as_i64()
        .expect("an account id");
    assert!(
        !body.to_string().contains("argon2"),
        "no hash in responses: {body}"
    );

    let (status, body) = users
        .post(
            None,
            "/users/carol/verify",
            json!({"password": "long enough password"}),
        )
        .await;
    assert_eq!((status, body["username"].as_str()), (200, Some("carol")));
    let (status, body) = users
        .post(
            None,
            "/users/carol/verify",
            json!({"password": "wrong password!"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("wrong_credentials"))
    );
    let (status, _) = users
        .post(
            None,
            "/users/nobody/verify",
            json!({"password": "long enough password"}),
        )
        .await;
    assert_eq!(status, 401);

    let (status, body) = users
        .post(None, "/users", json!({"username": "carol", "display_name": "Another", "password": "long enough password"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("username_taken"))
    );
    for (form, problem) in [
        (
            json!({"username": "Carol", "display_name": "C", "password": "long enough password"}),
            "username",
        ),
        (
            json!({"username": "dave", "display_name": "D", "password": "short"}),
            "password",
        ),
        (
            json!({"username": "dave", "display_name": "  ", "password": "long enough password"}),
            "display name",
        ),
    ] {
        let (status, body) = users.post(None, "/users", form).await;
        assert_eq!(status, 400, "{problem}: {body}");
    }

    let (status, body) = users.get(Some("carol"), "/users/carol/accounts").await;
    assert_eq!(status, 200);
    assert_eq!(body["accounts"][0]["account_id"], account);
    let (status, body) = users
        .post(Some("carol"), "/users/carol/accounts", json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_ne!(
        body["account_id"], account,
        "a second account has an id of its own"
    );
    let (status, _) = users.get(Some("mallory"), "/users/carol/accounts").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn unknown_transfers_strangers_and_bad_input_are_refused() {
    let bank = Bank::start().await;
    let alice = bank.sign_up("alice").await;
    let bob = bank.sign_up("bob").await;
    let transactions = bank.call(&bank.transactions);

    let (status, body) = transactions.get(Some("alice"), "/transfers/424242").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    let (http, base) = transactions.raw();
    let anonymous = http
        .get(format!("{base}/transfers/1"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(anonymous.status(), 401);
    let wrong = http
        .get(format!("{base}/transfers/1"))
        .bearer_auth("guess")
        .send()
        .await
        .expect("an answer");
    assert_eq!(wrong.status(), 401);

    for (amount, problem) in [
        ("0", "zero"),
        ("-5", "negative"),
        ("1.001", "three decimals"),
        ("1e3", "exponent"),
        ("99999999", "too large"),
    ] {
        let (status, body) = transactions
            .post(
                Some("alice"),
                "/transfers",
                json!({"from_account_id": alice, "to_account_id": bob, "amount": amount}),
            )
            .await;
        assert_eq!(status, 400, "{problem}: {body}");
    }
    let (status, _) = transactions
        .post(
            Some("alice"),
            "/transfers",
            json!({"from_account_id": alice, "to_account_id": alice, "amount": "1"}),
        )
        .await;
    assert_eq!(status, 400, "the same account");
    let (status, _) = transactions
        .post(
            Some("bob"),
            "/transfers",
            json!({"from_account_id": alice, "to_account_id": bob, "amount": "1"}),
        )
        .await;
    assert_eq!(status, 403, "from someone else's account");
    let (status, _) = bank
        .call(&bank.accounts[0])
        .get(Some("bob"), &format!("/accounts/{alice}"))
        .await;
    assert_eq!(status, 403, "someone else's account");

    assert!(
        bank.log(&["PendingTransaction"]).await.is_empty(),
        "nothing refused was published"
    );
}
