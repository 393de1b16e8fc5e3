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

/// The `GET /subscriptions` entry of `client_type`, once `ready` holds.
async fn subscription_when(
    bus: &BusProcess,
    client_type: &str,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    eventually(&format!("the subscription of {client_type}"), || async {
        let (status, body) = http(bus, "GET", "/subscriptions", Some(ADMIN_TOKEN)).await;
        assert_eq!(status, 200, "{body}");
        let all: Vec<serde_json::Value> = serde_json::from_str(&body).expect("a JSON array");
        all.into_iter()
            .find(|entry| entry["client_type"] == client_type)
            .filter(|entry| ready(entry))
    })
    .await
}

#[tokio::test]
async fn staff_see_connected_instances_in_flight_and_the_oldest_unacknowledged_event() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut one = Raw::connect(&bus).await;
    let mut two = Raw::connect(&bus).await;
    one.register("ledger", &["Posted"], "consume").await;
    two.register("ledger", &["Posted"], "consume").await;
    let mut idle = Raw::connect(&bus).await;
    idle.register("idle", &["Nothing"], "consume").await;
    drop(idle);

    let mut publisher = Raw::connect(&bus).await;
    for n in 0..4 {
        publisher
            .publish("Posted", &format!("entry-{n}"), json!("*"), json!({"n": n}))
            .await;
    }
    // Four keys over two instances: gather what each got.
    let mut delivered = Vec::new();
    while delivered.len() < 4 {
        let (instance, event) = tokio::select! {
            event = one.event() => (1, event),
            event = two.event() => (2, event),
        };
        delivered.push((event["position"].as_i64().unwrap(), instance, event));
    }
    delivered.sort_by_key(|(position, _, _)| *position);

    // Ack the first; the other three stay unacknowledged.
    let (first, holder, _) = &delivered[0];
    match holder {
        1 => one.ack(&[*first]).await,
        _ => two.ack(&[*first]).await,
    }
    let entry = subscription_when(&bus, "ledger", |entry| entry["unacknowledged"] == 3).await;
    let mut fields: Vec<&str> = entry
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "acked_through",
            "blocked",
            "client_type",
            "in_flight",
            "instances",
            "oldest_unacknowledged_at",
            "parked",
            "unacknowledged"
        ],
        "{entry}"
    );
    assert_eq!(entry["instances"], 2, "{entry}");
    assert_eq!(entry["in_flight"], 3, "{entry}");
    assert_eq!(entry["acked_through"], *first, "{entry}");
    assert_eq!(entry["parked"], 0, "{entry}");
    assert_eq!(entry["blocked"], 0, "{entry}");
    let oldest_unacked = &delivered[1].2;
    assert_eq!(
        entry["oldest_unacknowledged_at"], oldest_unacked["timestamp"],
        "{entry} against {oldest_unacked}"
    );

    let idle = subscription_when(&bus, "idle", |_| true).await;
    assert_eq!(idle["instances"], 0, "{idle}");
    assert_eq!(idle["in_flight"], 0, "{idle}");
    assert_eq!(idle["unacknowledged"], 0, "{idle}");
    assert!(idle["oldest_unacknowledged_at"].is_null(), "{idle}");

    // One instance goes: its events go to the other, still unacknowledged.
    drop(two);
    let entry = subscription_when(&bus, "ledger", |entry| {
        entry["instances"] == 1 && entry["in_flight"] == 3
    })
    .await;
    assert_eq!(entry["unacknowledged"], 3, "{entry}");
    assert_eq!(
        entry["oldest_unacknowledged_at"],
        oldest_unacked["timestamp"]
    );
    drop(one);
    subscription_when(&bus, "ledger", |entry| {
        entry["instances"] == 0 && entry["in_flight"] == 0
    })
    .await;
}
