//! The bus server: WebSocket protocol at `/bus`, `GET /health`,
//! `GET /metrics`, and the staff endpoints for subscriptions and parked
//! events.

pub mod config;
mod connection;
mod http;
mod query;
pub mod subscription;
pub mod writer;

use axum::serve::ListenerExt;
use std::{net::SocketAddr, sync::Arc};

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    credentials::Access,
    store::{self, StoreError},
};
use config::BusConfig;
use subscription::Subscriptions;
use writer::WriterHandle;

/// What every connection and handler shares.
pub struct BusState {
    pub config: BusConfig,
    pub pool: PgPool,
    pub writer: WriterHandle,
    pub subscriptions: Subscriptions,
    /// One permit per query running, over all connections.
    pub queries: Arc<Semaphore>,
    pub metrics: Option<PrometheusHandle>,
    /// Cancelled when the bus starts shutting down.
    pub shutdown: CancellationToken,
    /// The open connections, awaited at shutdown.
    pub connections: TaskTracker,
}

/// A started bus: its address, and the means to stop it.
pub struct RunningBus {
    pub address: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RunningBus {
    /// Shuts down gracefully: stops accepting, finishes the commits in
    /// flight, closes every socket with 1001 and saves delivery progress.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }

    /// Resolves when the bus has stopped, whoever stopped it.
    pub async fn stopped(self) {
        let _ = self.task.await;
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
}

/// Connects to the database, loads the log's state and serves on `listen`.
pub async fn start(
    config: BusConfig,
    listen: &str,
    metrics: Option<PrometheusHandle>,
) -> Result<RunningBus, StartError> {
    let pool = store::connect(&config.database_url, 32).await?;
    let (writer, writer_task) = writer::spawn(
        store::connect_options(&config.database_url)?,
        pool.clone(),
        config.key_cache,
    )
    .await
    .map_err(StoreError::Database)?;
    let subscriptions = Subscriptions::new(pool.clone(), writer.clone(), config.delivery);
    if matches!(config.access, Access::Insecure) {
        tracing::warn!(
            "INSECURE: the bus runs without credentials; any client may connect, publish and read everything"
        );
    }
    let shutdown = CancellationToken::new();
    let bus = Arc::new(BusState {
        queries: Arc::new(Semaphore::new(config.max_queries)),
        config,
        pool: pool.clone(),
        writer,
        subscriptions,
        metrics,
        shutdown: shutdown.clone(),
        connections: TaskTracker::new(),
    });

    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Listen {
            address: listen.to_owned(),
            source,
        })?;
    let address = listener.local_addr().map_err(|source| StartError::Listen {
        address: listen.to_owned(),
        source,
    })?;
    let router = http::router(bus.clone());
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            // Frames go out as they are written: no Nagle delay on a
            // receipt or a delivery waiting for the peer's ack.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            // Each connection's peer address (`ConnectInfo`) is recorded
            // with the events it publishes (`published_by`).
            let app = router.into_make_service_with_connect_info::<SocketAddr>();
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the bus stopped serving");
                shutdown.cancel();
            }
            // Connections close after their commits; then progress is saved
            // and the writer, with no one left to send it work, stops.
            bus.connections.close();
            bus.connections.wait().await;
            bus.subscriptions.stop().await;
            drop(bus);
            // The writer stops once every handle is gone; it holds no work now.
            if tokio::time::timeout(std::time::Duration::from_secs(10), writer_task)
                .await
                .is_err()
            {
                tracing::warn!("the writer did not stop within 10 s");
            }
            pool.close().await;
            tracing::info!("the bus has stopped");
        }
    });
    Ok(RunningBus {
        address,
        shutdown,
        task,
    })
}
