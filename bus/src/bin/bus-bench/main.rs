//! `bus-bench`: the bus's benchmark, from an empty database, with NATS
//! JetStream doing the same work in the same run. See `bus/BENCHMARKS.md`.
//!
//! ```sh
//! cargo build --release -p bus --features bench
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres target/release/bus-bench
//! ```

mod bus_load;
mod many_keys;
mod nats_load;
mod stats;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use anyhow::{Context, bail};
use clap::Parser;
use sqlx::Connection;

#[derive(Parser, Clone)]
#[command(about = "Benchmarks the bus (and NATS JetStream) from an empty database")]
pub struct Options {
    /// A PostgreSQL server; the benchmark makes (and drops) its own database there.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// NATS server for the comparison; `none` skips it.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Events per P1 run.
    #[arg(long, default_value_t = 200_000)]
    pub p1_events: usize,
    /// `new` messages each publisher keeps in flight.
    #[arg(long, default_value_t = 16)]
    pub window: usize,
    /// Events in each P1 `new` message (1: one event per message).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Seconds of P2 load at 2,000 events/s.
    #[arg(long, default_value_t = 10)]
    pub p2_seconds: u64,
    /// Events per P3 run.
    #[arg(long, default_value_t = 200_000)]
    pub p3_events: usize,
    /// Events in the log for P4's rebuild.
    #[arg(long, default_value_t = 1_000_000)]
    pub p4_events: usize,
    /// Distinct keys in the log for P5 (`p5` is not run unless asked for).
    #[arg(long, default_value_t = 10_000_000)]
    pub p5_keys: usize,
    /// Which parts to run (for profiling one of them); `p5` fills the
    /// log with `p5_keys` keys (minutes, and gigabytes of disk).
    #[arg(long, value_delimiter = ',', default_value = "p1,p2,p3,p4,nats")]
    phases: Vec<String>,
}

impl Options {
    fn runs(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }
}

pub const KEYS: usize = 10_000;
/// The bus under test accepts this development token (it lives as long as the run).
const TOKEN: &str = "bus-bench-token";

/// How the benchmark's clients reach the bus under test.
pub fn client_config(url: &str) -> bus::client::ClientConfig {
    bus::client::ClientConfig::new(url).token(TOKEN)
}
pub const PAYLOAD_BYTES: usize = 200;

/// The bus under test, a process of its own so that its memory is its own.
pub struct BusUnderTest {
    child: Child,
    pub url: String,
}

impl BusUnderTest {
    fn start(database_url: &str) -> anyhow::Result<Self> {
        let binary = std::env::current_exe()?.with_file_name("bus");
        let mut child = Command::new(&binary)
            .env("DATABASE_URL", database_url)
            .env("BUS_LISTEN", "127.0.0.1:0")
            .env("BUS_TOKEN", TOKEN)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!(
                    "could not start {} (build it with the same cargo command)",
                    binary.display()
                )
            })?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
        let Some(address) = line.trim().strip_prefix("bus listening on ") else {
            bail!("the bus did not start: {line:?}");
        };
        Ok(Self {
            url: format!("ws://{address}/bus"),
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BusUnderTest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let (server, _) = options
        .database_url
        .rsplit_once('/')
        .context("DATABASE_URL has no database name")?;
    let name = format!("bus_bench_{}", std::process::id());
    let database_url = format!("{server}/{name}");
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres")).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;

    println!("# bus-bench\n");
    println!("machine: {}", machine());
    let result = run(&options, &database_url).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    result
}

async fn run(options: &Options, database_url: &str) -> anyhow::Result<()> {
    let bus = BusUnderTest::start(database_url)?;

    println!(
        "\n## P1: durable conditional appends, {} keys, {PAYLOAD_BYTES}-byte payloads, explicit values",
        KEYS
    );
    let mut p1 = Vec::new();
    for publishers in [1, 8, 64].into_iter().filter(|_| options.runs("p1")) {
        let result = bus_load::appends(&bus.url, publishers, options, "p1").await?;
        println!(
            "bus   {publishers:>2} publishers × {} in flight × {} events/message: {:>9.0} events/s; receipt {}",
            options.window, options.batch, result.rate, result.latency
        );
        p1.push((publishers, result.rate));
    }

    if options.runs("p2") {
        println!("\n## P2: latency at 2,000 events/s offered");
        let p2 = bus_load::latency(&bus.url, options).await?;
        println!("bus   publish→receipt:  {}", p2.receipt);
        println!("bus   publish→delivery: {}", p2.delivery);
    }

    println!("\n## P3: acknowledged delivery to instances of one client type");
    for instances in [1, 2, 4].into_iter().filter(|_| options.runs("p3")) {
        let result = bus_load::consume(&bus.url, instances, options).await?;
        println!(
            "bus   {instances} instance(s): {:>9.0} events/s, per-key order violations: {}",
            result.rate, result.order_violations
        );
    }

    drop(bus);
    if options.runs("p4") {
        println!("\n## P4: rebuild of {} events", options.p4_events);
        let result = bus_load::rebuild(database_url, options).await?;
        println!(
            "bus   {:>9.0} events/s; peak memory: bus {:.0} MiB, client {:.0} MiB",
            result.rate, result.bus_peak_mib, result.client_peak_mib
        );
    }

    if options.runs("p5") {
        println!("\n## P5: a log of {} distinct keys", options.p5_keys);
        let result = many_keys::run(database_url, options).await?;
        println!(
            "bus   filled in {:.0} s; started in {:.2} s; P1 at 64 publishers: {:>9.0} events/s, receipt {}",
            result.fill_secs, result.start_secs, result.appends.rate, result.appends.latency
        );
        println!(
            "bus   appends to keys of the log (each looked up): {:>9.0} events/s; peak memory of the bus {:.0} MiB ({} keys)",
            result.old_keys_rate, result.bus_peak_mib, result.keys
        );
    }

    if options.runs("nats") && options.nats_url != "none" {
        println!(
            "\n## NATS JetStream {} (file storage), same P1/P2 work",
            nats_load::server_version(&options.nats_url).await?
        );
        for publishers in [1, 8, 64] {
            let result = nats_load::appends(&options.nats_url, publishers, options).await?;
            let ratio = p1
                .iter()
                .find(|(p, _)| *p == publishers)
                .map(|(_, bus_rate)| format!("; bus/nats = {:.2}", bus_rate / result.rate))
                .unwrap_or_default();
            println!(
                "nats  {publishers:>2} publishers × {} in flight: {:>9.0} events/s; ack {}{ratio}",
                options.window, result.rate, result.latency
            );
        }
        let nats = nats_load::latency(&options.nats_url, options).await?;
        println!("nats  publish→ack:      {}", nats.receipt);
        println!("nats  publish→delivery: {}", nats.delivery);
    }
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} × {cpu}")
}
