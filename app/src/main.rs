//! `ledgerline`: the web server, and the private PostgreSQL it can run.
//!
//! With `DATABASE_URL` set, the server uses that database. Without it, it
//! starts a private cluster under `target/postgres` and stops it on exit.

use std::path::PathBuf;

use anyhow::Context;
use app::server::{
    database,
    private_postgres::{Lifetime, PrivatePostgres},
    routes,
    state::AppState,
};
use clap::{Parser, Subcommand};
use leptos::config::get_configuration;
use tracing_subscriber::EnvFilter;

/// The database the private cluster serves.
const PRIVATE_DATABASE: &str = "ledgerline";

#[derive(Parser)]
#[command(version, about = "Ledgerline's web server")]
struct Cli {
    /// PostgreSQL URL; without it, a private cluster under target/postgres.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web app at LEPTOS_SITE_ADDR (the default command).
    Serve,
    /// Manage the private PostgreSQL cluster.
    Postgres {
        #[command(subcommand)]
        action: PostgresAction,
        /// The cluster's directory (default: target/postgres, or
        /// LEDGERLINE_POSTGRES_DIR).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PostgresAction {
    /// Start the cluster, or find it running; print its DATABASE_URL and
    /// leave it running.
    Start,
    /// Stop the cluster.
    Stop,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.database_url),
        Command::Postgres { action, dir } => {
            let root = dir.unwrap_or_else(PrivatePostgres::default_root);
            match action {
                PostgresAction::Start => {
                    let cluster = PrivatePostgres::start(&root, Lifetime::Detached)?;
                    println!("{}", cluster.database_url(PRIVATE_DATABASE));
                }
                PostgresAction::Stop => {
                    if !PrivatePostgres::stop_directory(&root)? {
                        eprintln!("no private PostgreSQL cluster runs in {}", root.display());
                    }
                }
            }
            Ok(())
        }
    }
}

fn serve(database_url: Option<String>) -> anyhow::Result<()> {
    // Started here, on the main thread and before the runtime: the kernel
    // ties the cluster's parent-death signal to the thread that spawned it,
    // and this one lives as long as the process.
    let private = match database_url {
        Some(_) => None,
        None => Some(
            PrivatePostgres::start(&PrivatePostgres::default_root(), Lifetime::ThisProcess)
                .context("no DATABASE_URL, and the private PostgreSQL cluster did not start")?,
        ),
    };
    let url = match (database_url, &private) {
        (Some(url), _) => url,
        (None, Some(cluster)) => cluster.database_url(PRIVATE_DATABASE),
        (None, None) => unreachable!("a private cluster is started when there is no URL"),
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let served = runtime.block_on(run_server(&url));
    // The server's connections are closed by now; only then stop the cluster.
    drop(runtime);
    drop(private);
    served
}

async fn run_server(database_url: &str) -> anyhow::Result<()> {
    let leptos_options = get_configuration(None)
        .context("invalid LEPTOS_* settings")?
        .leptos_options;
    let pool = database::connect(database_url).await?;
    let state = AppState {
        leptos_options: leptos_options.clone(),
        pool: pool.clone(),
    };

    let listener = tokio::net::TcpListener::bind(leptos_options.site_addr)
        .await
        .with_context(|| format!("could not listen on {}", leptos_options.site_addr))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "serving");
    println!("Ledgerline is up at http://{address}");

    axum::serve(listener, routes::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the server failed")?;
    pool.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
