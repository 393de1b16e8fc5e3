//! The one-command bank: the bus and one instance of each service (users,
//! accounts, transactions, reporting, and Nectar's script), started
//! inside the web server's process. Each still speaks its real protocol on
//! loopback (the services reach the bus over its WebSocket, the web server
//! reaches the services over HTTP), with a full set of tokens and keys, so
//! the embedded bank behaves exactly like one run as separate processes.
//!
//! The tokens and keys are generated at the first start and kept (owner
//! only) in the state directory, so that sessions survive a restart.

use std::{path::Path, time::Duration};

use anyhow::Context;
use bus::{
    credentials::Access,
    protocol::Limits,
    server::{
        self as bus_server, RunningBus,
        config::{BusConfig, DEFAULT_MAX_QUERIES, DeliveryConfig},
        writer::DEFAULT_KEY_CACHE,
    },
};
use scripted::{Scripted, Source};
use superclient::{Service, Settings};
use tokio::{sync::oneshot, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use trust::{bundle::Bundle, user_token::Issuer};
use users::{Passwords, StaffLogin};

use super::{demo::DemoLogins, services::ServiceUrls};

/// Nectar's script, built into the server so that the one-command bank
/// runs it without a file to find.
const NECTAR_SCRIPT: &str = include_str!("../../../services/nectar/nectar.lua");

/// Nectar's calls that may run at once.
const NECTAR_VMS: usize = 4;

/// What the web server needs of the bank it started.
pub struct EmbeddedBank {
    pub urls: ServiceUrls,
    pub bus_url: String,
    pub caller_token: String,
    pub web_bus_token: String,
    pub staff_bus_token: String,
    bus: RunningBus,
    services: Vec<JoinHandle<anyhow::Result<()>>>,
    shutdown: CancellationToken,
}

/// Loads the installation's tokens and keys from `dir`, or makes them.
pub fn trust_bundle(dir: &Path) -> anyhow::Result<Bundle> {
    if dir.join("callers.toml").exists() {
        return Bundle::read(dir)
            .with_context(|| format!("could not read the tokens and keys in {}", dir.display()));
    }
    let bundle = Bundle::generate();
    bundle
        .write(dir)
        .with_context(|| format!("could not write the tokens and keys to {}", dir.display()))?;
    Ok(bundle)
}

impl EmbeddedBank {
    /// Starts the bus, then the five services, and waits until each has
    /// rebuilt from the log and listens.
    pub async fn start(
        database_url: &str,
        bundle: &Bundle,
        demo: &DemoLogins,
    ) -> anyhow::Result<Self> {
        // Loaded first: a script that does not load stops nothing running.
        let nectar = Scripted::from_source(
            Source {
                name: "nectar.lua".to_owned(),
                code: NECTAR_SCRIPT.to_owned(),
            },
            scripted::Limits::default(),
            NECTAR_VMS,
        )
        .context("Nectar's script did not load")?;
        let bus = bus_server::start(
            BusConfig {
                database_url: database_url.to_owned(),
                access: Access::Tokens(bundle.bus_credentials()),
                limits: Limits::default(),
                delivery: DeliveryConfig::default(),
                key_cache: DEFAULT_KEY_CACHE,
                max_queries: DEFAULT_MAX_QUERIES,
            },
            "127.0.0.1:0",
            None,
        )
        .await
        .context("the embedded bus did not start")?;
        let bus_url = format!("ws://{}/bus", bus.address);
        let shutdown = CancellationToken::new();
        let settings = |name: &str| Settings {
            listen: Some("127.0.0.1:0".to_owned()),
            database_url: database_url.to_owned(),
            bus_url: bus_url.clone(),
            bus_token: bundle.bus_token(name).to_owned(),
            callers: bundle.callers(),
            user_tokens: bundle.verifier(),
            max_batch: 500,
            bus_deadline: Duration::from_secs(10),
        };

        let issuer = Issuer::from_pem(
            &bundle.user_keys.private_pem,
            trust::user_token::DEFAULT_LIFETIME,
        )?;
        let staff = StaffLogin::new(&demo.staff.username, &demo.staff.password)?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let users = users::Users::new(Some(staff), issuer, Passwords::new(cores));

        let mut services = Vec::new();
        let (users_task, users_at) = spawn(users, settings("users"), &shutdown);
        services.push(users_task);
        let (accounts_task, accounts_at) =
            spawn(accounts::Accounts, settings("accounts"), &shutdown);
        services.push(accounts_task);
        let (transactions_task, transactions_at) = spawn(
            transactions::Transactions::default(),
            settings("transactions"),
            &shutdown,
        );
        services.push(transactions_task);
        let (reporting_task, reporting_at) =
            spawn(reporting::Reporting, settings("reporting"), &shutdown);
        services.push(reporting_task);
        let (nectar_task, nectar_at) = spawn(nectar, settings("nectar"), &shutdown);
        services.push(nectar_task);

        let mut bank = Self {
            urls: ServiceUrls {
                users: String::new(),
                accounts: String::new(),
                transactions: String::new(),
                reporting: String::new(),
                nectar: None,
            },
            bus_url: bus_url.clone(),
            caller_token: bundle.caller_token("web").to_owned(),
            web_bus_token: bundle.bus_token("web").to_owned(),
            staff_bus_token: bundle.bus_token("staff").to_owned(),
            bus,
            services,
            shutdown,
        };
        let started = (
            users_at.await,
            accounts_at.await,
            transactions_at.await,
            reporting_at.await,
            nectar_at.await,
        );
        match started {
            (Ok(users), Ok(accounts), Ok(transactions), Ok(reporting), Ok(nectar)) => {
                bank.urls = ServiceUrls {
                    users: format!("http://{users}"),
                    accounts: format!("http://{accounts}"),
                    transactions: format!("http://{transactions}"),
                    reporting: format!("http://{reporting}"),
                    nectar: Some(format!("http://{nectar}")),
                };
                Ok(bank)
            }
            _ => {
                // A service gave up before listening: its task says why.
                let failure = bank.stop().await;
                Err(failure.unwrap_or_else(|| anyhow::anyhow!("an embedded service did not start")))
            }
        }
    }

    /// Stops the services, then the bus; returns the first failure, if any.
    pub async fn stop(self) -> Option<anyhow::Error> {
        self.shutdown.cancel();
        let mut failure = None;
        for task in self.services {
            let outcome = task
                .await
                .unwrap_or_else(|panic| Err(anyhow::anyhow!("a service panicked: {panic}")));
            if let Err(error) = outcome {
                tracing::error!(error = format!("{error:#}"), "an embedded service failed");
                failure.get_or_insert(error);
            }
        }
        self.bus.shutdown_token().cancel();
        self.bus.stopped().await;
        failure
    }
}

/// Runs one service instance; the receiver learns its HTTP address once
/// it has rebuilt and listens (or is dropped when it fails first).
fn spawn<S: Service>(
    service: S,
    settings: Settings,
    shutdown: &CancellationToken,
) -> (
    JoinHandle<anyhow::Result<()>>,
    oneshot::Receiver<std::net::SocketAddr>,
) {
    let (ready, address) = oneshot::channel();
    let shutdown = shutdown.clone();
    let name = service.name();
    let task = tokio::spawn(async move {
        superclient::run(service, settings, None, shutdown, move |at| {
            let _ = ready.send(at);
        })
        .await
        .with_context(|| format!("the {name} service"))
    });
    (task, address)
}
