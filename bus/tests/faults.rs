//! The database failing under the writer: a commit whose outcome the bus
//! cannot know is answered `unknown`, never `rejected`, and a resend of
//! the same message settles it without storing anything twice.

mod common;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bus::{
    client::{BusClient, ClientConfig, Publish},
    protocol::{ConsistencyValue, ReceiptStatus},
};
use common::{ADMIN_TOKEN, BusProcess, Raw, TestDb};
use serde_json::{Value, json};
use uuid::Uuid;

/// Terminates the writer's database session again and again until stopped.
fn keep_killing_the_writer(db: &TestDb, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    let url = db.url.clone();
    tokio::spawn(async move {
        let pool = sqlx::PgPool::connect(&url).await.expect("connect");
        let mut killed = 0;
        while !stop.load(Ordering::Acquire) {
            let terminated: Vec<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE application_name = 'bus-writer' AND datname = current_database()",
            )
            .fetch_all(&pool)
            .await
            .expect("terminate");
            let now = terminated.iter().filter(|done| **done).count() as u64;
            killed += now;
            // Pacing the fault, not waiting for anything. After a kill, long
            // enough for the writer's reconnection (a second) and a commit:
            // a writer killed on every reconnection would never commit, on
            // a slow machine, and no publish could ever be answered.
            let pause = if now > 0 { 1_500 } else { 50 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        killed
    })
}

/// How many groups the writer has failed to commit, from `/metrics`.
async fn failures(bus: &BusProcess) -> u64 {
    let (_, metrics) = common::http(bus, "GET", "/metrics", None).await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("bus_append_failures_total "))
        .map_or(0, |count| count.trim().parse().unwrap_or(0))
}

fn message(request_id: &str, event_id: Uuid, key: &str) -> Value {
    json!({"message_type": "new", "request_id": request_id, "events": [
        {"event_id": event_id, "event_type": "Deposit", "consistency": {"key": key, "value": 0},
         "data": {"n": request_id}}]})
}

#[tokio::test]
async fn a_commit_lost_with_the_database_is_unknown_and_a_resend_settles_it() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let killer = keep_killing_the_writer(&db, stop.clone());

    let mut raw = Raw::connect(&bus).await;
    let mut unknown = 0;
    let mut ids = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    // Until the fault has been seen a few times (and at least 100 messages).
    while n < 100 || unknown < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "only {unknown} unknown receipts"
        );
        n += 1;
        let (event_id, key) = (Uuid::now_v7(), format!("k-{n}"));
        ids.push(event_id);
        let mut attempt = 0;
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "no definite answer for message {n}"
            );
            attempt += 1;
            raw.send(message(&format!("r-{n}-{attempt}"), event_id, &key))
                .await;
            let receipt = raw.recv().await;
            match receipt["status"].as_str() {
                Some("success") => break,
                Some("duplicate") => {
                    assert!(attempt > 1, "a first send is never a duplicate: {receipt}");
                    break;
                }
                Some("unknown") => {
                    assert_eq!(receipt["code"], "unavailable", "{receipt}");
                    unknown += 1;
                }
                _ => panic!("only success, duplicate or unknown, never {receipt}"),
            }
        }
    }
    stop.store(true, Ordering::Release);
    let killed = killer.await.unwrap();
    assert!(killed > 0);

    let pool = db.pool().await;
    let stored: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT event_id, count(*) FROM bus.events GROUP BY event_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let stored: HashMap<Uuid, i64> = stored.into_iter().collect();
    assert_eq!(
        stored.len(),
        ids.len(),
        "every message stored, nothing else"
    );
    assert!(ids.iter().all(|id| stored.get(id) == Some(&1)));
}

#[tokio::test]
async fn the_client_library_resends_until_the_answer_is_definite() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let killer = keep_killing_the_writer(&db, stop.clone());
    let config = ClientConfig::new(bus.url())
        .token(ADMIN_TOKEN)
        .deadline(Duration::from_secs(30));
    let (client, _) = BusClient::connect(config).await.expect("connect");

    // Rounds of concurrent publishes until the writer has failed a few times.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut published = 0;
    while failures(&bus).await < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the fault never hit a commit"
        );
        let mut publishes = Vec::new();
        for n in published..published + 50 {
            let client = client.clone();
            publishes.push(tokio::spawn(async move {
                let event = Publish::new(
                    "Deposit",
                    format!("acc-{}", n % 20),
                    ConsistencyValue::Implicit,
                    &json!({"n": n}),
                )
                .unwrap()
                .event_id(Uuid::now_v7());
                client.publish(vec![event]).await
            }));
        }
        published += 50;
        for publish in publishes {
            let receipt = publish.await.unwrap().expect("a definite answer in time");
            assert!(
                matches!(
                    receipt.status,
                    ReceiptStatus::Success | ReceiptStatus::Duplicate
                ),
                "{receipt:?}"
            );
        }
    }
    stop.store(true, Ordering::Release);
    killer.await.unwrap();
    let pool = db.pool().await;
    let (events, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT event_id) FROM bus.events")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (events, distinct),
        (published, published),
        "each publish stored exactly once"
    );
    // Every key's values run 0, 1, 2, … without a gap.
    let gaps: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT consistency_key, max(consistency_value) + 1 AS n, count(*) AS c
                                FROM bus.events GROUP BY consistency_key) k WHERE n <> c",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(gaps, 0);
}
