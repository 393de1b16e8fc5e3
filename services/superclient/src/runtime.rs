//! Running a service: schema, rebuild, registration, the live loop, the
//! HTTP server, and shutting all of it down gracefully.

use std::{net::SocketAddr, str::FromStr, time::Duration};

use anyhow::Context;
use axum::serve::ListenerExt;
use bus::{
    client::{BusClient, ClientConfig},
    protocol::Mode,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::{
    Connection, Executor, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    applied,
    config::Settings,
    consumer,
    context::{Ctx, Parts},
    http, idempotency, rebuild,
    service::Service,
};

/// How often finished requests past their keeping time are forgotten.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(600);

/// A service's process: logs go to stderr; the first line on stdout is
/// `NAME listening on ADDRESS`, printed once the service is ready.
pub async fn main<S: Service>(service: S, settings: Settings) -> anyhow::Result<()> {
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
    let name = service.name();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            bus::signal::terminated().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        }
    });
    run(service, settings, Some(metrics), shutdown, |address| {
        println!("{name} listening on {address}");
    })
    .await
}

/// Runs one instance until `shutdown` is cancelled: prepares the schema,
/// rebuilds, registers, then serves events and HTTP. `ready` is told the
/// HTTP address once everything runs.
pub async fn run<S: Service>(
    service: S,
    settings: Settings,
    metrics: Option<PrometheusHandle>,
    shutdown: CancellationToken,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let name = service.name();
    anyhow::ensure!(
        name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "a service's name is its schema's: lowercase letters and _ only"
    );
    let db = prepare_database(&service, &settings.database_url).await?;
    let bus_config = |config: ClientConfig| {
        config
            .token(settings.bus_token.clone())
            .deadline(settings.bus_deadline)
    };
    let (publisher, _) = BusClient::connect(bus_config(ClientConfig::new(&settings.bus_url)))
        .await
        .context("could not connect to the bus")?;
    let ctx = Ctx::new(Parts {
        service,
        db,
        publisher: publisher.clone(),
        callers: settings.callers.clone(),
        user_tokens: settings.user_tokens.clone(),
        metrics,
    });

    // History first, then register, then the little that came in between:
    // a subscription owes events from its first registration on, and the
    // second rebuild covers everything up to the head at registration.
    let first = rebuild::rebuild(&ctx).await.context("rebuild")?;
    let mut types: Vec<&str> = ctx
        .service()
        .applies()
        .iter()
        .chain(ctx.service().reacts_to())
        .copied()
        .collect();
    types.sort_unstable();
    types.dedup();
    // Skip markers: an event staff skip comes once more, marked, so that
    // the service steps over it knowingly instead of stopping at the gap.
    let (consumer, events) = BusClient::connect(bus_config(
        ClientConfig::new(&settings.bus_url)
            .register(name, &types, Mode::Consume)
            .skip_markers(),
    ))
    .await
    .context("could not register with the bus")?;
    let second = rebuild::rebuild(&ctx).await.context("rebuild")?;
    tracing::info!(
        events = first.events + second.events,
        through = second.through,
        stuck_keys = second.stuck,
        "rebuilt from the bus's history"
    );
    ctx.set_stuck_keys(second.stuck as u64);
    ctx.set_ready();

    let listen = settings
        .listen
        .clone()
        .unwrap_or_else(|| format!("127.0.0.1:{}", ctx.service().default_port()));
    let listener = TcpListener::bind(&listen)
        .await
        .with_context(|| format!("could not listen on {listen}"))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, service = name, "serving");
    ready(address);

    let live = tokio::spawn(consumer::run(
        ctx.clone(),
        consumer,
        events,
        settings.max_batch,
        shutdown.clone(),
    ));
    let expiry = tokio::spawn(expire_requests(ctx.db().clone(), name, shutdown.clone()));
    // Nagle off: answers leave as soon as they are written.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(
        listener,
        http::router(ctx.clone()).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let served = server.await;
    shutdown.cancel();
    let _ = live.await;
    let _ = expiry.await;
    publisher.close();
    ctx.db().close().await;
    served.context("the HTTP server failed")
}

/// Forgets answered requests past their keeping time, now and then.
async fn expire_requests(db: PgPool, name: &'static str, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(EXPIRY_INTERVAL);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match idempotency::expire(&db, name).await {
            Ok(0) => {}
            Ok(removed) => {
                tracing::info!(removed, "forgot answered requests past their keeping time")
            }
            Err(error) => tracing::warn!(%error, "could not forget old answered requests"),
        }
    }
}

/// Creates the schema, runs the service's migrations in it, and returns a
/// pool whose connections use it.
async fn prepare_database<S: Service>(service: &S, url: &str) -> anyhow::Result<PgPool> {
    let name = service.name();
    let options =
        PgConnectOptions::from_str(url).context("DATABASE_URL is not a PostgreSQL URL")?;
    let mut setup = PgConnection::connect_with(&options)
        .await
        .context("could not connect to the database")?;
    // Instances starting together take turns.
    sqlx::query("SELECT pg_advisory_lock(hashtext('superclient:' || $1))")
        .bind(name)
        .execute(&mut setup)
        .await?;
    let prepared = prepare_schema(service, &mut setup).await;
    sqlx::query("SELECT pg_advisory_unlock(hashtext('superclient:' || $1))")
        .bind(name)
        .execute(&mut setup)
        .await?;
    prepared?;
    setup.close().await?;
    // No ping before every use: it was a round trip per query. A connection
    // that died meanwhile fails its query, is dropped, and the work is
    // retried as after any transient failure.
    Ok(PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .connect_with(options.options([("search_path", name)]))
        .await?)
}

async fn prepare_schema<S: Service>(service: &S, db: &mut PgConnection) -> anyhow::Result<()> {
    let name = service.name();
    let use_schema = format!("CREATE SCHEMA IF NOT EXISTS {name}; SET search_path TO {name}");
    (&mut *db).execute(use_schema.as_str()).await?;
    applied::ensure_tables(db).await?;
    let mut types: Vec<&str> = service.applies().to_vec();
    types.sort_unstable();
    let recorded = applied::applied_types(db).await?;
    if !recorded.is_empty() && recorded != types {
        // The tables hold what other types made of the log: they are
        // rebuilt from it, so that a type added gets its history.
        tracing::warn!(?recorded, now = ?types, "the service applies other event types now; rebuilding its tables from the log");
        (&mut *db)
            .execute(format!("DROP SCHEMA {name} CASCADE").as_str())
            .await?;
        (&mut *db).execute(use_schema.as_str()).await?;
        applied::ensure_tables(db).await?;
    }
    // `run_direct` rather than `run`: the latter's future is not `Send`
    // for every lifetime, and a service must be able to run in a spawned task.
    service
        .migrator()
        .run_direct(&mut *db)
        .await
        .context("could not migrate the service's schema")?;
    idempotency::ensure_table(db, name).await?;
    applied::record_applied_types(db, &types).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventRecord, HandlerError};

    struct Quiet;

    impl Service for Quiet {
        fn name(&self) -> &'static str {
            "quiet"
        }
        fn default_port(&self) -> u16 {
            0
        }
        fn applies(&self) -> &'static [&'static str] {
            &[]
        }
        fn migrator(&self) -> &'static sqlx::migrate::Migrator {
            unreachable!("never run")
        }
        async fn apply(&self, _: &mut PgConnection, _: &EventRecord) -> Result<(), HandlerError> {
            Ok(())
        }
        fn routes(&self) -> axum::Router<Ctx<Self>> {
            axum::Router::new()
        }
    }

    /// The web server runs the services in tasks of its own: a service's
    /// future must be `Send` (this fails to compile otherwise).
    #[allow(dead_code)]
    fn a_service_runs_in_a_spawned_task(settings: Settings, shutdown: CancellationToken) {
        fn spawnable<T: Send + 'static>(_: T) {}
        spawnable(run(Quiet, settings, None, shutdown, |_| {}));
    }
}
