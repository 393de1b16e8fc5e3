//! `bus`: Ledgerline's event bus server.

use std::time::Duration;

use anyhow::Context;
use bus::{
    protocol::Limits,
    server::{
        self,
        config::{BusConfig, DeliveryConfig},
    },
};
use clap::Parser;
use metrics_exporter_prometheus::PrometheusBuilder;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    version,
    about = "Ledgerline's event bus (protocol: shared/PROTOCOL.md)"
)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "BUS_LISTEN", default_value = "127.0.0.1:8081")]
    listen: String,
    /// Clients must present this bearer token (none: anyone may connect).
    #[arg(long, env = "BUS_TOKEN", hide_env_values = true)]
    token: Option<String>,
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
        database_url: cli.database_url,
        token: cli.token.filter(|token| !token.is_empty()),
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
