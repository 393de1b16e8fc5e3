//! The store's look-ups for staff reporting, on a log written by the real bus.

mod common;

use bus::store;
use common::{ADMIN_TOKEN, BusProcess, Raw, TestDb, eventually, http};
use serde_json::json;

#[tokio::test]
async fn staff_look_ups_by_correlation_type_time_and_lag() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut raw = Raw::connect(&bus).await;
    let mut consumer = Raw::connect(&bus).await;
    consumer
        .register("accounts", &["PendingTransaction"], "consume")
        .await;

    let correlation = "0193a7c0-0000-7000-8000-0000000000aa";
    raw.send(json!({"message_type": "new", "request_id": "t", "events": [
        {"event_type": "PendingTransaction", "consistency": {"key": "trans-1", "value": 0},
         "correlation_id": correlation, "data": {"amount": "30.00"}}]}))
        .await;
    let pending = raw.recv().await;
    raw.send(json!({"message_type": "new", "request_id": "a", "events": [
        {"event_type": "AcceptedTransaction", "consistency": {"key": "trans-1", "value": 1},
         "correlation_id": correlation, "data": {}},
        {"event_type": "ConfirmedDebit", "consistency": {"key": "acc-1", "value": 0},
         "correlation_id": correlation, "data": {"amount": "30.00"}}]}))
        .await;
    raw.recv().await;
    raw.publish("PendingTransaction", "trans-2", json!(0), json!({}))
        .await;

    let pool = db.pool().await;
    let trace = store::events::by_correlation(&pool, correlation.parse().unwrap())
        .await
        .unwrap();
    let types: Vec<&str> = trace.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "PendingTransaction",
            "AcceptedTransaction",
            "ConfirmedDebit"
        ]
    );

    let first: chrono::DateTime<chrono::Utc> = pending["events"][0]["timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let later = first + chrono::TimeDelta::hours(1);
    let pendings = store::events::by_type_and_time(&pool, "PendingTransaction", first, later, 10)
        .await
        .unwrap();
    assert_eq!(pendings.len(), 2);
    assert!(pendings[0].position > pendings[1].position, "newest first");
    let none = store::events::by_type_and_time(
        &pool,
        "PendingTransaction",
        later,
        later + chrono::TimeDelta::hours(1),
        10,
    )
    .await
    .unwrap();
    assert!(none.is_empty());

    // Two pending transactions owed to accounts; ack one.
    let delivered = consumer.event().await;
    consumer
        .ack(&[delivered["position"].as_i64().unwrap()])
        .await;
    let lag = eventually("the ack is saved", || async {
        let lag = store::subscriptions::lag(&pool).await.unwrap();
        (lag.len() == 1 && lag[0].unacknowledged == 1).then_some(lag)
    })
    .await;
    assert_eq!(lag[0].client_type, "accounts");
    assert_eq!(lag[0].parked, 0);
    let (status, body) = http(&bus, "GET", "/subscriptions", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200);
    assert!(body.contains("\"unacknowledged\":1"), "{body}");
}
