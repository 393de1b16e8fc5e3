//! The same P1/P2 work against NATS JetStream: a file-storage stream, one
//! subject per key, and `Nats-Expected-Last-Subject-Sequence` as the
//! explicit consistency value. JetStream acknowledges a publish once the
//! message is written, without an fsync of its own (its file store syncs
//! every two minutes by default), where the bus answers after Postgres has
//! fsynced the commit.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use async_nats::{
    HeaderMap,
    jetstream::{self, consumer::pull, stream},
};
use futures_util::{StreamExt, stream::FuturesUnordered};

use crate::{
    KEYS, Options,
    bus_load::{Latencies, Throughput, payload},
    stats,
};

pub async fn server_version(url: &str) -> anyhow::Result<String> {
    let client = async_nats::connect(url)
        .await
        .context("could not reach NATS")?;
    Ok(client.server_info().version)
}

async fn fresh_stream(context: &jetstream::Context, name: &str) -> anyhow::Result<()> {
    let _ = context.delete_stream(name).await;
    context
        .create_stream(stream::Config {
            name: name.to_owned(),
            subjects: vec![format!("{name}.>")],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("could not create the stream {name}: {e}"))?;
    Ok(())
}

/// P1 on JetStream: each publisher owns its keys and sends the sequence it
/// last got for a key as the expected last sequence of the key's subject.
pub async fn appends(
    url: &str,
    publishers: usize,
    options: &Options,
) -> anyhow::Result<Throughput> {
    let name = format!("BENCH_P1_{publishers}");
    let client = async_nats::connect(url).await?;
    let context = jetstream::new(client);
    fresh_stream(&context, &name).await?;
    let per_publisher = options.p1_events / publishers;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for publisher in 0..publishers {
        let context = jetstream::new(async_nats::connect(url).await?);
        let name = name.clone();
        let window = options.window;
        tasks.push(tokio::spawn(async move {
            let keys: Vec<usize> = (0..KEYS).filter(|k| k % publishers == publisher).collect();
            let mut last_sequence = vec![0u64; keys.len()];
            let mut histogram = stats::histogram();
            let mut in_flight = FuturesUnordered::new();
            for n in 0..per_publisher {
                if in_flight.len() >= window {
                    let (slot, sequence, latency) = in_flight.next().await.expect("in flight")?;
                    last_sequence[slot] = sequence;
                    stats::record(&mut histogram, latency);
                }
                let slot = n % keys.len();
                let mut headers = HeaderMap::new();
                headers.insert(
                    "Nats-Expected-Last-Subject-Sequence",
                    last_sequence[slot].to_string().as_str(),
                );
                let subject = format!("{name}.k{}", keys[slot]);
                let context = context.clone();
                in_flight.push(async move {
                    let sent = Instant::now();
                    let ack = context
                        .publish_with_headers(subject, headers, payload(0).get().to_owned().into())
                        .await
                        .map_err(|e| anyhow::anyhow!("publish: {e}"))?
                        .await
                        .map_err(|e| anyhow::anyhow!("the conditional publish failed: {e}"))?;
                    anyhow::Ok((slot, ack.sequence, sent.elapsed()))
                });
            }
            while let Some(done) = in_flight.next().await {
                let (slot, sequence, latency) = done?;
                last_sequence[slot] = sequence;
                stats::record(&mut histogram, latency);
            }
            anyhow::Ok(histogram)
        }));
    }
    let mut latency = stats::histogram();
    for task in tasks {
        latency.add(task.await??)?;
    }
    let elapsed = started.elapsed();
    let _ = context.delete_stream(&name).await;
    Ok(Throughput {
        rate: (per_publisher * publishers) as f64 / elapsed.as_secs_f64(),
        latency: stats::percentiles(&latency),
    })
}

/// P2 on JetStream: 2,000 events/s offered; a durable pull consumer acks.
pub async fn latency(url: &str, options: &Options) -> anyhow::Result<Latencies> {
    let name = "BENCH_P2";
    let epoch = Instant::now();
    let total = 2000 * options.p2_seconds as usize;
    let context = jetstream::new(async_nats::connect(url).await?);
    fresh_stream(&context, name).await?;
    let stream = context
        .get_stream(name)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("bench".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let receiving = tokio::spawn(async move {
        let mut histogram = stats::histogram();
        while histogram.len() < total as u64 {
            let message = messages
                .next()
                .await
                .context("the consumer ended")?
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let now = epoch.elapsed();
            let sent: serde_json::Value = serde_json::from_slice(&message.payload)?;
            let sent = Duration::from_micros(sent["sent"].as_u64().unwrap_or(0));
            stats::record(&mut histogram, now.saturating_sub(sent));
            message.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        anyhow::Ok(histogram)
    });

    let acks = Arc::new(Mutex::new(stats::histogram()));
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    let mut sending = Vec::with_capacity(total);
    for n in 0..total {
        if n % 2 == 0 {
            ticker.tick().await;
        }
        let context = context.clone();
        let acks = acks.clone();
        sending.push(tokio::spawn(async move {
            let sent = Instant::now();
            let data = payload(u64::try_from(epoch.elapsed().as_micros()).unwrap_or(0));
            let ack = context
                .publish(
                    format!("{name}.k{}", n % KEYS),
                    data.get().to_owned().into(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .await;
            ensure!(ack.is_ok(), "a P2 publish failed");
            stats::record(&mut acks.lock().expect("not poisoned"), sent.elapsed());
            anyhow::Ok(())
        }));
    }
    for task in sending {
        task.await??;
    }
    let delivery = tokio::time::timeout(Duration::from_secs(60), receiving)
        .await
        .context("not every message was delivered within a minute")???;
    let _ = context.delete_stream(name).await;
    let receipt = stats::percentiles(&acks.lock().expect("not poisoned"));
    Ok(Latencies {
        receipt,
        delivery: stats::percentiles(&delivery),
    })
}
