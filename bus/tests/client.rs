//! The Rust client library against the real bus.

mod common;

use std::time::Duration;

use bus::{
    client::{BusClient, ClientConfig, ClientError, Publish, QueryFrom, QueryItem, QuerySpec},
    protocol::{ConsistencyValue, ErrorCode, Mode, ReceiptStatus},
};
use common::{ADMIN_TOKEN, BusProcess, PATIENCE, TestDb};
use serde_json::json;

fn event(event_type: &str, key: &str, value: ConsistencyValue, n: i64) -> Publish {
    Publish::new(event_type, key, value, &json!({"n": n})).expect("serialisable")
}

#[tokio::test]
async fn publish_consume_ack_query_and_consistency() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &["--token", "secret"]);
    let refused = BusClient::connect(ClientConfig::new(bus.url())).await.err();
    assert!(
        matches!(refused, Some(ClientError::Connect(_))),
        "no token, no connection"
    );

    let config = ClientConfig::new(bus.url()).token("secret");
    let (consumer, mut events) =
        BusClient::connect(config.clone().register("accounts", &["A"], Mode::Consume))
            .await
            .expect("connect and register");
    let (publisher, _) = BusClient::connect(config.clone()).await.expect("connect");

    let correlation = uuid::Uuid::now_v7();
    let receipt = publisher
        .publish(vec![
            event("A", "acc-1", ConsistencyValue::Explicit(0), 1).correlation(correlation),
            event("B", "acc-1", ConsistencyValue::Explicit(1), 2).correlation(correlation),
        ])
        .await
        .expect("a receipt");
    assert_eq!(receipt.status, ReceiptStatus::Success);
    assert_eq!(receipt.events.len(), 2);

    let stale = publisher
        .publish(vec![event("A", "acc-1", ConsistencyValue::Explicit(1), 3)])
        .await
        .expect("a receipt");
    assert_eq!(stale.status, ReceiptStatus::Inconsistent);
    assert_eq!(stale.events[0].current, Some(Some(1)));

    let delivered = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("in time")
        .expect("an event");
    assert_eq!(delivered.event.event_type, "A");
    assert_eq!(delivered.event.correlation_id, correlation);
    assert_eq!(delivered.delivery, 1);
    consumer.ack(vec![delivered.event.position]).expect("ack");

    let values = publisher
        .consistency(vec!["acc-1".into(), "acc-2".into()])
        .await
        .expect("values");
    assert_eq!(values["acc-1"], Some(1));
    assert_eq!(values["acc-2"], None);

    let mut answer = publisher
        .query(QuerySpec {
            event_types: vec!["*".into()],
            start: QueryFrom::Since("*".into()),
            key: Some("acc-1".into()),
            limit: None,
        })
        .expect("query");
    let mut seen = Vec::new();
    loop {
        match answer
            .next()
            .await
            .expect("the answer goes on")
            .expect("no error")
        {
            QueryItem::Batch(batch) => seen.extend(batch.into_iter().map(|e| e.event_type)),
            QueryItem::Complete {
                count,
                last_position,
            } => {
                assert_eq!(count, 2);
                assert_eq!(last_position, 2);
                break;
            }
        }
    }
    assert_eq!(seen, ["A", "B"]);

    let refused = publisher
        .query(QuerySpec {
            event_types: vec![],
            start: QueryFrom::AfterPosition(0),
            key: None,
            limit: None,
        })
        .expect("query")
        .next()
        .await
        .expect("an answer");
    assert!(
        matches!(
            refused,
            Err(ClientError::Refused {
                code: ErrorCode::InvalidField,
                ..
            })
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn after_a_kill_9_the_client_reconnects_registers_again_and_resends() {
    let db = TestDb::new().await;
    let mut bus = BusProcess::start(&db, &[]);
    let config = ClientConfig::new(bus.url()).token(ADMIN_TOKEN);
    let (consumer, mut events) =
        BusClient::connect(config.clone().register("accounts", &["A"], Mode::Consume))
            .await
            .expect("connect");
    let (publisher, _) = BusClient::connect(config).await.expect("connect");
    let first = publisher
        .publish(vec![event("A", "acc-1", ConsistencyValue::Implicit, 1)])
        .await
        .expect("receipt");
    assert_eq!(first.status, ReceiptStatus::Success);
    let delivered = tokio::time::timeout(PATIENCE, events.next())
        .await
        .unwrap()
        .unwrap();

    bus.kill9();
    // Sent while the bus is down: it waits, and goes when the bus is back.
    let pending = tokio::spawn({
        let publisher = publisher.clone();
        async move {
            publisher
                .publish(vec![event("A", "acc-1", ConsistencyValue::Explicit(1), 2)])
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!pending.is_finished(), "no receipt while the bus is down");
    bus.restart();

    let receipt = tokio::time::timeout(PATIENCE, pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(receipt.status, ReceiptStatus::Success);
    assert_eq!(
        publisher.head_position().await.unwrap(),
        0,
        "the publisher did not register"
    );

    // The unacknowledged event comes again to the re-registered consumer.
    let again = tokio::time::timeout(PATIENCE, events.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.event.position, delivered.event.position);
    consumer.ack(vec![again.event.position]).unwrap();
    let next = tokio::time::timeout(PATIENCE, events.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.event.position, 2);
}

/// The protocol lets a connection have 4 queries and 16 consistency
/// requests open; the client holds the rest back and sends them as answers
/// come, so that callers sharing one client are never refused for it.
#[tokio::test]
async fn requests_beyond_a_connections_limits_wait_their_turn() {
    let db = TestDb::new().await;
    let bus = BusProcess::start(&db, &[]);
    let (client, _) = BusClient::connect(ClientConfig::new(bus.url()).token(ADMIN_TOKEN))
        .await
        .expect("connect");
    let events: Vec<Publish> = (0..3000)
        .map(|n| {
            event(
                "A",
                &format!("acc-{}", n % 30),
                ConsistencyValue::Implicit,
                n,
            )
        })
        .collect();
    for chunk in events.chunks(1000) {
        let receipt = client.publish(chunk.to_vec()).await.expect("receipt");
        assert_eq!(receipt.status, ReceiptStatus::Success);
    }

    let lookups = (0..60).map(|n| {
        let client = client.clone();
        tokio::spawn(async move { client.consistency(vec![format!("acc-{}", n % 30)]).await })
    });
    let queries = (0..12).map(|_| {
        let client = client.clone();
        tokio::spawn(async move {
            let mut answer = client.query(QuerySpec {
                event_types: vec!["*".into()],
                start: QueryFrom::AfterPosition(0),
                key: None,
                limit: None,
            })?;
            let mut events = 0;
            loop {
                match answer.next().await.ok_or(ClientError::Closed)?? {
                    QueryItem::Batch(batch) => events += batch.len() as u64,
                    QueryItem::Complete { count, .. } => {
                        assert_eq!(count, events);
                        return Ok::<_, ClientError>(count);
                    }
                }
            }
        })
    });
    let lookups: Vec<_> = lookups.collect();
    let queries: Vec<_> = queries.collect();
    for lookup in lookups {
        let values = lookup.await.expect("task").expect("no refusal");
        assert_eq!(values.values().next(), Some(&Some(99)));
    }
    for query in queries {
        assert_eq!(query.await.expect("task").expect("no refusal"), 3000);
    }
}
