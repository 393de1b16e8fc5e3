//! P5: a log with millions of distinct keys. The bus must start without
//! reading them all, keep its memory bounded, and append at P1's speed,
//! also to keys it has to look up in the log's index.

use std::time::Instant;

use anyhow::ensure;
use bus::{
    client::{BusClient, Publish},
    protocol::{ConsistencyValue, ReceiptStatus},
};
use futures_util::{StreamExt, stream::FuturesUnordered};
use sqlx::{Connection, PgConnection};

use crate::{BusUnderTest, Options, bus_load, stats};

pub struct ManyKeys {
    pub keys: usize,
    pub fill_secs: f64,
    pub start_secs: f64,
    pub appends: bus_load::Throughput,
    /// Appends to keys taken at random from the log: each a cache miss.
    pub old_keys_rate: f64,
    pub bus_peak_mib: f64,
}

/// Events at once in one fill statement.
const FILL_STEP: usize = 1_000_000;
/// Appends to keys of the big log (each looked up in the index).
const OLD_KEY_APPENDS: usize = 100_000;

pub async fn run(database_url: &str, options: &Options) -> anyhow::Result<ManyKeys> {
    let keys = options.p5_keys;
    let mut db = PgConnection::connect(database_url).await?;
    let started = Instant::now();
    let mut filled = 0;
    while filled < keys {
        let step = FILL_STEP.min(keys - filled);
        // One event for each new key `big-N`, value 0, after the head.
        sqlx::query(
            "INSERT INTO bus.events (position, event_id, event_type, consistency_key,
                                     consistency_value, correlation_id, causation_id, recorded_at, data)
             SELECT h.head + g, gen_random_uuid(), 'Big', 'big-' || ($1 + g), 0, gen_random_uuid(),
                    NULL, now(), '{}'
               FROM (SELECT coalesce(max(position), 0) AS head FROM bus.events) h,
                    generate_series(1, $2::bigint) AS g",
        )
        .bind(filled as i64)
        .bind(step as i64)
        .execute(&mut db)
        .await?;
        filled += step;
        println!(
            "      {filled} keys in the log ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }
    // As a long-lived log would be: vacuumed, its statistics current, its
    // pages written out (else autovacuum and the checkpoint of the fill
    // would compete with the measured run).
    sqlx::query("VACUUM (ANALYZE) bus.events")
        .execute(&mut db)
        .await?;
    sqlx::query("CHECKPOINT").execute(&mut db).await?;
    let fill_secs = started.elapsed().as_secs_f64();

    let starting = Instant::now();
    let bus = BusUnderTest::start(database_url)?;
    let start_secs = starting.elapsed().as_secs_f64();
    stats::reset_peak_rss(bus.pid());
    let appends = bus_load::appends(&bus.url, 64, options, "p5").await?;
    let old_keys_rate = append_to_old_keys(&bus.url, keys).await?;
    Ok(ManyKeys {
        keys,
        fill_secs,
        start_secs,
        appends,
        old_keys_rate,
        bus_peak_mib: stats::peak_rss_mib(bus.pid()),
    })
}

/// Appends value 1 to keys of the big log, spread over all of it, from 64
/// publishers with 16 messages in flight each.
async fn append_to_old_keys(url: &str, keys: usize) -> anyhow::Result<f64> {
    let publishers = 64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for publisher in 0..publishers {
        let (client, _) = BusClient::connect(crate::client_config(url)).await?;
        tasks.push(tokio::spawn(async move {
            let mut in_flight = FuturesUnordered::new();
            for n in (publisher..OLD_KEY_APPENDS).step_by(publishers) {
                if in_flight.len() >= 16 {
                    in_flight.next().await.expect("in flight")?;
                }
                // A spread of distinct keys over the whole log (a stride
                // coprime with its size visits each at most once).
                let key = format!("big-{}", (n * 7_919) % keys + 1);
                let event = Publish::new(
                    "Big",
                    key,
                    ConsistencyValue::Explicit(1),
                    &serde_json::json!({"n": n}),
                )?;
                let client = client.clone();
                in_flight.push(async move {
                    let receipt = client.publish(vec![event]).await?;
                    ensure!(
                        receipt.status == ReceiptStatus::Success,
                        "an append to an old key was {:?}",
                        receipt.status
                    );
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
    Ok(OLD_KEY_APPENDS as f64 / started.elapsed().as_secs_f64())
}
