//! `bus`: Ledgerline's event bus server.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use bus::{
    credentials::{Access, Credentials},
    protocol::Limits,
    server::{
        self,
        config::{BusConfig, DEFAULT_MAX_QUERIES, DeliveryConfig},
        writer::DEFAULT_KEY_CACHE,
    },
};
use clap::Parser;
use metrics_exporter_prometheus::PrometheusBuilder;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    version,
    about = "Ledgerline's event bus (protocol: bus/PROTOCOL.md, version 1.1)"
)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "BUS_LISTEN", default_value = "127.0.0.1:8081")]
    listen: String,
    /// The credentials file: each client's token digest and scope (see
    /// bus/README.md).
    #[arg(long, env = "BUS_CREDENTIALS")]
    credentials: Option<PathBuf>,
    /// A token that may do everything, for development and tests.
    #[arg(long, env = "BUS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Run without credentials: every client may do everything. For
    /// development only; without credentials, a token or this flag the bus
    /// does not start.
    #[arg(long, env = "BUS_INSECURE")]
    insecure: bool,
    /// PostgreSQL URL of the store (schema `bus`).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Largest frame, in bytes.
    #[arg(long, env = "BUS_MAX_FRAME_BYTES", default_value_t = Limits::default().max_frame_bytes)]
    max_frame_bytes: usize,
    /// Most events in one `new` message.
    #[arg(long, env = "BUS_MAX_EVENTS_PER_MESSAGE", default_value_t = Limits::default().max_events_per_message)]
    max_events_per_message: usize,
    /// Unacknowledged events per consuming instance.
    #[arg(long, env = "BUS_MAX_IN_FLIGHT", default_value_t = DeliveryConfig::default().max_in_flight)]
    max_in_flight: usize,
    /// Milliseconds before an unacknowledged event counts as a nack.
    #[arg(long, env = "BUS_ACK_TIMEOUT_MS", default_value_t = 30_000)]
    ack_timeout_ms: u64,
    /// Deliveries before an event is parked.
    #[arg(long, env = "BUS_MAX_DELIVERIES", default_value_t = DeliveryConfig::default().max_deliveries)]
    max_deliveries: u32,
    /// Milliseconds before the first redelivery after a failure (doubling).
    #[arg(long, env = "BUS_RETRY_BACKOFF_MS", default_value_t = 200)]
    retry_backoff_ms: u64,
    /// Events one subscription holds in memory before it reads the log in
    /// pages instead of taking them live.
    #[arg(long, env = "BUS_MAX_HELD", default_value_t = DeliveryConfig::default().max_held)]
    max_held: usize,
    /// Keys whose consistency values the writer keeps in memory (others
    /// are read from the log's index when needed).
    #[arg(long, env = "BUS_KEY_CACHE", default_value_t = DEFAULT_KEY_CACHE)]
    key_cache: usize,
    /// Queries running at once, over all connections.
    #[arg(long, env = "BUS_MAX_QUERIES", default_value_t = DEFAULT_MAX_QUERIES)]
    max_queries: usize,
}

/// Who may connect: the credentials file and the development token, or
/// nobody's business with `--insecure`; without any, the bus refuses to start.
fn access(cli: &Cli) -> anyhow::Result<Access> {
    let token = cli.token.as_deref().filter(|token| !token.is_empty());
    if cli.insecure {
        anyhow::ensure!(
            cli.credentials.is_none() && token.is_none(),
            "--insecure cannot be combined with credentials or a token"
        );
        return Ok(Access::Insecure);
    }
    let credentials = match &cli.credentials {
        Some(path) => Credentials::load(path)?,
        None => Credentials::default(),
    };
    let credentials = match token {
        Some(token) => credentials.with_admin_token(token),
        None => credentials,
    };
    anyhow::ensure!(
        !credentials.is_empty(),
        "the bus has no credentials: give --credentials FILE (BUS_CREDENTIALS) or a development \
         token (BUS_TOKEN); --insecure lets anyone in, for development only"
    );
    Ok(Access::Tokens(credentials))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("could not install the metrics recorder")?;

    let config = BusConfig {
        access: access(&cli)?,
        database_url: cli.database_url,
        limits: Limits {
            max_frame_bytes: cli.max_frame_bytes,
            max_events_per_message: cli.max_events_per_message,
            ..Limits::default()
        },
        delivery: DeliveryConfig {
            max_in_flight: cli.max_in_flight,
            ack_timeout: Duration::from_millis(cli.ack_timeout_ms),
            max_deliveries: cli.max_deliveries,
            retry_backoff: Duration::from_millis(cli.retry_backoff_ms),
            max_held: cli.max_held,
            ..DeliveryConfig::default()
        },
        key_cache: cli.key_cache,
        max_queries: cli.max_queries,
    };
    let bus = server::start(config, &cli.listen, Some(metrics)).await?;
    tracing::info!(address = %bus.address, "the bus is listening");
    println!("bus listening on {}", bus.address);

    let shutdown = bus.shutdown_token();
    tokio::spawn(async move {
        bus::signal::terminated().await;
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    bus.stopped().await;
    Ok(())
}
