//! An event the accounts service cannot apply is parked, and it holds its
//! account back: a later credit of the account is held at the bus, not
//! applied over the gap; decisions on the account get 503 and publish
//! nothing; transfers involving it wait. After staff replay it (once the
//! cause is fixed) or skip it (bad data), everything resumes, and every
//! balance equals the log's.

use acceptance::{Bank, balances_from_log, eventually};
use bus::{
    client::{BusClient, Publish},
    protocol::{ConsistencyValue, EventRecord, ReceiptStatus},
};
use serde_json::{Value, json};

/// Publishes a `ConfirmedCredit` of `data` on `acc-{account}` at the
/// account's next value, with the bus's development (all-powerful) token:
/// nothing of the services checks it. Returns its position.
async fn publish_credit(bank: &Bank, account: i64, data: Value) -> i64 {
    let (client, _) = BusClient::connect(bank.bus_config(None))
        .await
        .expect("connect");
    let key = format!("acc-{account}");
    let current = client.consistency(vec![key.clone()]).await.expect("values")[&key]
        .expect("the account exists");
    let credit = Publish::new(
        "ConfirmedCredit",
        key,
        ConsistencyValue::Explicit(current + 1),
        &data,
    )
    .expect("encode");
    let receipt = client.publish(vec![credit]).await.expect("a receipt");
    assert_eq!(receipt.status, ReceiptStatus::Success, "{receipt:?}");
    client.close();
    receipt.events[0].position.expect("stored")
}

/// The events parked for the accounts service, once `ready` holds for them.
async fn parked_when(bank: &Bank, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    eventually("the parked events", || async {
        let parked = bank.parked_for_accounts().await?;
        ready(&parked).then_some(parked)
    })
    .await
}

async fn staff_decides(bank: &Bank, position: i64, decision: &str, note: &str) -> Value {
    let response = bank
        .http
        .post(format!(
            "{}/parked/accounts/{position}/{decision}",
            bank.bus.http_base()
        ))
        .bearer_auth(bank.trust.bundle.bus_token("staff"))
        .json(&json!({"note": note}))
        .send()
        .await
        .expect("the bus answers");
    assert_eq!(response.status(), 202);
    response.json().await.expect("JSON")
}

async fn credits_of(bank: &Bank, account: i64) -> Vec<EventRecord> {
    let key = format!("acc-{account}");
    bank.log(&["ConfirmedCredit", "ConfirmedDebit"])
        .await
        .into_iter()
        .filter(|event| event.consistency.key == key)
        .collect()
}

/// Every balance the accounts service shows equals the log's (leaving out
/// events staff skipped).
async fn balances_match_the_log(bank: &Bank, users: &[(&str, i64)], skipped: &[i64]) {
    let log: Vec<EventRecord> = bank
        .log(&["ConfirmedCredit", "ConfirmedDebit"])
        .await
        .into_iter()
        .filter(|event| !skipped.contains(&event.position))
        .collect();
    let from_log = balances_from_log(&log);
    for (user, account) in users {
        let expected = from_log.get(account).copied().unwrap_or_default();
        bank.balance_becomes(user, *account, expected).await;
    }
}

#[tokio::test]
async fn a_parked_credit_holds_its_account_until_staff_replay_it_once_fixed() {
    let bank = Bank::start().await;
    let alice = bank.sign_up("alice").await;
    let bob = bank.sign_up("bob").await;
    bank.deposit("alice", alice, "100.00").await;
    let accounts = bank.call(&bank.accounts[0]);

    // The accounts service's database refuses this one credit for now.
    let pool = bank.db.pool().await;
    sqlx::query(
        "ALTER TABLE accounts.statement_entries
           ADD CONSTRAINT refused_by_the_test CHECK (description <> 'refused for now')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let stuck = publish_credit(
        &bank,
        alice,
        json!({"account_id": alice, "amount": "5.00", "note": "refused for now", "transaction_id": null}),
    )
    .await;

    // 1. It is parked.
    let parked = parked_when(&bank, |parked| !parked.is_empty()).await;
    assert_eq!(parked[0]["position"], stuck);
    assert_eq!(parked[0]["consistency_key"], format!("acc-{alice}"));

    // 2. A later credit of the account is held, not applied.
    let later = publish_credit(
        &bank,
        alice,
        json!({"account_id": alice, "amount": "7.00", "note": "later", "transaction_id": null}),
    )
    .await;
    parked_when(&bank, |parked| {
        parked[0]["blocked_positions"] == json!([later])
    })
    .await;
    assert_eq!(bank.balance("alice", alice).await.to_string(), "100.00");

    // 3. Decisions on the account get a clear 503 and publish nothing; a
    // transfer out of it waits.
    let before = credits_of(&bank, alice).await.len();
    let (status, body) = accounts
        .post(
            Some("alice"),
            &format!("/accounts/{alice}/deposits"),
            json!({"amount": "1.00"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("account {alice} is temporarily unavailable")),
        "{body}"
    );
    assert_eq!(
        credits_of(&bank, alice).await.len(),
        before,
        "nothing published"
    );
    let transfer = bank.transfer("alice", alice, bob, "10.00").await;
    let parked = parked_when(&bank, |parked| parked.len() == 2).await;
    let pending_transfer = parked
        .iter()
        .find(|p| p["event_type"] == "PendingTransaction")
        .expect("the transfer waits, parked")["position"]
        .as_i64()
        .unwrap();
    let (_, waiting) = bank
        .call(&bank.transactions)
        .get(Some("alice"), &format!("/transfers/{transfer}"))
        .await;
    assert_eq!(
        waiting["status"], "pending",
        "not rejected on a stale balance"
    );

    // 4. The cause is fixed, staff replay: everything resumes.
    sqlx::query("ALTER TABLE accounts.statement_entries DROP CONSTRAINT refused_by_the_test")
        .execute(&pool)
        .await
        .unwrap();
    let decided = staff_decides(&bank, stuck, "replay", "constraint removed").await;
    assert_eq!(decided["released"], 1);
    bank.balance_becomes("alice", alice, "112.00".parse().unwrap())
        .await;
    staff_decides(&bank, pending_transfer, "replay", "its account is back").await;
    assert_eq!(bank.decided("alice", transfer).await["status"], "accepted");
    let (status, _) = accounts
        .post(
            Some("alice"),
            &format!("/accounts/{alice}/deposits"),
            json!({"amount": "1.00"}),
        )
        .await;
    assert_eq!(status, 201);
    balances_match_the_log(&bank, &[("alice", alice), ("bob", bob)], &[]).await;
    parked_when(&bank, <[Value]>::is_empty).await;
}

#[tokio::test]
async fn a_credit_with_bad_data_is_parked_and_a_recorded_skip_releases_its_account() {
    let bank = Bank::start().await;
    let alice = bank.sign_up("alice").await;
    bank.deposit("alice", alice, "100.00").await;
    let accounts = bank.call(&bank.accounts[0]);

    // Published with the all-powerful token: money for another account,
    // on this account's key. No service would ever apply it.
    let bad = publish_credit(
        &bank,
        alice,
        json!({"account_id": alice + 1000, "amount": "5.00", "note": "bad", "transaction_id": null}),
    )
    .await;
    let parked = parked_when(&bank, |parked| !parked.is_empty()).await;
    assert_eq!(parked[0]["position"], bad);
    assert!(
        parked[0]["reason"].as_str().unwrap().contains("belongs to"),
        "{parked:?}"
    );
    let later = publish_credit(
        &bank,
        alice,
        json!({"account_id": alice, "amount": "7.00", "note": "later", "transaction_id": null}),
    )
    .await;
    parked_when(&bank, |parked| {
        parked[0]["blocked_positions"] == json!([later])
    })
    .await;
    let (status, body) = accounts
        .post(
            Some("alice"),
            &format!("/accounts/{alice}/withdrawals"),
            json!({"amount": "1.00"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    assert_eq!(bank.balance("alice", alice).await.to_string(), "100.00");

    let decided = staff_decides(&bank, bad, "skip", "credit for the wrong account, ticket 7").await;
    assert_eq!(decided["released"], 1);
    bank.balance_becomes("alice", alice, "107.00".parse().unwrap())
        .await;
    let (status, body) = accounts
        .post(
            Some("alice"),
            &format!("/accounts/{alice}/withdrawals"),
            json!({"amount": "1.00"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    balances_match_the_log(&bank, &[("alice", alice)], &[bad]).await;

    // The skip is remembered: a rebuild steps over the same event.
    let mut bank = bank;
    assert!(bank.accounts[0].terminate().success());
    let pool = bank.db.pool().await;
    sqlx::raw_sql(
        "UPDATE accounts.rebuild_progress SET rebuilt_through = 0;
         DELETE FROM accounts.applied_keys;
         DELETE FROM accounts.statement_entries;
         DELETE FROM accounts.accounts;",
    )
    .execute(&pool)
    .await
    .unwrap();
    bank.accounts[0].restart();
    bank.balance_becomes("alice", alice, "106.00".parse().unwrap())
        .await;
}

/// The skipped event was the account's last: nothing comes after it to
/// carry the key on, yet the account's next decision must build on it.
#[tokio::test]
async fn a_skipped_last_event_leaves_its_account_usable() {
    let bank = Bank::start().await;
    let alice = bank.sign_up("alice").await;
    bank.deposit("alice", alice, "50.00").await;
    let bad = publish_credit(
        &bank,
        alice,
        json!({"account_id": alice + 1000, "amount": "5.00", "note": "bad", "transaction_id": null}),
    )
    .await;
    parked_when(&bank, |parked| !parked.is_empty()).await;
    staff_decides(&bank, bad, "skip", "entered by mistake").await;
    parked_when(&bank, <[Value]>::is_empty).await;

    let accounts = bank.call(&bank.accounts[0]);
    for (movement, amount) in [("deposits", "10.00"), ("withdrawals", "20.00")] {
        let (status, body) = accounts
            .post(
                Some("alice"),
                &format!("/accounts/{alice}/{movement}"),
                json!({"amount": amount}),
            )
            .await;
        assert_eq!(status, 201, "{movement}: {body}");
    }
    assert_eq!(bank.balance("alice", alice).await.to_string(), "40.00");
    balances_match_the_log(&bank, &[("alice", alice)], &[bad]).await;
}

/// A rebuild applies a key's events many to a batch, with its balances
/// worked out in the service: a debit that would take the account below
/// zero on the way is refused there too, though a credit after it in the
/// same batch would bring the total back above zero.
#[tokio::test]
async fn a_rebuild_refuses_an_overdraft_hidden_inside_one_batch() {
    let mut bank = Bank::start().await;
    let alice = bank.sign_up("alice").await;
    bank.deposit("alice", alice, "100.00").await;

    // While the accounts service is away, the log gets (with the bus's
    // all-powerful token, in one message) a debit beyond the balance and
    // a credit that makes up for it.
    bank.accounts[0].terminate();
    let (client, _) = BusClient::connect(bank.bus_config(None))
        .await
        .expect("connect");
    let key = format!("acc-{alice}");
    let current = client.consistency(vec![key.clone()]).await.expect("values")[&key]
        .expect("the account exists");
    let movement = |event_type: &str, value: i64, amount: &str| {
        Publish::new(
            event_type,
            key.clone(),
            ConsistencyValue::Explicit(value),
            &json!({"account_id": alice, "amount": amount, "note": "test", "transaction_id": null}),
        )
        .expect("encode")
    };
    let receipt = client
        .publish(vec![
            movement("ConfirmedDebit", current + 1, "150.00"),
            movement("ConfirmedCredit", current + 2, "100.00"),
        ])
        .await
        .expect("a receipt");
    assert_eq!(receipt.status, ReceiptStatus::Success, "{receipt:?}");
    client.close();

    // Its rebuild reads both in one batch, and refuses the debit: the key
    // stays before it, and the balance where it was.
    bank.accounts[0].restart();
    let health: Value = bank
        .http
        .get(format!("{}/health", bank.accounts[0].http_base()))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(health["stuck_keys"], 1, "{health}");
    assert_eq!(bank.balance("alice", alice).await.to_string(), "100.00");
}

/// Money for an account that was never opened is refused by the apply
/// itself (the table has no foreign key to do it): the credit is parked,
/// and no statement line or account appears.
#[tokio::test]
async fn a_credit_for_an_account_never_opened_is_parked_and_books_nothing() {
    let bank = Bank::start().await;
    let alice = bank.sign_up("alice").await;
    let never = alice + 1000;
    let (client, _) = BusClient::connect(bank.bus_config(None))
        .await
        .expect("connect");
    let credit = Publish::new(
        "ConfirmedCredit",
        format!("acc-{never}"),
        ConsistencyValue::Explicit(0),
        &json!({"account_id": never, "amount": "5.00", "note": "nowhere", "transaction_id": null}),
    )
    .expect("encode");
    let receipt = client.publish(vec![credit]).await.expect("a receipt");
    assert_eq!(receipt.status, ReceiptStatus::Success, "{receipt:?}");
    client.close();

    let parked = parked_when(&bank, |parked| !parked.is_empty()).await;
    assert_eq!(
        parked[0]["position"],
        receipt.events[0].position.expect("stored")
    );
    assert!(
        parked[0]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("account {never}, which does not exist")),
        "{parked:?}"
    );
    let pool = bank.db.pool().await;
    let (lines, accounts): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM accounts.statement_entries WHERE account_id = $1),
                (SELECT count(*) FROM accounts.accounts WHERE account_id = $1)",
    )
    .bind(never)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((lines, accounts), (0, 0));
}
