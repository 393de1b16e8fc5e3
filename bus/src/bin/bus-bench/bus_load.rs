//! The bus's side of the benchmark, through the client library.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use bus::{
    client::{BusClient, Publish, QueryFrom, QueryItem, QuerySpec},
    protocol::{ConsistencyValue, Mode, ReceiptStatus},
};
use futures_util::{StreamExt, stream::FuturesUnordered};
use serde_json::value::RawValue;

use crate::{BusUnderTest, KEYS, Options, PAYLOAD_BYTES, stats};

pub struct Throughput {
    pub rate: f64,
    pub latency: String,
}

/// A JSON payload of exactly [`PAYLOAD_BYTES`] bytes.
pub fn payload(sent_at_micros: u64) -> Box<RawValue> {
    let head = format!("{{\"sent\":{sent_at_micros},\"pad\":\"");
    let pad = "x".repeat(PAYLOAD_BYTES - head.len() - 2);
    RawValue::from_string(format!("{head}{pad}\"}}")).expect("valid JSON")
}

fn event(event_type: &str, key: String, value: ConsistencyValue, data: Box<RawValue>) -> Publish {
    Publish {
        event_type: event_type.to_owned(),
        key,
        value,
        data,
        event_id: None,
        correlation_id: None,
        causation_id: None,
    }
}

/// P1: `publishers` connections, each with `window` messages in flight, on
/// keys of their own (named after `prefix`, new to the log) with explicit
/// values.
pub async fn appends(
    url: &str,
    publishers: usize,
    options: &Options,
    prefix: &str,
) -> anyhow::Result<Throughput> {
    let batch = options.batch.max(1);
    let messages = options.p1_events / publishers / batch;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for publisher in 0..publishers {
        let (client, _) = BusClient::connect(crate::client_config(url)).await?;
        let window = options.window;
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            // Keys of its own: it always knows their values. Messages are
            // sent in order, so a key may be in flight more than once.
            let keys: Vec<usize> = (0..KEYS).filter(|k| k % publishers == publisher).collect();
            let mut values = vec![0i64; keys.len()];
            let mut histogram = stats::histogram();
            let mut in_flight = FuturesUnordered::new();
            for n in 0..messages {
                if in_flight.len() >= window {
                    let (latency, status) = in_flight.next().await.expect("in flight")?;
                    ensure!(
                        status == ReceiptStatus::Success,
                        "a P1 append was {status:?}"
                    );
                    stats::record(&mut histogram, latency);
                }
                let events: Vec<Publish> = (0..batch)
                    .map(|i| {
                        let slot = (n * batch + i) % keys.len();
                        let value = ConsistencyValue::Explicit(values[slot]);
                        values[slot] += 1;
                        event(
                            "P1",
                            format!("{prefix}-{publishers}-{}", keys[slot]),
                            value,
                            payload(0),
                        )
                    })
                    .collect();
                let client = client.clone();
                in_flight.push(async move {
                    let sent = Instant::now();
                    let receipt = client.publish(events).await?;
                    anyhow::Ok((sent.elapsed(), receipt.status))
                });
            }
            while let Some(done) = in_flight.next().await {
                let (latency, status) = done?;
                ensure!(
                    status == ReceiptStatus::Success,
                    "a P1 append was {status:?}"
                );
                stats::record(&mut histogram, latency);
            }
            client.close();
            anyhow::Ok(histogram)
        }));
    }
    let mut latency = stats::histogram();
    for task in tasks {
        latency.add(task.await??)?;
    }
    let elapsed = started.elapsed();
    Ok(Throughput {
        rate: (messages * batch * publishers) as f64 / elapsed.as_secs_f64(),
        latency: stats::percentiles(&latency),
    })
}

pub struct Latencies {
    pub receipt: String,
    pub delivery: String,
}

/// P2: 2,000 events/s offered (open loop), one consuming instance acking.
pub async fn latency(url: &str, options: &Options) -> anyhow::Result<Latencies> {
    let epoch = Instant::now();
    let total = 2000 * options.p2_seconds as usize;
    let (consumer, mut events) =
        BusClient::connect(crate::client_config(url).register("bench-p2", &["P2"], Mode::Consume))
            .await?;
    let (publisher, _) = BusClient::connect(crate::client_config(url)).await?;

    let receiving = tokio::spawn(async move {
        let mut histogram = stats::histogram();
        while histogram.len() < total as u64 {
            let first = events.next().await.context("the event stream ended")?;
            let mut batch = vec![first];
            batch.extend(events.drain());
            let now = epoch.elapsed();
            for delivered in &batch {
                let sent: serde_json::Value = serde_json::from_str(delivered.event.data.get())?;
                let sent = Duration::from_micros(sent["sent"].as_u64().unwrap_or(0));
                stats::record(&mut histogram, now.saturating_sub(sent));
            }
            consumer.ack(batch.iter().map(|d| d.event.position).collect())?;
        }
        anyhow::Ok(histogram)
    });

    let receipts = Arc::new(Mutex::new(stats::histogram()));
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    let mut sending = Vec::with_capacity(total);
    for n in 0..total {
        if n % 2 == 0 {
            ticker.tick().await;
        }
        let publisher = publisher.clone();
        let receipts = receipts.clone();
        sending.push(tokio::spawn(async move {
            let sent = Instant::now();
            let data = payload(u64::try_from(epoch.elapsed().as_micros()).unwrap_or(0));
            let receipt = publisher
                .publish(vec![event(
                    "P2",
                    format!("p2-{}", n % KEYS),
                    ConsistencyValue::Implicit,
                    data,
                )])
                .await?;
            ensure!(
                receipt.status == ReceiptStatus::Success,
                "a P2 append was {:?}",
                receipt.status
            );
            stats::record(&mut receipts.lock().expect("not poisoned"), sent.elapsed());
            anyhow::Ok(())
        }));
    }
    for task in sending {
        task.await??;
    }
    let delivery = tokio::time::timeout(Duration::from_secs(60), receiving)
        .await
        .context("not every P2 event was delivered within a minute")???;
    let receipt = stats::percentiles(&receipts.lock().expect("not poisoned"));
    Ok(Latencies {
        receipt,
        delivery: stats::percentiles(&delivery),
    })
}

pub struct Consumed {
    pub rate: f64,
    pub order_violations: u64,
}

/// P3: events waiting for a client type are delivered to `instances`
/// instances, which ack them; per-key order is checked across instances.
pub async fn consume(url: &str, instances: usize, options: &Options) -> anyhow::Result<Consumed> {
    let client_type = format!("bench-p3-{instances}");
    let event_type = format!("P3x{instances}");
    // The subscription exists from its first registration; then the backlog.
    let (first, _) = BusClient::connect(crate::client_config(url).register(
        &client_type,
        &[&event_type],
        Mode::Consume,
    ))
    .await?;
    first.close();
    fill(
        url,
        &event_type,
        options.p3_events,
        ConsistencyValue::Implicit,
    )
    .await?;

    let last_seen: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    let share = options.p3_events;
    let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..instances {
        let (client, mut events) = BusClient::connect(crate::client_config(url).register(
            &client_type,
            &[&event_type],
            Mode::Consume,
        ))
        .await?;
        let last_seen = last_seen.clone();
        let received = received.clone();
        tasks.push(tokio::spawn(async move {
            let mut violations = 0u64;
            while received.load(std::sync::atomic::Ordering::Relaxed) < share {
                let Ok(Some(first)) =
                    tokio::time::timeout(Duration::from_millis(200), events.next()).await
                else {
                    continue;
                };
                let mut batch = vec![first];
                batch.extend(events.drain());
                {
                    let mut last_seen = last_seen.lock().expect("not poisoned");
                    for delivered in &batch {
                        let previous = last_seen.insert(
                            delivered.event.consistency.key.clone(),
                            delivered.event.position,
                        );
                        if previous.is_some_and(|previous| previous >= delivered.event.position)
                            && delivered.delivery == 1
                        {
                            violations += 1;
                        }
                    }
                }
                received.fetch_add(
                    batch.iter().filter(|d| d.delivery == 1).count(),
                    std::sync::atomic::Ordering::Relaxed,
                );
                client.ack(batch.iter().map(|d| d.event.position).collect())?;
            }
            client.close();
            anyhow::Ok(violations)
        }));
    }
    let mut order_violations = 0;
    for task in tasks {
        order_violations += task.await??;
    }
    Ok(Consumed {
        rate: options.p3_events as f64 / started.elapsed().as_secs_f64(),
        order_violations,
    })
}

/// Publishes `count` events quickly (8 connections, 16 in flight each).
async fn fill(
    url: &str,
    event_type: &str,
    count: usize,
    value: ConsistencyValue,
) -> anyhow::Result<()> {
    let publishers = 8;
    let mut tasks = Vec::new();
    for publisher in 0..publishers {
        let (client, _) = BusClient::connect(crate::client_config(url)).await?;
        let event_type = event_type.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut in_flight = FuturesUnordered::new();
            for n in (publisher..count).step_by(publishers) {
                if in_flight.len() >= 16 {
                    in_flight.next().await.expect("in flight")?;
                }
                let client = client.clone();
                let key = format!("{event_type}-{}", n % KEYS);
                let event_type = event_type.clone();
                in_flight.push(async move {
                    let receipt = client
                        .publish(vec![event(&event_type, key, value, payload(0))])
                        .await?;
                    if receipt.status != ReceiptStatus::Success {
                        bail!("a fill append was {:?}", receipt.status);
                    }
                    anyhow::Ok(())
                });
            }
            while let Some(done) = in_flight.next().await {
                done?;
            }
            client.close();
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

pub struct Rebuilt {
    pub rate: f64,
    pub bus_peak_mib: f64,
    pub client_peak_mib: f64,
}

/// P4: a fresh bus process streams the first `p4_events` events of the log
/// to one client; both processes' peak memory is measured during it.
pub async fn rebuild(database_url: &str, options: &Options) -> anyhow::Result<Rebuilt> {
    let bus = BusUnderTest::start(database_url)?;
    let (client, _) = BusClient::connect(crate::client_config(&bus.url)).await?;
    let stored = count_events(&client).await?;
    if stored < options.p4_events as u64 {
        fill(
            &bus.url,
            "P4",
            options.p4_events - stored as usize,
            ConsistencyValue::Implicit,
        )
        .await?;
    }
    drop(client);
    drop(bus);

    let bus = BusUnderTest::start(database_url)?;
    let (client, _) = BusClient::connect(crate::client_config(&bus.url)).await?;
    let me = std::process::id();
    stats::reset_peak_rss(bus.pid());
    stats::reset_peak_rss(me);
    let started = Instant::now();
    let mut answer = client.query(QuerySpec {
        event_types: vec!["*".into()],
        start: QueryFrom::Since("*".into()),
        key: None,
        limit: Some(options.p4_events as i64),
    })?;
    let mut count = 0u64;
    let mut last = 0;
    loop {
        match answer.next().await.context("the rebuild ended early")?? {
            QueryItem::Batch(events) => {
                for event in &events {
                    ensure!(event.position > last, "rebuild out of order");
                    last = event.position;
                }
                count += events.len() as u64;
            }
            QueryItem::Complete {
                count: reported, ..
            } => {
                ensure!(
                    reported == count,
                    "rebuild_complete says {reported}, got {count}"
                );
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    ensure!(
        count == options.p4_events as u64,
        "rebuilt {count} events, wanted {}",
        options.p4_events
    );
    Ok(Rebuilt {
        rate: count as f64 / elapsed.as_secs_f64(),
        bus_peak_mib: stats::peak_rss_mib(bus.pid()),
        client_peak_mib: stats::peak_rss_mib(me),
    })
}

async fn count_events(client: &BusClient) -> anyhow::Result<u64> {
    let mut answer = client.query(QuerySpec {
        event_types: vec!["*".into()],
        start: QueryFrom::AfterPosition(0),
        key: None,
        limit: Some(1),
    })?;
    // The head when the query started is the number of events stored.
    loop {
        if let QueryItem::Complete { last_position, .. } =
            answer.next().await.context("no answer")??
        {
            return Ok(u64::try_from(last_position).unwrap_or(0));
        }
    }
}
