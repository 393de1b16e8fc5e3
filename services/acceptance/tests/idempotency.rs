//! Retries are safe: every state-changing request carries an
//! `Idempotency-Key`; a repeat returns the first outcome (status and body)
//! and never moves money twice; the same key with another request is a
//! 422; and kill -9 of the bus between a request and its answer still
//! leaves exactly one credit in the log.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use acceptance::{Bank, PASSWORD, eventually};
use serde_json::{Value, json};

/// How many `event_type` events of `key` the log holds.
async fn logged(bank: &Bank, event_type: &str, key: &str) -> usize {
    bank.log(&[event_type])
        .await
        .iter()
        .filter(|event| event.consistency.key == key)
        .count()
}

#[tokio::test]
async fn a_repeated_request_gets_the_first_answer_and_moves_money_once() {
    let bank = Bank::start().await;
    let alice = bank.sign_up("alice").await;
    let accounts = bank.call(&bank.accounts[0]);
    let deposits = format!("/accounts/{alice}/deposits");

    let first = accounts
        .post_with_key(
            Some("alice"),
            &deposits,
            json!({"amount": "25.00", "note": "gift"}),
            "dep-1",
        )
        .await;
    assert_eq!(first.0, 201, "{}", first.1);
    // As documented: the new balance and the statement entry it booked.
    assert_eq!(first.1["balance"], "25.00");
    assert_eq!(first.1["entry"]["kind"], "credit");
    assert_eq!(first.1["entry"]["amount"], "25.00");
    assert_eq!(first.1["entry"]["description"], "gift");
    assert_eq!(first.1["entry"]["balance"], "25.00");
    let again = accounts
        .post_with_key(
            Some("alice"),
            &deposits,
            json!({"amount": "25.00", "note": "gift"}),
            "dep-1",
        )
        .await;
    assert_eq!(again, first, "the same status and body");
    assert_eq!(
        logged(&bank, "ConfirmedCredit", &format!("acc-{alice}")).await,
        1
    );
    assert_eq!(bank.balance("alice", alice).await.to_string(), "25.00");

    let reused = accounts
        .post_with_key(
            Some("alice"),
            &deposits,
            json!({"amount": "26.00", "note": "gift"}),
            "dep-1",
        )
        .await;
    assert_eq!(
        (reused.0, reused.1["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{}",
        reused.1
    );

    // A refusal is an outcome too: repeated, it stays a refusal.
    let withdrawals = format!("/accounts/{alice}/withdrawals");
    let refused = accounts
        .post_with_key(
            Some("alice"),
            &withdrawals,
            json!({"amount": "30.00"}),
            "wd-1",
        )
        .await;
    assert_eq!(
        refused.1["error"]["code"], "insufficient_funds",
        "{}",
        refused.1
    );
    assert_eq!(refused.0, 422);
    bank.deposit("alice", alice, "10.00").await;
    let repeated = accounts
        .post_with_key(
            Some("alice"),
            &withdrawals,
            json!({"amount": "30.00"}),
            "wd-1",
        )
        .await;
    assert_eq!(repeated, refused);
    assert_eq!(
        logged(&bank, "ConfirmedDebit", &format!("acc-{alice}")).await,
        0
    );

    let (http, base) = accounts.raw();
    let no_key = http
        .post(format!("{base}{deposits}"))
        .bearer_auth(accounts.caller_token())
        .header("x-user-token", accounts.token("alice").await)
        .json(&json!({"amount": "1.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 400);
    let body: Value = no_key.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{body}"
    );
}

#[tokio::test]
async fn repeated_sign_ups_and_transfers_happen_once() {
    let bank = Bank::start().await;
    let users = bank.call(&bank.users);
    let form = json!({"username": "dora", "display_name": "Dora", "password": PASSWORD});
    let first = users
        .post_with_key(None, "/users", form.clone(), "signup-1")
        .await;
    assert_eq!(first.0, 201, "{}", first.1);
    let again = users.post_with_key(None, "/users", form, "signup-1").await;
    assert_eq!(again, first);
    let other_password =
        json!({"username": "dora", "display_name": "Dora", "password": "another password"});
    let reused = users
        .post_with_key(None, "/users", other_password, "signup-1")
        .await;
    assert_eq!(reused.0, 422, "{}", reused.1);
    assert_eq!(logged(&bank, "UserCreated", "user-dora").await, 1);

    let dora = first.1["first_account"]["account_id"].as_i64().unwrap();
    let erin = bank.sign_up("erin").await;
    bank.deposit("dora", dora, "40.00").await;
    let transactions = bank.call(&bank.transactions);
    let transfer = json!({"from_account_id": dora, "to_account_id": erin, "amount": "15.00"});
    let first = transactions
        .post_with_key(Some("dora"), "/transfers", transfer.clone(), "t-1")
        .await;
    assert_eq!(first.0, 202, "{}", first.1);
    let again = transactions
        .post_with_key(Some("dora"), "/transfers", transfer, "t-1")
        .await;
    assert_eq!(again, first);
    let id = first.1["transaction_id"].as_i64().unwrap();
    assert_eq!(bank.decided("dora", id).await["status"], "accepted");
    let pending = bank.log(&["PendingTransaction"]).await;
    assert_eq!(pending.len(), 1, "asked for once");
    bank.balance_becomes("erin", erin, "15.00".parse().unwrap())
        .await;
}

#[tokio::test]
async fn kill_9_of_the_bus_between_request_and_answer_leaves_one_credit_per_request() {
    let mut bank = Bank::start().await;
    let alice = bank.sign_up("alice").await;
    let accounts = bank.call(&bank.accounts[0]);
    let deposits = format!("/accounts/{alice}/deposits");
    accounts.token("alice").await;

    // Thirty deposits in flight; the bus dies under them, and comes back
    // once one of them has been told its outcome is not known yet.
    let pending_answers = Arc::new(AtomicUsize::new(0));
    let mut requests = Vec::new();
    for n in 0..30 {
        let (accounts, path, pending) =
            (accounts.clone(), deposits.clone(), pending_answers.clone());
        requests.push(tokio::spawn(async move {
            let key = format!("deposit-{n}");
            let first = accounts
                .post_with_key(Some("alice"), &path, json!({"amount": "1.00"}), &key)
                .await;
            if first.0 != 201 {
                pending.fetch_add(1, Ordering::AcqRel);
            }
            (key, first)
        }));
    }
    eventually("some deposits are stored", || async {
        let stored: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM bus.events WHERE event_type = 'ConfirmedCredit'",
        )
        .fetch_one(&bank.db.pool().await)
        .await
        .ok()?;
        (stored >= 3).then_some(())
    })
    .await;
    bank.bus.kill9();
    eventually("a deposit is told its outcome is not known", || async {
        (pending_answers.load(Ordering::Acquire) > 0).then_some(())
    })
    .await;
    bank.bus.restart();

    let mut answers: HashMap<String, (u16, Value)> = HashMap::new();
    for request in requests {
        let (key, first) = request.await.unwrap();
        answers.insert(key, first);
    }
    let interrupted = pending_answers.load(Ordering::Acquire);
    assert!(interrupted > 0);
    // Whoever did not get a definite answer retries with the same key.
    for (key, answer) in answers.iter_mut() {
        while answer.0 != 201 {
            assert!(
                [503, 409].contains(&answer.0),
                "only 'outcome pending' or 'in progress' before the answer: {answer:?}"
            );
            *answer = accounts
                .post_with_key(Some("alice"), &deposits, json!({"amount": "1.00"}), key)
                .await;
        }
    }
    eprintln!("{interrupted} of 30 deposits were answered only after a retry");
    let credits = logged(&bank, "ConfirmedCredit", &format!("acc-{alice}")).await;
    assert_eq!(
        credits, 30,
        "one credit per request, however often it was sent"
    );
    bank.balance_becomes("alice", alice, "30.00".parse().unwrap())
        .await;
    let versions: std::collections::HashSet<i64> = answers
        .values()
        .map(|(_, body)| body["entry"]["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions.len(), 30, "each request its own entry");
}

#[tokio::test]
async fn tries_of_one_request_sent_all_at_once_decide_it_once() {
    let bank = Bank::start().await;
    let customers = bank.funded_customers(2, "40.00").await;
    let (dora, from, to) = (customers[0].0.clone(), customers[0].1, customers[1].1);
    let transactions = bank.call(&bank.transactions);
    let transfer = json!({"from_account_id": from, "to_account_id": to, "amount": "15.00"});

    // Every try decides on its own (each takes a transfer id); only the
    // first to record its events may publish them.
    let tries: Vec<_> = (0..12)
        .map(|_| {
            let (api, dora, transfer) = (transactions.clone(), dora.clone(), transfer.clone());
            tokio::spawn(async move {
                api.post_with_key(Some(&dora), "/transfers", transfer, "at-once")
                    .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for attempt in tries {
        answers.push(attempt.await.expect("a try"));
    }
    let accepted: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == 202)
        .collect();
    assert!(!accepted.is_empty(), "{answers:?}");
    for (status, body) in &answers {
        match status {
            202 => assert_eq!(body, &accepted[0].1, "one answer for every 202"),
            409 => assert_eq!(body["error"]["code"], "request_in_progress", "{body}"),
            _ => panic!("{status}: {body}"),
        }
    }
    let again = transactions
        .post_with_key(Some(&dora), "/transfers", transfer, "at-once")
        .await;
    assert_eq!(&again, accepted[0]);

    // The log holds the one transfer its answers name.
    let pending = bank.log(&["PendingTransaction"]).await;
    assert_eq!(pending.len(), 1, "asked for once: {pending:?}");
    let id = accepted[0].1["transaction_id"].as_i64().unwrap();
    assert_eq!(pending[0].consistency.key, format!("trans-{id}"));
    assert_eq!(bank.decided(&dora, id).await["status"], "accepted");
    bank.balance_becomes(&dora, from, "25.00".parse().unwrap())
        .await;
}
