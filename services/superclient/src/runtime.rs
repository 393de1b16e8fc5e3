//! Running a service: schema, rebuild, registration, the live loop, the
//! HTTP server, and shutting all of it down gracefully.

use std::{
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use anyhow::Context;
use bus::{
    client::{BusClient, ClientConfig},
    protocol::Mode,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::{
    Connection, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    applied, config::ServiceArgs, consumer, http, key_locks::KeyLocks, rebuild, service::Service,
};

/// What a service's handlers and routes share: its database, the bus, the
/// service itself. Cheap to clone; the state of its axum routes.
pub struct Ctx<S> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    service: S,
    db: PgPool,
    publisher: BusClient,
    key_locks: KeyLocks,
    service_token: String,
    ready: AtomicBool,
    metrics: Option<PrometheusHandle>,
}

impl<S> Clone for Ctx<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: Service> Ctx<S> {
    pub fn service(&self) -> &S {
        &self.inner.service
    }

    /// The service's database; its connections use the service's schema.
    pub fn db(&self) -> &PgPool {
        &self.inner.db
    }

    /// The connection that publishes and queries (events arrive on another).
    pub(crate) fn publisher(&self) -> &BusClient {
        &self.inner.publisher
    }

    pub(crate) fn key_locks(&self) -> &KeyLocks {
        &self.inner.key_locks
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    pub(crate) fn metrics(&self) -> Option<&PrometheusHandle> {
        self.inner.metrics.as_ref()
    }

    /// Compares in constant time, so the token cannot be guessed byte by byte.
    pub(crate) fn service_token_matches(&self, presented: &str) -> bool {
        let expected = self.inner.service_token.as_bytes();
        let presented = presented.as_bytes();
        expected.len() == presented.len()
            && expected
                .iter()
                .zip(presented)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// A service's process: parses nothing itself; the binary's `main` gives
/// it the shared arguments. Logs go to stderr; the first line on stdout is
/// `NAME listening on ADDRESS`, printed once the service is ready.
pub async fn main<S: Service>(service: S, args: ServiceArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("could not install the metrics recorder")?;
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            bus::signal::terminated().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        }
    });
    run(service, args, Some(metrics), shutdown, |address| {
        println!("{} listening on {address}", S::NAME);
    })
    .await
}

/// Runs one instance until `shutdown` is cancelled: prepares the schema,
/// rebuilds, registers, then serves events and HTTP. `ready` is told the
/// HTTP address once everything runs.
pub async fn run<S: Service>(
    service: S,
    args: ServiceArgs,
    metrics: Option<PrometheusHandle>,
    shutdown: CancellationToken,
    ready: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.service_token.is_empty(),
        "SERVICE_TOKEN must not be empty: it is what keeps strangers out of the API"
    );
    anyhow::ensure!(
        S::NAME.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "a service's name is its schema's: lowercase letters and _ only"
    );
    let db = prepare_database(&service, &args.database_url).await?;

    let bus_config = |config: ClientConfig| match &args.bus_token {
        Some(token) if !token.is_empty() => config.token(token.clone()),
        _ => config,
    };
    let (publisher, _) = BusClient::connect(bus_config(ClientConfig::new(&args.bus_url)))
        .await
        .context("could not connect to the bus")?;
    let ctx = Ctx {
        inner: Arc::new(Inner {
            service,
            db,
            publisher: publisher.clone(),
            key_locks: KeyLocks::default(),
            service_token: args.service_token.clone(),
            ready: AtomicBool::new(false),
            metrics,
        }),
    };

    // History first, then register, then the little that came in between:
    // a subscription owes events from its first registration on, and the
    // second rebuild covers everything up to the head at registration.
    let first = rebuild::rebuild(&ctx).await.context("rebuild")?;
    let mut types: Vec<&str> = S::APPLIES.iter().chain(S::REACTS_TO).copied().collect();
    types.sort_unstable();
    types.dedup();
    let (consumer, events) = BusClient::connect(bus_config(
        ClientConfig::new(&args.bus_url).register(S::NAME, &types, Mode::Consume),
    ))
    .await
    .context("could not register with the bus")?;
    let second = rebuild::rebuild(&ctx).await.context("rebuild")?;
    tracing::info!(
        events = first.events + second.events,
        through = second.through,
        "rebuilt from the bus's history"
    );
    ctx.inner.ready.store(true, Ordering::Release);

    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| format!("127.0.0.1:{}", S::DEFAULT_PORT));
    let listener = TcpListener::bind(&listen)
        .await
        .with_context(|| format!("could not listen on {listen}"))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, service = S::NAME, "serving");
    ready(address);

    let live = tokio::spawn(consumer::run(
        ctx.clone(),
        consumer,
        events,
        args.max_batch,
        shutdown.clone(),
    ));
    let server = axum::serve(listener, http::router(ctx.clone()))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let served = server.await;
    shutdown.cancel();
    let _ = live.await;
    publisher.close();
    ctx.db().close().await;
    served.context("the HTTP server failed")
}

/// Creates the schema, runs the service's migrations in it, and returns a
/// pool whose connections use it.
async fn prepare_database<S: Service>(service: &S, url: &str) -> anyhow::Result<PgPool> {
    let options =
        PgConnectOptions::from_str(url).context("DATABASE_URL is not a PostgreSQL URL")?;
    let mut setup = PgConnection::connect_with(&options)
        .await
        .context("could not connect to the database")?;
    // Instances starting together take turns.
    sqlx::query("SELECT pg_advisory_lock(hashtext('superclient:' || $1))")
        .bind(S::NAME)
        .execute(&mut setup)
        .await?;
    let prepared = prepare_schema(service, &mut setup).await;
    sqlx::query("SELECT pg_advisory_unlock(hashtext('superclient:' || $1))")
        .bind(S::NAME)
        .execute(&mut setup)
        .await?;
    prepared?;
    setup.close().await?;
    Ok(PgPoolOptions::new()
        .max_connections(16)
        .connect_with(options.options([("search_path", S::NAME)]))
        .await?)
}

async fn prepare_schema<S: Service>(service: &S, db: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::raw_sql(&format!(
        "CREATE SCHEMA IF NOT EXISTS {name}; SET search_path TO {name}",
        name = S::NAME
    ))
    .execute(&mut *db)
    .await?;
    service
        .migrator()
        .run(&mut *db)
        .await
        .context("could not migrate the service's schema")?;
    applied::ensure_tables(db).await?;
    Ok(())
}
