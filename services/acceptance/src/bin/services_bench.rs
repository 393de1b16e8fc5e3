//! `services-bench`: how fast the banking services decide and apply a
//! burst of transfers, how many commits that takes, and how fast a service
//! rebuilds. Real processes (release builds), real PostgreSQL.
//!
//! ```sh
//! cargo build --release -p bus -p users -p accounts -p transactions -p acceptance
//! DATABASE_URL=postgres://… target/release/services-bench [--transfers 20000]
//! ```

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use acceptance::{Bank, eventually};
use anyhow::Context;
use bus::{
    client::{BusClient, Publish},
    protocol::{ConsistencyValue, Mode, ReceiptStatus},
};
use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::json;

#[derive(Parser)]
#[command(about = "Benchmarks the banking services under a burst of transfers")]
struct Cli {
    /// Transfers in the burst.
    #[arg(long, default_value_t = 20_000)]
    transfers: usize,
    /// Users (one account each) the transfers move money between.
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Instances of the accounts service.
    #[arg(long, default_value_t = 2)]
    accounts_instances: usize,
    /// Transfers per `new` message, as a busy transactions service would send them.
    #[arg(long, default_value_t = 50)]
    per_message: usize,
    /// Publishing connections.
    #[arg(long, default_value_t = 4)]
    publishers: usize,
}

/// Transfer ids of the burst start here, far above the ones the
/// transactions service hands out.
const FIRST_ID: i64 = 1_000_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut bank = Bank::start_with_accounts(cli.accounts_instances).await;
    let pool = bank.db.pool().await;
    println!("setting up {} users with £1000.00 each", cli.users);
    let accounts = set_up_users(&bank, cli.users).await;

    let (observer, mut decisions) = BusClient::connect(bank.bus_config(Some("web")).register(
        "web",
        &["AcceptedTransaction", "RejectedTransaction"],
        Mode::Observe,
    ))
    .await?;
    let counts_before = commits(&pool).await?;
    let sent: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let started = Instant::now();
    let publishing = publish_burst(&bank, &cli, &accounts, sent.clone());

    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let (mut accepted, mut rejected) = (0usize, 0usize);
    let observing = async {
        while accepted + rejected < cli.transfers {
            let Some(delivered) = decisions.next().await else {
                break;
            };
            let data: serde_json::Value = serde_json::from_str(delivered.event.data.get())?;
            let Some(id) = data["transaction_id"].as_i64().filter(|id| *id >= FIRST_ID) else {
                continue;
            };
            if let Some(at) = sent
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .get(&id)
            {
                latency.record(at.elapsed().as_micros() as u64)?;
            }
            match delivered.event.event_type.as_str() {
                "AcceptedTransaction" => accepted += 1,
                _ => rejected += 1,
            }
        }
        anyhow::Ok(started.elapsed())
    };
    let (published, decided) = tokio::join!(publishing, observing);
    let (published, decided) = (published?, decided?);
    observer.close();

    let applied = applied_by_transactions(&pool, cli.transfers).await?;
    let applied_after = started.elapsed();
    let (commits, wal_syncs) = {
        let after = commits(&pool).await?;
        (after.0 - counts_before.0, after.1 - counts_before.1)
    };

    let rate = |count: usize, elapsed: Duration| count as f64 / elapsed.as_secs_f64();
    println!(
        "\nburst of {} transfers ({} accounts instances, {} per message, {} publishers)",
        cli.transfers, cli.accounts_instances, cli.per_message, cli.publishers
    );
    println!(
        "  published in            {:>8.2} s  ({:.0}/s)",
        published.as_secs_f64(),
        rate(cli.transfers, published)
    );
    println!(
        "  decided by accounts in  {:>8.2} s  ({:.0} transfers/s; {accepted} accepted, {rejected} rejected)",
        decided.as_secs_f64(),
        rate(cli.transfers, decided)
    );
    println!(
        "  applied by transactions {:>8.2} s  ({:.0} transfers/s, {applied} rows)",
        applied_after.as_secs_f64(),
        rate(cli.transfers, applied_after)
    );
    println!(
        "  publish → decision      p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        latency.max() as f64 / 1000.0
    );
    // Each transfer is 4 events (pending, decision, debit, credit) stored by
    // the bus and applied by up to three services.
    // Commits count read-only statements too (each outside a transaction
    // is one); WAL syncs are the fsyncs that writing commits cost.
    println!(
        "  database commits        {commits} in all, {:.2} per transfer",
        commits as f64 / cli.transfers as f64
    );
    println!(
        "  WAL syncs (fsyncs)      {wal_syncs} in all, {:.2} per transfer",
        wal_syncs as f64 / cli.transfers as f64
    );

    let (events, rebuilt) = rebuild_transactions(&mut bank, &pool).await?;
    println!(
        "\nrebuild of the transactions service from {events} events: {:.2} s ({:.0} events/s)",
        rebuilt.as_secs_f64(),
        rate(events, rebuilt)
    );
    Ok(())
}

/// Signs the users up (their first account) and gives each £1000.
async fn set_up_users(bank: &Bank, users: usize) -> Vec<(String, i64)> {
    let mut accounts = Vec::with_capacity(users);
    for chunk in (0..users).collect::<Vec<_>>().chunks(10) {
        let signed_up = futures_util::future::join_all(chunk.iter().map(|user| async move {
            let name = format!("bench_user_{user}");
            let account = bank.sign_up(&name).await;
            bank.deposit(&name, account, "1000.00").await;
            (name, account)
        }))
        .await;
        accounts.extend(signed_up);
    }
    accounts
}

/// Publishes the burst's `PendingTransaction`s as the transactions service
/// would, but as fast as the bus takes them.
async fn publish_burst(
    bank: &Bank,
    cli: &Cli,
    accounts: &[(String, i64)],
    sent: Arc<Mutex<HashMap<i64, Instant>>>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let ids: Vec<i64> = (0..cli.transfers as i64).map(|i| FIRST_ID + i).collect();
    let per_publisher = ids.len().div_ceil(cli.publishers.max(1));
    let mut tasks = Vec::new();
    for share in ids.chunks(per_publisher.max(1)) {
        // As the transactions service would, with its token.
        let (client, _) = BusClient::connect(bank.bus_config(Some("transactions"))).await?;
        let (share, accounts, sent, per_message) = (
            share.to_vec(),
            accounts.to_vec(),
            sent.clone(),
            cli.per_message,
        );
        tasks.push(tokio::spawn(async move {
            for message in share.chunks(per_message.max(1)) {
                let mut events = Vec::with_capacity(message.len());
                for id in message {
                    // A fixed spread of pairs and amounts.
                    let from = (*id as usize * 7) % accounts.len();
                    let to = (from + 1 + (*id as usize % (accounts.len() - 1))) % accounts.len();
                    let amount = format!("{}.{:02}", id % 20 + 1, id % 100);
                    let data = json!({"transaction_id": id, "from_account_id": accounts[from].1,
                        "to_account_id": accounts[to].1, "amount": amount, "reference": "bench",
                        "username": accounts[from].0});
                    events.push(Publish::new(
                        "PendingTransaction",
                        format!("trans-{id}"),
                        ConsistencyValue::Explicit(0),
                        &data,
                    )?);
                }
                {
                    let mut sent = sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                    let now = Instant::now();
                    sent.extend(message.iter().map(|id| (*id, now)));
                }
                let receipt = client.publish(events).await?;
                anyhow::ensure!(receipt.status == ReceiptStatus::Success, "{receipt:?}");
            }
            client.close();
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}

/// Commits in this database, and WAL syncs of the whole server (nothing
/// else runs on it during the benchmark).
async fn commits(pool: &sqlx::PgPool) -> anyhow::Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
                (SELECT wal_sync FROM pg_stat_wal)",
    )
    .fetch_one(pool)
    .await?)
}

/// Waits until the transactions service shows every transfer of the burst decided.
async fn applied_by_transactions(pool: &sqlx::PgPool, transfers: usize) -> anyhow::Result<i64> {
    let applied = eventually("the transactions service applied the decisions", || async {
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM transactions.transfers WHERE transaction_id >= $1 AND status <> 'pending'",
        )
        .bind(FIRST_ID)
        .fetch_one(pool)
        .await
        .ok()?;
        (count as usize == transfers).then_some(count)
    })
    .await;
    Ok(applied)
}

/// Stops the transactions service, drops its tables, and times its start.
async fn rebuild_transactions(
    bank: &mut Bank,
    pool: &sqlx::PgPool,
) -> anyhow::Result<(usize, Duration)> {
    bank.transactions.terminate();
    sqlx::raw_sql("DROP SCHEMA transactions CASCADE")
        .execute(pool)
        .await?;
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bus.events WHERE event_type IN
           ('AccountCreated', 'PendingTransaction', 'AcceptedTransaction', 'RejectedTransaction')",
    )
    .fetch_one(pool)
    .await
    .context("count the events to rebuild from")?;
    let started = Instant::now();
    bank.transactions.restart();
    Ok((events as usize, started.elapsed()))
}
