//! `ledgerline`: the web server, the bank it can run inside itself, and
//! the private PostgreSQL it can run.
//!
//! With `DATABASE_URL` set, the server uses that database. Without it, it
//! starts a private cluster under `target/postgres` and stops it on exit.
//! Without `--users-url` (and its companions), it starts the bus and one
//! instance of each service in this process, and seeds a new bank with
//! demo data.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use app::server::{
    bus_staff::BusStaff,
    database,
    demo::{self, DemoLogins},
    embedded::{self, EmbeddedBank},
    live::{self, LiveHub},
    private_postgres::{Lifetime, PrivatePostgres},
    routes,
    services::{ServiceUrls, Services},
    session,
    state::AppState,
};
use axum::serve::ListenerExt;
use clap::{Parser, Subcommand};
use leptos::config::get_configuration;
use tracing_subscriber::EnvFilter;

/// Many small allocations per page (rendering, JSON, HTTP between the
/// parts) from many threads: mimalloc spends about a third of what glibc's
/// allocator did on them (app/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The database the private cluster serves.
const PRIVATE_DATABASE: &str = "ledgerline";

#[derive(Parser)]
#[command(version, about = "Ledgerline's web server")]
struct Cli {
    /// PostgreSQL URL; without it, a private cluster under target/postgres.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,
    #[command(flatten)]
    bank: BankArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Where the bank is. Without `--users-url`, it runs inside this process.
#[derive(clap::Args)]
struct BankArgs {
    /// The users service of a separately running bank (with the others below).
    #[arg(long, env = "USERS_URL", global = true, requires_all = ["accounts_url", "transactions_url", "reporting_url", "bus_url", "caller_token_file", "bus_token_file", "staff_bus_token_file"])]
    users_url: Option<String>,
    #[arg(long, env = "ACCOUNTS_URL", global = true)]
    accounts_url: Option<String>,
    #[arg(long, env = "TRANSACTIONS_URL", global = true)]
    transactions_url: Option<String>,
    /// The reporting service, which the staff console reads.
    #[arg(long, env = "REPORTING_URL", global = true)]
    reporting_url: Option<String>,
    /// The Nectar loyalty service; without it, the pages offer no points.
    #[arg(long, env = "NECTAR_URL", global = true)]
    nectar_url: Option<String>,
    /// The bus's WebSocket address, observed for live updates.
    #[arg(long, env = "BUS_URL", global = true)]
    bus_url: Option<String>,
    /// The web server's caller token (`ledgerline-trust generate` makes it).
    #[arg(long, env = "CALLER_TOKEN_FILE", global = true)]
    caller_token_file: Option<PathBuf>,
    /// The web server's bus token, scoped to observing.
    #[arg(long, env = "BUS_TOKEN_FILE", global = true)]
    bus_token_file: Option<PathBuf>,
    /// The staff console's bus token, with the staff right (parked events).
    #[arg(long, env = "STAFF_BUS_TOKEN_FILE", global = true)]
    staff_bus_token_file: Option<PathBuf>,
    /// Where the embedded bank keeps its tokens, keys and demo log-ins.
    #[arg(
        long,
        env = "LEDGERLINE_STATE_DIR",
        global = true,
        default_value = "target/ledgerline"
    )]
    state_dir: PathBuf,
    /// Send the session cookie only over https (set this when serving over https).
    #[arg(long, env = "LEDGERLINE_SECURE_COOKIES", global = true)]
    secure_cookies: bool,
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
        Command::Serve => serve(cli.database_url, cli.bank),
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

fn serve(database_url: Option<String>, bank: BankArgs) -> anyhow::Result<()> {
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
    let served = runtime.block_on(run_server(&url, bank));
    // The server's connections are closed by now; only then stop the cluster.
    drop(runtime);
    drop(private);
    served
}

async fn run_server(database_url: &str, args: BankArgs) -> anyhow::Result<()> {
    let leptos_options = get_configuration(None)
        .context("invalid LEPTOS_* settings")?
        .leptos_options;
    let pool = database::connect(database_url).await?;

    let (embedded, services, bus_url, bus_token, staff_token, demo_logins) = match &args.users_url {
        Some(users) => {
            let read = |path: &Option<PathBuf>| -> anyhow::Result<String> {
                let path = path
                    .as_ref()
                    .context("a separate bank needs every --*-url and token file")?;
                trust::secret::read_token(path)
                    .with_context(|| format!("could not read the token in {}", path.display()))
            };
            let urls = ServiceUrls {
                users: users.clone(),
                accounts: args.accounts_url.clone().unwrap_or_default(),
                transactions: args.transactions_url.clone().unwrap_or_default(),
                reporting: args.reporting_url.clone().unwrap_or_default(),
                nectar: args.nectar_url.clone(),
            };
            let services = Services::new(urls, read(&args.caller_token_file)?);
            let bus_url = args.bus_url.clone().unwrap_or_default();
            let (bus_token, staff_token) = (
                read(&args.bus_token_file)?,
                read(&args.staff_bus_token_file)?,
            );
            (None, services, bus_url, bus_token, staff_token, None)
        }
        None => {
            let trust_dir = args.state_dir.join("trust");
            let bundle = embedded::trust_bundle(&trust_dir)?;
            let logins = DemoLogins::load_or_create(&args.state_dir)?;
            let bank = EmbeddedBank::start(database_url, &bundle, &logins).await?;
            let services = Services::new(bank.urls.clone(), bank.caller_token.clone());
            let (bus_url, bus_token) = (bank.bus_url.clone(), bank.web_bus_token.clone());
            if demo::bank_is_new(&bus_url, &bus_token).await? {
                tracing::info!("a new bank: seeding the demo customers");
                demo::seed(&services, &logins)
                    .await
                    .context("could not seed the demo data")?;
            }
            let staff_token = bank.staff_bus_token.clone();
            (
                Some(bank),
                services,
                bus_url,
                bus_token,
                staff_token,
                Some(logins),
            )
        }
    };

    let hub = LiveHub::default();
    let bus_staff = BusStaff::new(&bus_url, staff_token);
    let stop_observing = tokio_util::sync::CancellationToken::new();
    let observer = tokio::spawn(live::observe(
        bus_url,
        bus_token,
        services.offers_points(),
        hub.clone(),
        stop_observing.clone(),
    ));
    let sessions = session::store(pool.clone()).await?;
    let state = AppState {
        leptos_options: leptos_options.clone(),
        pool: pool.clone(),
        services,
        live: hub,
        sessions: sessions.clone(),
        bus_staff,
    };

    let listener = tokio::net::TcpListener::bind(leptos_options.site_addr)
        .await
        .with_context(|| format!("could not listen on {}", leptos_options.site_addr))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "serving");
    announce(address, demo_logins.as_ref());

    // Nagle off: live notes and pages leave as soon as they are written.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let served = axum::serve(
        listener,
        routes::router(state, session::layer(sessions, args.secure_cookies))
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("the server failed");
    stop_observing.cancel();
    match observer.await {
        Ok(Err(error)) => tracing::warn!(error = format!("{error:#}"), "the live observer stopped"),
        Err(error) => tracing::warn!(%error, "the live observer panicked"),
        Ok(Ok(())) => {}
    }
    if let Some(bank) = embedded
        && let Some(error) = bank.stop().await
    {
        tracing::error!(
            error = format!("{error:#}"),
            "the embedded bank stopped with an error"
        );
    }
    pool.close().await;
    tracing::info!("stopped");
    served
}

/// Tells whoever started the server where it is (the first line of stdout)
/// and the demo log-ins. One write, and a closed stdout is no reason to stop.
fn announce(address: SocketAddr, demo_logins: Option<&DemoLogins>) {
    use std::io::Write;
    let mut text = format!("Ledgerline is up at http://{address}\n");
    if let Some(logins) = demo_logins {
        text.push_str(&logins.describe());
        text.push('\n');
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
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
