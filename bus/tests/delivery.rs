//! The Delivery section of PROTOCOL.md, rule by rule, against the real bus.

mod common;

use std::{collections::HashMap, time::Duration};

use common::{ADMIN_TOKEN, BusProcess, Raw, TestDb, eventually, http, http_json};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

fn position(event: &Value) -> i64 {
    event["position"].as_i64().expect("a position")
}

fn key(event: &Value) -> String {
    event["consistency"]["key"]
        .as_str()
        .expect("a key")
        .to_owned()
}

/// Publishes `n` events of `event_type` spread over `keys` keys of its own
/// (`{event_type}-0`, …).
async fn publish_many(bus: &BusProcess, event_type: &str, n: usize, keys: usize) -> Vec<i64> {
    let mut publisher = Raw::connect(bus).await;
    let mut positions = Vec::new();
    for i in 0..n {
        let receipt = publisher
            .publish(
                event_type,
                &format!("{event_type}-{}", i % keys),
                json!("*"),
                json!({"n": i}),
            )
            .await;
        positions.push(receipt["events"][0]["position"].as_i64().unwrap());
    }
    positions
}

#[tokio::test]
async fn observers_get_every_new_event_live_and_nothing_while_away() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    publish_many(&bus, "Before", 3, 1).await;
    let mut observer = Raw::connect(&bus).await;
    let registration = observer.register("web", &["Balance"], "observe").await;
    assert_eq!(registration["head_position"], 3);

    let mut publisher = Raw::connect(&bus).await;
    publisher.publish("Other", "k", json!("*"), json!(0)).await;
    publisher
        .publish("Balance", "acc-1", json!("*"), json!({"balance": "1.00"}))
        .await;
    let event = observer.event().await;
    assert_eq!(event["event_type"], "Balance");
    assert_eq!(event["position"], 5);
    assert_eq!(event["data"], json!({"balance": "1.00"}));
    assert!(
        observer.silent_for(Duration::from_millis(300)).await,
        "only its types"
    );
}

#[tokio::test]
async fn rule_1_a_subscription_is_owed_events_from_its_first_registration_while_away() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    publish_many(&bus, "A", 2, 1).await; // before the subscription: not owed
    let mut first = Raw::connect(&bus).await;
    first.register("reporting", &["A"], "consume").await;
    drop(first);

    let owed = publish_many(&bus, "A", 5, 2).await;
    let mut again = Raw::connect(&bus).await;
    again.register("reporting", &["A"], "consume").await;
    let mut got = Vec::new();
    for _ in 0..5 {
        let event = again.event().await;
        got.push(position(&event));
        again.ack(&[position(&event)]).await;
    }
    got.sort();
    assert_eq!(got, owed);
    assert!(again.silent_for(Duration::from_millis(300)).await);
}

#[tokio::test]
async fn rules_2_and_3_each_event_goes_to_one_instance_and_keys_stick() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut one = Raw::connect(&bus).await;
    one.register("accounts", &["A"], "consume").await;
    let mut two = Raw::connect(&bus).await;
    two.register("accounts", &["A"], "consume").await;
    let mut other_type = Raw::connect(&bus).await;
    other_type.register("reporting", &["*"], "consume").await;

    let published = publish_many(&bus, "A", 60, 12).await;
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut seen = Vec::new();
    // Read until all 60 arrived, acking as we go, from whichever instance has one.
    let mut instances = [one, two];
    while seen.len() < 60 {
        let mut progressed = false;
        for (index, instance) in instances.iter_mut().enumerate() {
            if let Some(frame) = instance.try_recv(Duration::from_millis(100)).await {
                assert_eq!(frame["message_type"], "event");
                let k = key(&frame);
                let previous = owner.insert(k.clone(), index);
                assert!(
                    previous.is_none_or(|p| p == index),
                    "key {k} moved between connected instances"
                );
                seen.push(position(&frame));
                instance.ack(&[position(&frame)]).await;
                progressed = true;
            }
        }
        assert!(
            progressed || seen.len() == 60,
            "deliveries stalled at {}",
            seen.len()
        );
    }
    seen.sort();
    assert_eq!(
        seen, published,
        "every event exactly once across the instances"
    );
    assert!(
        owner.values().any(|&i| i == 0) && owner.values().any(|&i| i == 1),
        "keys are spread: {owner:?}"
    );

    let mut other = Vec::new();
    for _ in 0..60 {
        let event = other_type.event().await;
        other.push(position(&event));
        other_type.ack(&[position(&event)]).await;
    }
    other.sort();
    assert_eq!(other, published, "another client type gets every event too");
}

#[tokio::test]
async fn rule_4_a_keys_next_event_waits_for_the_ack_of_the_one_before() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut consumer = Raw::connect(&bus).await;
    consumer.register("accounts", &["A"], "consume").await;
    let published = publish_many(&bus, "A", 3, 1).await;

    let first = consumer.event().await;
    assert_eq!(position(&first), published[0]);
    assert!(
        consumer.silent_for(Duration::from_millis(300)).await,
        "n+1 is held while n is unacknowledged"
    );
    consumer.ack(&[published[0]]).await;
    assert_eq!(position(&consumer.event().await), published[1]);
    consumer.ack(&[published[1]]).await;
    assert_eq!(position(&consumer.event().await), published[2]);
}

#[tokio::test]
async fn rule_5_a_disconnected_instances_events_go_to_the_others_in_order() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut one = Raw::connect(&bus).await;
    one.register("accounts", &["A"], "consume").await;
    let published = publish_many(&bus, "A", 4, 1).await;
    let first = one.event().await;
    assert_eq!(position(&first), published[0]);
    assert_eq!(first["delivery"], 1);

    let mut two = Raw::connect(&bus).await;
    two.register("accounts", &["A"], "consume").await;
    assert!(
        two.silent_for(Duration::from_millis(300)).await,
        "a key with an unacked event does not move"
    );
    drop(one);

    let again = two.event().await;
    assert_eq!(
        position(&again),
        published[0],
        "the unacknowledged event first"
    );
    assert_eq!(again["delivery"], 2);
    two.ack(&[published[0]]).await;
    for expected in &published[1..] {
        let next = two.event().await;
        assert_eq!(position(&next), *expected, "order kept");
        two.ack(&[*expected]).await;
    }
}

#[tokio::test]
async fn rule_5_with_no_instance_left_events_wait_durably() {
    let db = TestDb::new().await;
    let mut bus = BusProcess::start(&db, &[]);
    let mut consumer = Raw::connect(&bus).await;
    consumer.register("accounts", &["A"], "consume").await;
    let published = publish_many(&bus, "A", 2, 1).await;
    let _ = consumer.event().await; // delivered, never acked
    drop(consumer);

    bus.restart();
    let mut later = Raw::connect(&bus).await;
    later.register("accounts", &["A"], "consume").await;
    let first = later.event().await;
    assert_eq!(position(&first), published[0]);
    later.ack(&[published[0]]).await;
    assert_eq!(position(&later.event().await), published[1]);
}

#[tokio::test]
async fn rule_6_an_event_not_acked_in_time_is_delivered_again() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(
        &db,
        &["--ack-timeout-ms", "300", "--retry-backoff-ms", "10"],
    );
    let mut consumer = Raw::connect(&bus).await;
    consumer.register("accounts", &["A"], "consume").await;
    let published = publish_many(&bus, "A", 1, 1).await;
    assert_eq!(consumer.event().await["delivery"], 1);
    let again = consumer.event().await;
    assert_eq!(position(&again), published[0]);
    assert_eq!(again["delivery"], 2);
}

/// The parked events listed for `client_type`, once `ready` holds for them.
async fn parked_when(bus: &BusProcess, client_type: &str, ready: impl Fn(&Value) -> bool) -> Value {
    eventually("the parked events are saved", || async {
        let (status, body) = http(
            bus,
            "GET",
            &format!("/parked?client_type={client_type}"),
            Some(ADMIN_TOKEN),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        let parked = body["parked"].clone();
        ready(&parked).then_some(parked)
    })
    .await
}

#[tokio::test]
async fn a_parked_event_blocks_its_key_until_staff_replay_it() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &["--max-deliveries", "3", "--retry-backoff-ms", "20"]);
    let mut consumer = Raw::connect(&bus).await;
    consumer.register("accounts", &["A"], "consume").await;
    let mut publisher = Raw::connect(&bus).await;
    let mut publish = async |key: &str, data: &str| {
        publisher.publish("A", key, json!("*"), json!(data)).await["events"][0]["position"]
            .as_i64()
            .unwrap()
    };
    let poison = publish("acc-1", "poison").await;
    let behind = publish("acc-1", "behind").await;
    let other = publish("acc-2", "other").await;

    // The poison fails three times; the other key flows on meanwhile.
    let (mut failures, mut others) = (0, 0);
    while failures < 3 || others < 1 {
        let event = consumer.event().await;
        if position(&event) == poison {
            failures += 1;
            assert_eq!(event["delivery"], failures);
            consumer
                .send(json!({"message_type": "nack", "position": poison, "reason": "cannot apply"}))
                .await;
        } else {
            assert_eq!(position(&event), other, "acc-1's next event waits: {event}");
            others += 1;
            consumer.ack(&[other]).await;
        }
    }

    // Parked, with the key's next event listed as blocked behind it, and a
    // later one too.
    let parked = parked_when(&bus, "accounts", |parked| {
        parked[0]["blocked_positions"] == json!([behind])
    })
    .await;
    assert_eq!(parked[0]["position"], poison);
    assert_eq!(parked[0]["consistency_key"], "acc-1");
    assert_eq!(parked[0]["deliveries"], 3);
    assert_eq!(parked[0]["reason"], "cannot apply");
    let later = publish("acc-1", "later").await;
    parked_when(&bus, "accounts", |parked| {
        parked[0]["blocked_positions"] == json!([behind, later]) && parked[0]["blocked_count"] == 2
    })
    .await;
    assert!(
        consumer.silent_for(Duration::from_millis(300)).await,
        "nothing of acc-1 is delivered while it is blocked"
    );

    let replay = format!("/parked/accounts/{poison}/replay");
    assert_eq!(http(&bus, "POST", &replay, None).await.0, 401);
    let (status, body) = http(&bus, "POST", &replay, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (body["decision"].as_str(), body["released"].as_i64()),
        (Some("replay"), Some(2))
    );

    // The parked event first, then the held ones, in order.
    for expected in [poison, behind, later] {
        let event = consumer.event().await;
        assert_eq!(position(&event), expected, "{event}");
        consumer.ack(&[expected]).await;
    }
    assert_eq!(http(&bus, "POST", &replay, Some(ADMIN_TOKEN)).await.0, 404);
    parked_when(&bus, "accounts", |parked| parked == &json!([])).await;
}

#[tokio::test]
async fn a_skip_is_recorded_releases_the_key_and_blocking_survives_a_kill_9() {
    let db = TestDb::new().await;
    let mut bus = BusProcess::start(&db, &["--max-deliveries", "1"]);
    let mut consumer = Raw::connect(&bus).await;
    consumer.register("accounts", &["A"], "consume").await;
    let mut publisher = Raw::connect(&bus).await;
    let poison = publisher
        .publish("A", "acc-1", json!("*"), json!("poison"))
        .await["events"][0]["position"]
        .as_i64()
        .unwrap();
    let first_held = publisher
        .publish("A", "acc-1", json!("*"), json!("held"))
        .await["events"][0]["position"]
        .as_i64()
        .unwrap();
    let event = consumer.event().await;
    assert_eq!(position(&event), poison);
    consumer
        .send(json!({"message_type": "nack", "position": poison, "reason": "bad data"}))
        .await;
    parked_when(&bus, "accounts", |parked| {
        parked[0]["blocked_positions"] == json!([first_held])
    })
    .await;

    drop((consumer, publisher));
    bus.kill9();
    bus.restart();
    let mut consumer = Raw::connect(&bus).await;
    consumer
        .register_with_skip_markers("accounts", &["A"])
        .await;
    let mut publisher = Raw::connect(&bus).await;
    let second_held = publisher
        .publish("A", "acc-1", json!("*"), json!("held 2"))
        .await["events"][0]["position"]
        .as_i64()
        .unwrap();
    parked_when(&bus, "accounts", |parked| {
        parked[0]["blocked_positions"] == json!([first_held, second_held])
    })
    .await;
    assert!(
        consumer.silent_for(Duration::from_millis(300)).await,
        "still blocked after the restart"
    );

    let skip = format!("/parked/accounts/{poison}/skip");
    assert_eq!(
        http_json(
            &bus,
            "POST",
            &skip,
            Some(ADMIN_TOKEN),
            Some(json!({"note": " "}))
        )
        .await
        .0,
        400,
        "a skip says why"
    );
    let (status, body) = http_json(
        &bus,
        "POST",
        &skip,
        Some(ADMIN_TOKEN),
        Some(json!({"note": "corrected by hand in ticket 12"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    // The skipped event once more, marked, for the consumer to step over;
    // then the held ones, in order.
    let skipped = consumer.event().await;
    assert_eq!(
        (position(&skipped), skipped["skipped"].as_bool()),
        (poison, Some(true)),
        "{skipped}"
    );
    consumer.ack(&[poison]).await;
    for expected in [first_held, second_held] {
        let event = consumer.event().await;
        assert_eq!(position(&event), expected);
        assert!(event.get("skipped").is_none(), "{event}");
        consumer.ack(&[expected]).await;
    }
    let pool = db.pool().await;
    let decision: (String, String, String, i32) = sqlx::query_as(
        "SELECT decision, decided_by, note, released FROM bus.parking_decisions WHERE position = $1",
    )
    .bind(poison)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        decision,
        (
            "skip".into(),
            "admin (BUS_TOKEN)".into(),
            "corrected by hand in ticket 12".into(),
            2
        )
    );
    eventually("the acks are saved", || async {
        let owed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM bus.replays WHERE client_type = 'accounts'")
                .fetch_one(&pool)
                .await
                .unwrap();
        (owed == 0).then_some(())
    })
    .await;
    drop((consumer, publisher));
    bus.kill9();
    bus.restart();
    let mut consumer = Raw::connect(&bus).await;
    consumer.register("accounts", &["A"], "consume").await;
    assert!(
        consumer.silent_for(Duration::from_millis(500)).await,
        "neither the skipped event nor the released ones come again once acknowledged"
    );
}

/// Parks `acc-1`'s first event at a consumer of `accounts` that fails it
/// once; returns its position.
async fn park_first(bus: &BusProcess, consumer: &mut Raw, publisher: &mut Raw) -> i64 {
    let poison = publisher
        .publish("A", "acc-1", json!("*"), json!("poison"))
        .await["events"][0]["position"]
        .as_i64()
        .unwrap();
    assert_eq!(position(&consumer.event().await), poison);
    consumer
        .send(json!({"message_type": "nack", "position": poison, "reason": "bad data"}))
        .await;
    parked_when(bus, "accounts", |parked| parked[0]["position"] == poison).await;
    poison
}

async fn skip(bus: &BusProcess, position: i64) {
    let (status, body) = http_json(
        bus,
        "POST",
        &format!("/parked/accounts/{position}/skip"),
        Some(ADMIN_TOKEN),
        Some(json!({"note": "entered twice"})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn without_skip_markers_a_skipped_last_event_is_settled_unseen_and_the_key_flows_on() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &["--max-deliveries", "1"]);
    let mut consumer = Raw::connect(&bus).await;
    consumer.register("accounts", &["A"], "consume").await;
    let mut publisher = Raw::connect(&bus).await;
    let poison = park_first(&bus, &mut consumer, &mut publisher).await;
    skip(&bus, poison).await;
    parked_when(&bus, "accounts", |parked| parked == &json!([])).await;

    // Nothing was behind it; the key's next event comes, the skipped one
    // never again.
    let next = publisher
        .publish("A", "acc-1", json!("*"), json!("next"))
        .await["events"][0]["position"]
        .as_i64()
        .unwrap();
    let event = consumer.event().await;
    assert_eq!(position(&event), next, "{event}");
    consumer.ack(&[next]).await;
    assert!(consumer.silent_for(Duration::from_millis(300)).await);
}

#[tokio::test]
async fn thousands_of_blocked_events_are_released_in_order_in_pages() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &["--max-deliveries", "1"]);
    let mut consumer = Raw::connect(&bus).await;
    consumer.register("accounts", &["A"], "consume").await;
    let mut publisher = Raw::connect(&bus).await;
    let poison = park_first(&bus, &mut consumer, &mut publisher).await;
    let mut blocked = Vec::new();
    for message in 0..5 {
        let events: Vec<Value> = (0..500)
            .map(|n| {
                json!({"event_type": "A", "consistency": {"key": "acc-1", "value": "*"},
                            "data": {"n": message * 500 + n}})
            })
            .collect();
        publisher
            .send(json!({"message_type": "new", "request_id": format!("m-{message}"), "events": events}))
            .await;
        let receipt = publisher.recv().await;
        assert_eq!(receipt["status"], "success", "{receipt}");
        blocked.extend(receipt["events"].as_array().unwrap().iter().map(position));
    }
    parked_when(&bus, "accounts", |parked| {
        parked[0]["blocked_count"] == 2500
    })
    .await;

    let (status, body) = http(
        &bus,
        "POST",
        &format!("/parked/accounts/{poison}/replay"),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    // Published while the released pages are still being delivered: they
    // come after every released one.
    let mut newer = Vec::new();
    for n in 0..3 {
        newer.push(
            publisher
                .publish("A", "acc-1", json!("*"), json!({"newer": n}))
                .await["events"][0]["position"]
                .as_i64()
                .unwrap(),
        );
    }
    for expected in std::iter::once(poison).chain(blocked).chain(newer) {
        let event = consumer.event().await;
        assert_eq!(position(&event), expected);
        consumer.ack(&[expected]).await;
    }
    assert!(consumer.silent_for(Duration::from_millis(300)).await);
}

#[tokio::test]
async fn rule_7_at_most_max_in_flight_unacknowledged_events_per_instance() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &["--max-in-flight", "5"]);
    let mut consumer = Raw::connect(&bus).await;
    consumer.register("accounts", &["A"], "consume").await;
    publish_many(&bus, "A", 8, 8).await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(position(&consumer.event().await));
    }
    assert!(
        consumer.silent_for(Duration::from_millis(300)).await,
        "the sixth is held back"
    );
    consumer.ack(&held[..3]).await;
    for _ in 0..3 {
        consumer.event().await;
    }
}

#[tokio::test]
async fn acknowledged_events_are_not_delivered_again_after_a_restart() {
    let db = TestDb::new().await;
    let mut bus = BusProcess::start(&db, &[]);
    let mut consumer = Raw::connect(&bus).await;
    consumer.register("accounts", &["A"], "consume").await;
    // Keys get positions 1 4, 2 5, 3 6. Everything is acked
    // but position 2, which holds 5 back behind it.
    let published = publish_many(&bus, "A", 6, 3).await;
    let mut acked = Vec::new();
    while acked.len() < 4 {
        let delivered = position(&consumer.event().await);
        if delivered != published[1] {
            consumer.ack(&[delivered]).await;
            acked.push(delivered);
        }
    }
    acked.sort();
    assert_eq!(acked, [1, 3, 4, 6]);
    // An ack is durable within one second: wait until the store has it.
    let pool = db.pool().await;
    eventually("the acks are saved", || async {
        let stored: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM bus.acks WHERE client_type = 'accounts')
                  + (SELECT count(*) FROM bus.events e, bus.subscriptions s
                      WHERE s.client_type = 'accounts' AND e.position <= s.acked_through
                        AND e.position > 0 AND e.event_type = 'A')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        (stored >= 4).then_some(())
    })
    .await;
    drop(consumer);
    bus.kill9();
    bus.restart();

    let mut again = Raw::connect(&bus).await;
    again.register("accounts", &["A"], "consume").await;
    let redelivered = again.event().await;
    assert_eq!(
        position(&redelivered),
        published[1],
        "only the unacknowledged one"
    );
    assert_eq!(
        redelivered["delivery"], 1,
        "a crash forgets a delivery that was never failed"
    );
    again.ack(&[published[1]]).await;
    assert_eq!(
        position(&again.event().await),
        published[4],
        "then the one it held back"
    );
    again.ack(&[published[4]]).await;
    assert!(again.silent_for(Duration::from_millis(500)).await);
}

#[tokio::test]
async fn kill_9_keeps_consistency_values_subscriptions_and_unacknowledged_events() {
    let db = TestDb::new().await;
    let mut bus = BusProcess::start(&db, &[]);
    let mut consumer = Raw::connect(&bus).await;
    consumer
        .register("accounts", &["PendingTransaction"], "consume")
        .await;
    let mut publisher = Raw::connect(&bus).await;
    for value in 0..3 {
        let receipt = publisher
            .publish(
                "PendingTransaction",
                "acc-1",
                json!(value),
                json!({"v": value}),
            )
            .await;
        assert_eq!(receipt["status"], "success");
    }
    let first = consumer.event().await;
    drop(consumer);
    drop(publisher);
    bus.kill9();
    bus.restart();

    let mut publisher = Raw::connect(&bus).await;
    let stale = publisher
        .publish("PendingTransaction", "acc-1", json!(2), json!({}))
        .await;
    assert_eq!(stale["status"], "inconsistent");
    assert_eq!(stale["events"][0]["current"], 2);
    let next = publisher
        .publish("PendingTransaction", "acc-1", json!(3), json!({"v": 3}))
        .await;
    assert_eq!(next["status"], "success");
    assert_eq!(
        next["events"][0]["position"], 4,
        "positions continue after the restart"
    );

    let mut consumer = Raw::connect(&bus).await;
    consumer
        .register("accounts", &["PendingTransaction"], "consume")
        .await;
    let mut got = Vec::new();
    for _ in 0..4 {
        let event = consumer.event().await;
        got.push(position(&event));
        consumer.ack(&[position(&event)]).await;
    }
    assert_eq!(
        got,
        [1, 2, 3, 4],
        "the unacknowledged ones, in order, then the new one"
    );
    assert_eq!(position(&first), 1);
}

#[tokio::test]
async fn many_connections_racing_on_one_key_get_exactly_one_winner_per_value() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut racers = Vec::new();
    for racer in 0..16 {
        let url = bus.url();
        racers.push(tokio::spawn(async move {
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let mut request = url.into_client_request().unwrap();
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {ADMIN_TOKEN}").parse().unwrap(),
            );
            let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
            use futures_util::{SinkExt, StreamExt};
            let mut wins = Vec::new();
            let mut value = 0;
            while value < 50 {
                let frame = json!({"message_type": "new", "request_id": format!("{racer}-{value}"), "events": [
                    {"event_type": "ConfirmedDebit", "consistency": {"key": "acc-hot", "value": value}, "data": {"racer": racer}}]});
                socket.send(Message::text(frame.to_string())).await.unwrap();
                let Some(Ok(Message::Text(text))) = socket.next().await else { panic!("no receipt") };
                let receipt: Value = serde_json::from_str(text.as_str()).unwrap();
                match receipt["status"].as_str() {
                    Some("success") => {
                        wins.push(value);
                        value += 1;
                    }
                    Some("inconsistent") => value = receipt["events"][0]["current"].as_i64().unwrap() + 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
            wins
        }));
    }
    let mut winners: Vec<i64> = Vec::new();
    for racer in racers {
        winners.extend(racer.await.unwrap());
    }
    winners.sort();
    assert_eq!(
        winners,
        (0..50).collect::<Vec<_>>(),
        "each value won exactly once"
    );
}

#[tokio::test]
async fn sigterm_closes_sockets_with_1001_after_answering_what_was_sent() {
    let db = TestDb::new().await;
    let mut bus = BusProcess::start(&db, &[]);
    let mut client = Raw::connect(&bus).await;
    client.publish("A", "k", json!("*"), json!(0)).await;
    let status = bus.terminate();
    assert!(status.success(), "{status}");
    match client.next_message().await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected a close with 1001, got {other:?}"),
    }
}

#[tokio::test]
async fn a_type_added_by_a_later_instance_is_owed_from_its_registration() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut first = Raw::connect(&bus).await;
    first.register("reporting", &["A"], "consume").await;
    let mut publisher = Raw::connect(&bus).await;
    publisher
        .publish("B", "k", json!("*"), json!("before"))
        .await;

    let mut second = Raw::connect(&bus).await;
    let registration = second.register("reporting", &["A", "B"], "consume").await;
    let head = registration["head_position"].as_i64().unwrap();
    let after = publisher
        .publish("B", "k", json!("*"), json!("after"))
        .await["events"][0]["position"]
        .as_i64()
        .unwrap();
    assert!(after > head);
    let delivered = second.event().await;
    assert_eq!(
        position(&delivered),
        after,
        "B is owed from the registration that added it"
    );
    assert_eq!(delivered["data"], "after");
    assert!(
        first.silent_for(Duration::from_millis(200)).await,
        "the first instance does not take B"
    );
}

#[tokio::test]
async fn an_acknowledged_replay_stays_acknowledged_after_a_restart() {
    let db = TestDb::new().await;
    let mut bus = BusProcess::start(&db, &["--max-deliveries", "1"]);
    let mut consumer = Raw::connect(&bus).await;
    consumer.register("accounts", &["A"], "consume").await;
    let mut publisher = Raw::connect(&bus).await;
    // Position 1 stays unacknowledged on its key, holding the watermark
    // below the parked and replayed position 2.
    publisher.publish("A", "k-1", json!("*"), json!(1)).await;
    publisher.publish("A", "k-2", json!("*"), json!(2)).await;
    let mut held = None;
    for _ in 0..2 {
        let event = consumer.event().await;
        if event["consistency"]["key"] == "k-2" {
            consumer
                .send(json!({"message_type": "nack", "position": position(&event), "reason": "no"}))
                .await;
        } else {
            held = Some(position(&event));
        }
    }
    assert_eq!(held, Some(1));
    eventually("event 2 is parked, then replayed", || async {
        let (status, _) = http(&bus, "POST", "/parked/accounts/2/replay", Some(ADMIN_TOKEN)).await;
        (status == 202).then_some(())
    })
    .await;
    let replayed = consumer.event().await;
    assert_eq!(position(&replayed), 2);
    consumer.ack(&[2]).await;
    let pool = db.pool().await;
    eventually("the replay's ack is saved", || async {
        let acked: i64 = sqlx::query_scalar("SELECT count(*) FROM bus.acks WHERE position = 2")
            .fetch_one(&pool)
            .await
            .unwrap();
        (acked == 1).then_some(())
    })
    .await;
    drop(consumer);
    bus.kill9();
    bus.restart();
    let mut again = Raw::connect(&bus).await;
    again.register("accounts", &["A"], "consume").await;
    assert_eq!(
        position(&again.event().await),
        1,
        "only the unacknowledged event"
    );
    again.ack(&[1]).await;
    assert!(
        again.silent_for(Duration::from_millis(500)).await,
        "the acknowledged replay is not delivered again"
    );
}

#[tokio::test]
async fn events_no_instance_takes_do_not_hold_up_the_types_that_have_takers() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &["--max-held", "10"]);
    let mut leaving = Raw::connect(&bus).await;
    leaving.register("reporting", &["X", "Z"], "consume").await;
    let mut staying = Raw::connect(&bus).await;
    staying.register("reporting", &["X"], "consume").await;
    drop(leaving);

    // Z's only taker left: its events wait, held, for a new one.
    publish_many(&bus, "Z", 30, 30).await;
    let xs = publish_many(&bus, "X", 5, 5).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        let event = staying.event().await;
        assert_eq!(event["event_type"], "X");
        got.push(position(&event));
        staying.ack(&[position(&event)]).await;
    }
    got.sort();
    assert_eq!(got, xs);
}
