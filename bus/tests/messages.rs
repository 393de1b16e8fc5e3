//! Every message of PROTOCOL.md against the real bus binary and Postgres.

mod common;

use common::{BusProcess, Raw, TestDb, http};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

#[tokio::test]
async fn register_answers_registration_once() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut raw = Raw::connect(&bus).await;
    let registration = raw
        .register(
            "accounts",
            &["PendingTransaction", "AccountCreationRequest"],
            "consume",
        )
        .await;
    assert_eq!(registration["client_type"], "accounts");
    assert_eq!(registration["mode"], "consume");
    assert_eq!(registration["head_position"], 0);
    assert!(
        registration["session_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36)
    );
    let mut types: Vec<&str> = registration["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(types, ["AccountCreationRequest", "PendingTransaction"]);

    raw.send(json!({"message_type": "register", "client_type": "accounts", "event_types": ["*"]}))
        .await;
    let error = raw.recv().await;
    assert_eq!(error["message_type"], "error");
    assert_eq!(error["code"], "already_registered");
}

#[tokio::test]
async fn new_stores_events_with_positions_values_and_timestamps() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut raw = Raw::connect(&bus).await;

    let first = raw
        .publish(
            "AccountCreated",
            "acc-1",
            json!(0),
            json!({"account_id": 1}),
        )
        .await;
    assert_eq!(first["status"], "success");
    let event = &first["events"][0];
    assert_eq!(event["status"], "success");
    assert_eq!(event["position"], 1);
    assert_eq!(event["consistency"], json!({"key": "acc-1", "value": 0}));
    let timestamp = event["timestamp"].as_str().unwrap();
    assert!(
        timestamp.ends_with('Z') && timestamp.len() == 27,
        "microseconds, UTC: {timestamp}"
    );

    let implicit = raw
        .publish(
            "ConfirmedCredit",
            "acc-1",
            json!("*"),
            json!({"amount": "30.00"}),
        )
        .await;
    assert_eq!(implicit["events"][0]["consistency"]["value"], 1);
    assert_eq!(implicit["events"][0]["position"], 2);
    let later = implicit["events"][0]["timestamp"].as_str().unwrap();
    assert!(
        later >= timestamp,
        "timestamps never decrease along positions"
    );

    // Absent value means "*"; a new key starts at 0.
    raw.send(
        json!({"message_type": "new", "request_id": "r-3", "events": [
        {"event_type": "AccountCreated", "consistency": {"key": "acc-2"}, "data": {}}]}),
    )
    .await;
    let receipt = raw.recv().await;
    assert_eq!(
        receipt["events"][0]["consistency"],
        json!({"key": "acc-2", "value": 0})
    );
    // The bus makes event and correlation ids when absent.
    assert!(
        receipt["events"][0]["event_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36)
    );
}

#[tokio::test]
async fn a_stale_value_is_inconsistent_with_the_current_value_and_stores_nothing() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut raw = Raw::connect(&bus).await;
    raw.publish("ConfirmedCredit", "acc-7", json!(0), json!({}))
        .await;

    raw.send(
        json!({"message_type": "new", "request_id": "r-1", "events": [
        {"event_type": "ConfirmedDebit", "consistency": {"key": "acc-7", "value": 0}, "data": {}},
        {"event_type": "ConfirmedCredit", "consistency": {"key": "acc-9", "value": 0}, "data": {}},
        {"event_type": "X", "consistency": {"key": "acc-5", "value": 3}, "data": {}}]}),
    )
    .await;
    let receipt = raw.recv().await;
    assert_eq!(receipt["status"], "inconsistent");
    let events = receipt["events"].as_array().unwrap();
    assert_eq!(events[0]["status"], "inconsistent");
    assert_eq!(events[0]["current"], 0);
    assert_eq!(events[1]["status"], "aborted");
    assert!(events[1].get("current").is_none());
    assert_eq!(events[2]["status"], "inconsistent");
    assert_eq!(
        events[2]["current"],
        Value::Null,
        "a key with no event has no current value"
    );

    raw.send(json!({"message_type": "consistency", "request_id": "c", "keys": ["acc-7", "acc-9", "acc-5"]})).await;
    let values = raw.recv().await;
    assert_eq!(
        values["values"],
        json!({"acc-7": 0, "acc-9": null, "acc-5": null}),
        "nothing was stored"
    );
}

#[tokio::test]
async fn a_message_is_atomic_and_carries_consecutive_values() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut raw = Raw::connect(&bus).await;
    raw.send(json!({"message_type": "new", "request_id": "pair", "events": [
        {"event_type": "AcceptedTransaction", "consistency": {"key": "trans-1", "value": 0}, "data": {}},
        {"event_type": "ConfirmedDebit", "consistency": {"key": "acc-1", "value": 0}, "data": {}},
        {"event_type": "ConfirmedDebit", "consistency": {"key": "acc-1", "value": 1}, "data": {}}]}))
        .await;
    let receipt = raw.recv().await;
    assert_eq!(receipt["status"], "success");
    let positions: Vec<i64> = receipt["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, [1, 2, 3]);
}

#[tokio::test]
async fn a_resent_message_is_a_duplicate_and_a_partial_resend_is_rejected() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut raw = Raw::connect(&bus).await;
    let message = json!({"message_type": "new", "request_id": "once", "events": [
        {"event_id": "0193a7c0-0000-7000-8000-000000000001", "event_type": "A", "consistency": {"key": "k", "value": 0}, "data": 1},
        {"event_id": "0193a7c0-0000-7000-8000-000000000002", "event_type": "A", "consistency": {"key": "k", "value": 1}, "data": 2}]});
    raw.send(message.clone()).await;
    let original = raw.recv().await;
    assert_eq!(original["status"], "success");

    raw.send(message).await;
    let again = raw.recv().await;
    assert_eq!(again["status"], "duplicate");
    for (first, second) in original["events"]
        .as_array()
        .unwrap()
        .iter()
        .zip(again["events"].as_array().unwrap())
    {
        assert_eq!(second["status"], "duplicate");
        assert_eq!(first["position"], second["position"]);
        assert_eq!(first["consistency"], second["consistency"]);
    }

    // The same id with an implicit value is a duplicate too, not a new event.
    raw.send(json!({"message_type": "new", "request_id": "star", "events": [
        {"event_id": "0193a7c0-0000-7000-8000-000000000001", "event_type": "A", "consistency": {"key": "k"}, "data": 1}]}))
        .await;
    assert_eq!(raw.recv().await["status"], "duplicate");

    raw.send(json!({"message_type": "new", "request_id": "half", "events": [
        {"event_id": "0193a7c0-0000-7000-8000-000000000002", "event_type": "A", "consistency": {"key": "k"}, "data": 2},
        {"event_id": "0193a7c0-0000-7000-8000-000000000003", "event_type": "A", "consistency": {"key": "k"}, "data": 3}]}))
        .await;
    let partial = raw.recv().await;
    assert_eq!(partial["status"], "rejected");
    assert_eq!(partial["code"], "partial_duplicate");
    raw.send(json!({"message_type": "consistency", "request_id": "c", "keys": ["k"]}))
        .await;
    assert_eq!(
        raw.recv().await["values"]["k"],
        1,
        "nothing more was stored"
    );
}

#[tokio::test]
async fn receipts_come_in_the_order_of_the_messages() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut raw = Raw::connect(&bus).await;
    for n in 0..200 {
        raw.send(
            json!({"message_type": "new", "request_id": format!("r-{n}"), "events": [
            {"event_type": "A", "consistency": {"key": format!("k-{}", n % 7)}, "data": n}]}),
        )
        .await;
    }
    let mut last_position = 0;
    for n in 0..200 {
        let receipt = raw.recv().await;
        assert_eq!(receipt["request_id"], format!("r-{n}"));
        let position = receipt["events"][0]["position"].as_i64().unwrap();
        assert!(position > last_position);
        last_position = position;
    }
}

#[tokio::test]
async fn consistency_reports_each_keys_value() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut raw = Raw::connect(&bus).await;
    for _ in 0..5 {
        raw.publish("A", "acc-7", json!("*"), json!({})).await;
    }
    raw.send(
        json!({"message_type": "consistency", "request_id": "c-1", "keys": ["acc-7", "acc-9"]}),
    )
    .await;
    assert_eq!(
        raw.recv().await,
        json!({"message_type": "consistency", "request_id": "c-1", "values": {"acc-7": 4, "acc-9": null}})
    );
}

async fn collect_query(raw: &mut Raw, request_id: &str) -> (Vec<Value>, Vec<usize>, Value) {
    let mut events = Vec::new();
    let mut batches = Vec::new();
    loop {
        let frame = raw.recv().await;
        assert_eq!(frame["request_id"], request_id, "{frame}");
        match frame["message_type"].as_str() {
            Some("rebuild") => {
                let batch = frame["events"].as_array().unwrap();
                batches.push(batch.len());
                events.extend(batch.iter().cloned());
            }
            Some("rebuild_complete") => return (events, batches, frame),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_5000_event_query_is_streamed_in_batches_of_at_most_1000() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut raw = Raw::connect(&bus).await;
    for batch in 0..10 {
        let events: Vec<Value> = (0..500)
            .map(|i| json!({"event_type": if i % 2 == 0 { "Even" } else { "Odd" },
                            "consistency": {"key": format!("k-{}", i % 10)}, "data": {"n": batch * 500 + i}}))
            .collect();
        raw.send(
            json!({"message_type": "new", "request_id": format!("b-{batch}"), "events": events}),
        )
        .await;
        assert_eq!(raw.recv().await["status"], "success");
    }

    raw.send(
        json!({"message_type": "query", "request_id": "all", "event_types": ["*"], "since": "*"}),
    )
    .await;
    let (events, batches, complete) = collect_query(&mut raw, "all").await;
    assert_eq!(events.len(), 5000);
    assert!(batches.iter().all(|&size| size <= 1000), "{batches:?}");
    assert!(batches.len() >= 5);
    assert_eq!(complete["count"], 5000);
    assert_eq!(complete["last_position"], 5000);
    let positions: Vec<i64> = events
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "position order");
    assert_eq!(events[0]["data"], json!({"n": 0}));
    assert!(events[0].get("delivery").is_none());

    raw.send(json!({"message_type": "query", "request_id": "odd", "event_types": ["Odd"], "after_position": 4000})).await;
    let (odd, _, complete) = collect_query(&mut raw, "odd").await;
    assert_eq!(odd.len(), 500);
    assert!(
        odd.iter()
            .all(|e| e["event_type"] == "Odd" && e["position"].as_i64().unwrap() > 4000)
    );
    assert_eq!(complete["count"], 500);

    raw.send(json!({"message_type": "query", "request_id": "key", "event_types": ["*"], "after_position": 0, "key": "k-3", "limit": 7})).await;
    let (keyed, _, complete) = collect_query(&mut raw, "key").await;
    assert_eq!(keyed.len(), 7);
    assert!(keyed.iter().all(|e| e["consistency"]["key"] == "k-3"));
    assert_eq!(
        complete["last_position"], keyed[6]["position"],
        "a limit cuts the answer there: the next page starts after it"
    );
    raw.send(
        json!({"message_type": "query", "request_id": "key-2", "event_types": ["Odd"],
                    "after_position": complete["last_position"], "key": "k-3"}),
    )
    .await;
    let (rest, _, complete) = collect_query(&mut raw, "key-2").await;
    assert_eq!(
        rest.len(),
        500 - 7,
        "the rest of the key's events, read by key"
    );
    assert!(
        rest.iter()
            .all(|e| e["consistency"]["key"] == "k-3" && e["event_type"] == "Odd")
    );
    assert!(rest[0]["position"].as_i64() > keyed[6]["position"].as_i64());
    let values: Vec<i64> = rest
        .iter()
        .map(|e| e["consistency"]["value"].as_i64().unwrap())
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] + 1 == w[1]),
        "in value order"
    );
    assert_eq!(complete["last_position"], 5000);

    raw.send(json!({"message_type": "query", "request_id": "future", "event_types": ["*"], "since": "2999-01-01T00:00:00Z"})).await;
    let (none, batches, complete) = collect_query(&mut raw, "future").await;
    assert!(none.is_empty() && batches.is_empty());
    assert_eq!(complete["count"], 0);
}

#[tokio::test]
async fn query_since_a_time_starts_at_the_first_event_stored_then() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut raw = Raw::connect(&bus).await;
    raw.publish("A", "k", json!("*"), json!(1)).await;
    let second = raw.publish("A", "k", json!("*"), json!(2)).await;
    raw.publish("A", "k", json!("*"), json!(3)).await;
    let since = second["events"][0]["timestamp"].as_str().unwrap();
    raw.send(
        json!({"message_type": "query", "request_id": "q", "event_types": ["A"], "since": since}),
    )
    .await;
    let (events, _, _) = collect_query(&mut raw, "q").await;
    let data: Vec<&Value> = events.iter().map(|e| &e["data"]).collect();
    assert_eq!(data, [&json!(2), &json!(3)]);
}

#[tokio::test]
async fn bad_messages_get_precise_errors_and_the_socket_stays_open() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut raw = Raw::connect(&bus).await;
    let cases = [
        ("{oops".to_owned(), "bad_json", None),
        (
            json!({"message_type": "subscribe", "request_id": "s-1"}).to_string(),
            "unknown_message_type",
            Some("s-1"),
        ),
        (
            json!({"message_type": "new", "request_id": "r-18", "events": [
            {"event_type": "A", "consistency": {"key": "k", "value": -1}, "data": {}}]})
            .to_string(),
            "invalid_field",
            Some("r-18"),
        ),
        (
            json!({"message_type": "ack", "positions": [1]}).to_string(),
            "not_registered",
            None,
        ),
        (
            json!({"message_type": "nack", "position": 1}).to_string(),
            "not_registered",
            None,
        ),
        (
            json!({"message_type": "new", "request_id": "big", "events": vec![
            json!({"event_type": "A", "consistency": {"key": "k"}, "data": 0}); 1001]})
            .to_string(),
            "too_many_events",
            Some("big"),
        ),
    ];
    for (frame, code, request_id) in cases {
        raw.send_text(frame.clone()).await;
        let error = raw.recv().await;
        assert_eq!(error["message_type"], "error", "{frame}");
        assert_eq!(error["code"], code, "{frame}: {error}");
        assert_eq!(error["request_id"].as_str(), request_id, "{frame}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let error_message = {
        raw.send(
            json!({"message_type": "new", "request_id": "r-18", "events": [
            {"event_type": "A", "consistency": {"key": "k", "value": -1}, "data": {}}]}),
        )
        .await;
        raw.recv().await["message"].as_str().unwrap().to_owned()
    };
    assert!(
        error_message.starts_with("events[0].consistency.value:"),
        "{error_message}"
    );
    // Still open, and nothing was stored.
    raw.send(json!({"message_type": "consistency", "request_id": "c", "keys": ["k"]}))
        .await;
    assert_eq!(raw.recv().await["values"]["k"], Value::Null);
}

#[tokio::test]
async fn a_frame_over_the_limit_closes_the_socket_with_1009() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &["--max-frame-bytes", "65536"]);
    let mut raw = Raw::connect(&bus).await;
    let big = "x".repeat(70_000);
    raw.send(
        json!({"message_type": "new", "request_id": "huge", "events": [
        {"event_type": "A", "consistency": {"key": "k"}, "data": big}]}),
    )
    .await;
    match raw.next_message().await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Size),
        other => panic!("expected a close with 1009, got {other:?}"),
    }
}

#[tokio::test]
async fn a_token_is_required_when_configured() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &["--token", "s3cret-token"]);
    let refused = Raw::connect_with_token(&bus, None)
        .await
        .err()
        .expect("refused without a token");
    assert!(refused.to_string().contains("401"), "{refused}");
    assert!(Raw::connect_with_token(&bus, Some("wrong")).await.is_err());
    let mut raw = Raw::connect_with_token(&bus, Some("s3cret-token"))
        .await
        .expect("accepted with it");
    raw.register("web", &["*"], "observe").await;
    assert_eq!(http(&bus, "GET", "/subscriptions", None).await.0, 401);
    assert_eq!(
        http(&bus, "GET", "/subscriptions", Some("s3cret-token"))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn health_and_metrics() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut raw = Raw::connect(&bus).await;
    raw.publish("A", "k", json!("*"), json!({})).await;
    assert_eq!(
        http(&bus, "GET", "/health", None).await,
        (200, "ok\n".to_owned())
    );
    let (status, metrics) = http(&bus, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(metrics.contains("bus_events_appended_total 1"), "{metrics}");
    assert!(metrics.contains("bus_head_position 1"), "{metrics}");
}

#[tokio::test]
async fn a_connection_runs_at_most_four_queries_at_once() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let mut raw = Raw::connect(&bus).await;
    for batch in 0..5 {
        let events: Vec<Value> = (0..1000)
            .map(|i| json!({"event_type": "E", "consistency": {"key": format!("k-{i}")}, "data": {"pad": "x".repeat(200)}}))
            .collect();
        raw.send(
            json!({"message_type": "new", "request_id": format!("b-{batch}"), "events": events}),
        )
        .await;
        assert_eq!(raw.recv().await["status"], "success");
    }
    // Five at once, nothing read meanwhile: the first four are still
    // streaming their 5,000 events when the fifth arrives.
    for query in 0..5 {
        raw.send(
            json!({"message_type": "query", "request_id": format!("q-{query}"),
                        "event_types": ["*"], "after_position": 0}),
        )
        .await;
    }
    let mut complete = 0;
    let mut refused = None;
    while complete < 4 || refused.is_none() {
        let frame = raw.recv().await;
        match frame["message_type"].as_str() {
            Some("rebuild") => {}
            Some("rebuild_complete") => {
                assert_eq!(frame["count"], 5000, "{frame}");
                complete += 1;
            }
            Some("error") => refused = Some(frame),
            other => panic!("unexpected {other:?}"),
        }
    }
    let refused = refused.unwrap();
    assert_eq!(
        (refused["code"].as_str(), refused["request_id"].as_str()),
        (Some("too_many_queries"), Some("q-4")),
        "{refused}"
    );
    // With the others done, a query is taken again.
    raw.send(
        json!({"message_type": "query", "request_id": "again", "event_types": ["*"],
                    "after_position": 4990}),
    )
    .await;
    let (events, _, _) = collect_query(&mut raw, "again").await;
    assert_eq!(events.len(), 10);
}
