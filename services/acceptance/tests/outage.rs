//! The bus dies under load. No database session waits on it inside a
//! transaction (none is idle in transaction, holding locks, while the bus
//! is away), every request is answered (an outcome it cannot know yet is a
//! 503 that says so), and after retries with the same `Idempotency-Key`
//! nothing moved twice.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use acceptance::{Bank, balances_from_log, eventually};
use rust_decimal::Decimal;
use serde_json::{Value, json};

const USERS: usize = 5;
const TRANSFERS: usize = 120;

#[tokio::test]
async fn kill_9_of_the_bus_under_transfers_moves_nothing_twice_and_holds_no_transaction_open() {
    let mut bank = Bank::start_with_accounts(2).await;
    let accounts = bank.funded_customers(USERS, "100.00").await;
    let transactions = bank.call(&bank.transactions);
    for (name, _) in &accounts {
        transactions.token(name).await;
    }

    // Transfers, each with a key of its own, retried with it until
    // answered: half before the bus dies, half while it is away.
    let pending_answers = Arc::new(AtomicUsize::new(0));
    let transfer = |i: usize| {
        let (from, to) = (i % USERS, (i * 3 + 1) % USERS);
        let to = if to == from { (to + 1) % USERS } else { to };
        let (name, from_account) = accounts[from].clone();
        let to_account = accounts[to].1;
        let (api, pending) = (transactions.clone(), pending_answers.clone());
        tokio::spawn(async move {
            let key = format!("transfer-{i}");
            let body = json!({"from_account_id": from_account, "to_account_id": to_account,
                              "amount": format!("{}.{:02}", i % 9 + 1, i % 100)});
            loop {
                let (status, answer) = api
                    .post_with_key(Some(&name), "/transfers", body.clone(), &key)
                    .await;
                match status {
                    202 => return (name, key, answer),
                    503 | 409 => {
                        pending.fetch_add(1, Ordering::AcqRel);
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    other => panic!("transfer {i}: {other} {answer}"),
                }
            }
        })
    };
    let mut requests: Vec<_> = (0..TRANSFERS / 2).map(transfer).collect();
    eventually("transfers are flowing", || async {
        let decided = bank
            .log(&["AcceptedTransaction", "RejectedTransaction"])
            .await
            .len();
        (decided >= TRANSFERS / 8).then_some(())
    })
    .await;
    bank.bus.kill9();
    requests.extend((TRANSFERS / 2..TRANSFERS).map(transfer));

    // While the bus is away no session stays idle inside a transaction
    // (one would hold its locks for as long as the bus is away). Sampled
    // until a request has been told its outcome is pending.
    let pool = bank.db.pool().await;
    let mut samples = 0;
    let deadline = tokio::time::Instant::now() + acceptance::PATIENCE;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no request was told its outcome is pending while the bus was away"
        );
        let idle: Vec<(i32, String)> = sqlx::query_as(
            "SELECT pid, coalesce(query, '') FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()
                AND state LIKE 'idle in transaction%'
                AND state_change < now() - interval '1 second'",
        )
        .fetch_all(&pool)
        .await
        .expect("pg_stat_activity");
        assert!(
            idle.is_empty(),
            "sessions wait on the bus inside a transaction: {idle:?}"
        );
        samples += 1;
        if pending_answers.load(Ordering::Acquire) > 0 && samples >= 40 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    bank.bus.restart();

    let mut answered: BTreeMap<String, Value> = BTreeMap::new();
    for request in requests {
        let (_, key, answer) = request.await.expect("the task ran");
        answered.insert(key, answer);
    }
    assert!(
        pending_answers.load(Ordering::Acquire) > 0,
        "the outage was felt"
    );

    // One transfer per key, each decided once, money moved once.
    let ids: BTreeSet<i64> = answered
        .values()
        .map(|answer| answer["transaction_id"].as_i64().expect("an id"))
        .collect();
    assert_eq!(ids.len(), TRANSFERS, "each request its own transfer");
    let pending = bank.log(&["PendingTransaction"]).await;
    assert_eq!(pending.len(), TRANSFERS, "asked for once each");
    let decisions = eventually("every transfer decided", || async {
        let decided = bank
            .log(&["AcceptedTransaction", "RejectedTransaction"])
            .await;
        (decided.len() == TRANSFERS).then_some(decided)
    })
    .await;
    let decided_ids: BTreeSet<i64> = decisions
        .iter()
        .map(|event| {
            serde_json::from_str::<Value>(event.data.get()).expect("JSON")["transaction_id"]
                .as_i64()
                .expect("an id")
        })
        .collect();
    assert_eq!(decided_ids, ids, "one decision per transfer");
    let money = bank.log(&["ConfirmedCredit", "ConfirmedDebit"]).await;
    let mut moved: BTreeMap<(String, i64), usize> = BTreeMap::new();
    for event in &money {
        let data: Value = serde_json::from_str(event.data.get()).expect("JSON");
        if let Some(id) = data["transaction_id"].as_i64() {
            *moved.entry((event.event_type.clone(), id)).or_default() += 1;
        }
    }
    assert!(
        moved.values().all(|n| *n == 1),
        "money moved twice: {moved:?}"
    );
    let from_log = balances_from_log(&money);
    for (name, account) in &accounts {
        bank.balance_becomes(name, *account, from_log[account])
            .await;
    }
    let total: Decimal = from_log.values().sum();
    assert_eq!(
        total,
        Decimal::from(100 * USERS as i64),
        "no money made or lost"
    );
}
