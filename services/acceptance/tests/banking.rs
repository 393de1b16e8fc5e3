//! The seed's acceptance scenarios, against the real bus and services.

use acceptance::{Bank, PASSWORD, money};
use rust_decimal::Decimal;
use serde_json::json;

fn pounds(text: &str) -> Decimal {
    text.parse().expect("a decimal")
}

/// A JSON object's field names, sorted: the documented shape.
fn keys(value: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// A well-formed user token for `username`, signed with a key that is not
/// the users service's.
fn forged_token(username: &str) -> String {
    let keys = trust::user_token::KeyPair::generate();
    let issuer =
        trust::user_token::Issuer::from_pem(&keys.private_pem, trust::user_token::DEFAULT_LIFETIME)
            .unwrap();
    issuer
        .issue(username, trust::user_token::Role::Staff, chrono::Utc::now())
        .unwrap()
        .token
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
    let request = request.header("idempotency-key", "transfer-1");
    let (status, pending) = transactions.send(request, Some("alice")).await;
    assert_eq!(status, 202, "{pending}");
    // As documented: the transfer as asked for, pending a decision.
    assert_eq!(
        keys(&pending),
        [
            "amount",
            "decided_at",
            "from_account_id",
            "reason",
            "reference",
            "requested_at",
            "status",
            "to_account_id",
            "transaction_id",
            "username"
        ]
    );
    assert_eq!(pending["status"], "pending", "{pending}");
    assert_eq!(pending["amount"], "30.00");
    let id = pending["transaction_id"].as_i64().expect("an id");

    let transfer = bank.decided("alice", id).await;
    assert_eq!(transfer["status"], "accepted", "{transfer}");
    // The receiver sees the sending account and the reference, not who sent it.
    let (status, received) = transactions
        .get(Some("bob"), &format!("/transfers/{id}"))
        .await;
    assert_eq!(status, 200, "{received}");
    assert_eq!(received["from_account_id"], alice);
    assert_eq!(received["reference"], "rent");
    assert!(received.get("username").is_none(), "{received}");
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
        keys(&entries[0]),
        [
            "amount",
            "balance",
            "description",
            "kind",
            "recorded_at",
            "transaction_id",
            "version"
        ]
    );
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
        .post(
            None,
            "/users",
            json!({"username": "carol", "display_name": " Carol C. ", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["user"],
        json!({"username": "carol", "display_name": "Carol C.", "staff": false})
    );
    assert_eq!(
        keys(&body["first_account"]),
        ["account_id", "request_id", "requested_at", "status"]
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
            "/sessions",
            json!({"username": "carol", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys(&body), ["expires_at", "token", "user"]);
    assert_eq!(body["user"]["username"], "carol");
    let (status, wrong_password) = users
        .post(
            None,
            "/sessions",
            json!({"username": "carol", "password": "wrong password!"}),
        )
        .await;
    assert_eq!(
        (status, wrong_password["error"]["code"].as_str()),
        (401, Some("wrong_credentials"))
    );
    let (status, unknown_user) = users
        .post(
            None,
            "/sessions",
            json!({"username": "nobody", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        unknown_user, wrong_password,
        "one message, whichever part was wrong"
    );

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
    bank.sign_up("mallory").await;
    let (status, hidden) = users.get(Some("mallory"), "/users/carol/accounts").await;
    let (_, missing) = users.get(Some("mallory"), "/users/nobody/accounts").await;
    assert_eq!(
        status, 404,
        "another user's accounts do not exist for mallory"
    );
    assert_eq!(
        hidden["error"]["code"], missing["error"]["code"],
        "{hidden} vs {missing}"
    );
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
    let alice_token = transactions.token("alice").await;
    let anonymous = http
        .get(format!("{base}/transfers/1"))
        .header("x-user-token", &alice_token)
        .send()
        .await
        .expect("an answer");
    assert_eq!(anonymous.status(), 401, "no caller token");
    let wrong = http
        .get(format!("{base}/transfers/1"))
        .bearer_auth("guess")
        .header("x-user-token", &alice_token)
        .send()
        .await
        .expect("an answer");
    assert_eq!(wrong.status(), 401, "a caller token nobody has");
    let no_user = http
        .get(format!("{base}/transfers/1"))
        .bearer_auth(transactions.caller_token())
        .send()
        .await
        .expect("an answer");
    assert_eq!(no_user.status(), 401, "no user token");
    let forged = http
        .get(format!("{base}/transfers/1"))
        .bearer_auth(transactions.caller_token())
        .header("x-user-token", forged_token("alice"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(forged.status(), 401, "a user token signed with another key");
    let acting_header = http
        .get(format!("{base}/transfers?username=alice"))
        .bearer_auth(transactions.caller_token())
        .header("x-acting-user", "alice")
        .header("x-acting-staff", "true")
        .send()
        .await
        .expect("an answer");
    assert_eq!(
        acting_header.status(),
        401,
        "a header naming a user is not trusted"
    );

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
    let (status, theirs) = transactions
        .post(
            Some("bob"),
            "/transfers",
            json!({"from_account_id": alice, "to_account_id": bob, "amount": "1"}),
        )
        .await;
    let (_, nowhere) = transactions
        .post(
            Some("bob"),
            "/transfers",
            json!({"from_account_id": 987654, "to_account_id": bob, "amount": "1"}),
        )
        .await;
    assert_eq!(status, 404, "from someone else's account: {theirs}");
    assert_eq!(theirs["error"]["code"], nowhere["error"]["code"]);
    let accounts = bank.call(&bank.accounts[0]);
    let (status, theirs) = accounts
        .get(Some("bob"), &format!("/accounts/{alice}"))
        .await;
    let (_, missing) = accounts.get(Some("bob"), "/accounts/987654").await;
    assert_eq!(status, 404, "someone else's account");
    assert_eq!(
        theirs.to_string().replace(&alice.to_string(), "N"),
        missing.to_string().replace("987654", "N"),
        "the same answer as for an account that does not exist"
    );
    let (status, _) = accounts
        .get(Some("bob"), &format!("/accounts/{alice}/statement"))
        .await;
    assert_eq!(status, 404, "someone else's statement");
    // Staff see every account.
    let (status, seen) = accounts
        .get(Some(acceptance::STAFF.0), &format!("/accounts/{alice}"))
        .await;
    assert_eq!((status, seen["username"].as_str()), (200, Some("alice")));
    // But they do not act for customers.
    for movement in ["deposits", "withdrawals"] {
        let (status, body) = accounts
            .post(
                Some(acceptance::STAFF.0),
                &format!("/accounts/{alice}/{movement}"),
                json!({"amount": "1.00"}),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{body}"
        );
    }
    let (status, body) = bank
        .call(&bank.users)
        .post(
            Some(acceptance::STAFF.0),
            "/users/alice/accounts",
            json!({}),
        )
        .await;
    assert_eq!(status, 403, "{body}");

    assert!(
        bank.log(&["PendingTransaction"]).await.is_empty(),
        "nothing refused was published"
    );
}

#[tokio::test]
async fn a_look_that_waits_is_answered_when_the_transfer_is_decided() {
    let bank = Bank::start().await;
    let customers = bank.funded_customers(2, "50.00").await;
    let (alice, from) = (&customers[0].0, customers[0].1);
    let to = customers[1].1;
    // A second transactions instance answers the look; either instance may
    // apply the decision: every instance hears of it.
    let other = bank.another(acceptance::Service::Transactions);
    let other_api = bank.call(&other);

    // Nobody decides while the accounts service is frozen.
    bank.accounts[0].freeze();
    let id = bank.transfer(alice, from, to, "20.00").await;
    let (status, body) = other_api
        .get(Some(alice), &format!("/transfers/{id}?wait=1"))
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("pending")));

    let look = {
        let api = other_api.clone();
        let alice = alice.clone();
        tokio::spawn(async move {
            let asked = std::time::Instant::now();
            let answer = api
                .get(Some(&alice), &format!("/transfers/{id}?wait=30"))
                .await;
            (answer, asked.elapsed())
        })
    };
    bank.accounts[0].resume();
    let ((status, body), took) = look.await.expect("the look");
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")));
    assert!(
        took < std::time::Duration::from_secs(30),
        "answered when decided, not when the wait ran out: {took:?}"
    );

    for wait in ["0", "31", "soon"] {
        let (status, body) = other_api
            .get(Some(alice), &format!("/transfers/{id}?wait={wait}"))
            .await;
        assert_eq!(
            (status, body["error"]["message"].as_str()),
            (400, Some("wait is 1 to 30 (seconds)")),
            "wait={wait}"
        );
    }
}
