//! `rebuild-bench`: how fast a service rebuilds its tables from a long
//! log, and whether its memory stays flat while it does.
//!
//! The log is written straight to the bus, as the accounts service would
//! publish it: `--accounts` `AccountCreated`, then credits of £10.00 and
//! debits of £5.00 in turn on each account, until the log holds
//! `--events` events. Then one accounts instance starts on the empty
//! schema: it reads the whole history through the bus's query, applies it,
//! and says it is ready. The time from its start to ready is the rebuild;
//! its peak resident memory (`VmHWM` in `/proc`) says whether memory grew
//! with the log. Every balance is then checked against the log.
//!
//! ```sh
//! cargo build --release -p bus -p accounts -p acceptance
//! DATABASE_URL=postgres://… target/release/rebuild-bench [--events 1000000] [--accounts 10000]
//! ```

use std::time::Instant;

use acceptance::{Process, Service, TestDb, Trust};
use anyhow::Context;
use bus::{
    client::{BusClient, ClientConfig, Publish},
    protocol::{ConsistencyValue, ReceiptStatus},
};
use clap::Parser;
use rust_decimal::Decimal;
use serde_json::json;

#[derive(Parser)]
#[command(about = "Times a rebuild of the accounts service from a long log")]
struct Cli {
    /// Events in the log.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Accounts the events are spread over.
    #[arg(long, default_value_t = 10_000)]
    accounts: usize,
    /// Publishing connections, each writing the events of its own accounts.
    #[arg(long, default_value_t = 4)]
    publishers: usize,
}

/// Events per `new` message (the protocol allows 1,000).
const PER_MESSAGE: usize = 500;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    anyhow::ensure!(
        cli.accounts > 0 && cli.events >= cli.accounts,
        "--events must be at least --accounts"
    );
    let db = TestDb::new().await;
    let trust = Trust::generate();
    let bus = Process::bus(&db.url, &trust);
    let config = ClientConfig::new(bus.bus_url()).token(trust.bundle.bus_token("accounts"));

    let started = Instant::now();
    let published = write_log(&cli, &config).await?;
    let took = started.elapsed();
    println!(
        "wrote {published} events in {:.1} s ({:.0} events/s)",
        took.as_secs_f64(),
        published as f64 / took.as_secs_f64()
    );

    let started = Instant::now();
    let accounts = Process::service(Service::Accounts, &db.url, &bus, &trust);
    let rebuilt = started.elapsed();
    let memory = peak_memory(accounts.pid())?;
    println!(
        "rebuild of the accounts service from {published} events: {:.2} s ({:.0} events/s), \
         peak resident memory {:.1} MiB",
        rebuilt.as_secs_f64(),
        published as f64 / rebuilt.as_secs_f64(),
        memory as f64 / 1024.0
    );
    check_balances(&cli, &db).await
}

/// The account of each index, and its events: `AccountCreated` (value 0),
/// then a credit and a debit in turn.
fn event(account: usize, value: usize) -> anyhow::Result<Publish> {
    let account_id = account as i64 + 1;
    let key = format!("acc-{account_id}");
    let at = ConsistencyValue::Explicit(value as i64);
    let event = match value {
        0 => Publish::new(
            "AccountCreated",
            key,
            at,
            &json!({"account_id": account_id, "request_id": uuid::Uuid::now_v7(),
                    "username": format!("rebuild_{account}")}),
        ),
        v if v % 2 == 1 => Publish::new(
            "ConfirmedCredit",
            key,
            at,
            &json!({"account_id": account_id, "amount": "10.00", "note": "bench credit",
                    "transaction_id": null}),
        ),
        _ => Publish::new(
            "ConfirmedDebit",
            key,
            at,
            &json!({"account_id": account_id, "amount": "5.00", "note": "bench debit",
                    "transaction_id": null}),
        ),
    };
    Ok(event?)
}

/// How many events each account gets: the log's events spread evenly.
fn events_of(cli: &Cli, account: usize) -> usize {
    cli.events / cli.accounts + usize::from(account < cli.events % cli.accounts)
}

/// Publishes the log: each publisher takes its own accounts, value after
/// value, so every key's events are stored in order.
async fn write_log(cli: &Cli, config: &ClientConfig) -> anyhow::Result<usize> {
    let publishers = cli.publishers.clamp(1, cli.accounts);
    let mut tasks = Vec::new();
    for publisher in 0..publishers {
        let mine: Vec<(usize, usize)> = (publisher..cli.accounts)
            .step_by(publishers)
            .map(|account| (account, events_of(cli, account)))
            .collect();
        let (client, _) = BusClient::connect(config.clone()).await?;
        tasks.push(tokio::spawn(async move {
            let rounds = mine.iter().map(|(_, n)| *n).max().unwrap_or(0);
            let mut sent = 0;
            for value in 0..rounds {
                let round: Vec<usize> = mine
                    .iter()
                    .filter(|(_, n)| value < *n)
                    .map(|(account, _)| *account)
                    .collect();
                for message in round.chunks(PER_MESSAGE) {
                    let events = message
                        .iter()
                        .map(|account| event(*account, value))
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    sent += events.len();
                    let receipt = client.publish(events).await?;
                    anyhow::ensure!(receipt.status == ReceiptStatus::Success, "{receipt:?}");
                }
            }
            client.close();
            anyhow::Ok(sent)
        }));
    }
    let mut published = 0;
    for task in tasks {
        published += task.await??;
    }
    Ok(published)
}

/// The process's peak resident set, in KiB.
fn peak_memory(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmHWM in /proc")
}

/// Every account's balance is what its credits and debits add up to.
async fn check_balances(cli: &Cli, db: &TestDb) -> anyhow::Result<()> {
    let pool = db.pool().await;
    let balances: Vec<(i64, Decimal)> =
        sqlx::query_as("SELECT account_id, balance FROM accounts.accounts ORDER BY account_id")
            .fetch_all(&pool)
            .await?;
    anyhow::ensure!(
        balances.len() == cli.accounts,
        "{} accounts rebuilt of {}",
        balances.len(),
        cli.accounts
    );
    for (account_id, balance) in balances {
        let movements = events_of(cli, account_id as usize - 1) - 1;
        let credits = movements.div_ceil(2) as i64;
        let debits = (movements / 2) as i64;
        let expected = Decimal::new(1000 * credits - 500 * debits, 2);
        anyhow::ensure!(
            balance == expected,
            "account {account_id}: {balance} after the rebuild, {expected} in the log"
        );
    }
    println!("every balance matches the log");
    Ok(())
}
