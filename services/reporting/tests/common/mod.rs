//! A known bank's log, and the reporting service running on it for real:
//! the events are written into the bus's log, the bus starts on it, and
//! the service rebuilds from it through the framework, as at any start.
#![allow(dead_code)] // each test file uses its own part of this module

pub mod fixture;

use std::{net::SocketAddr, time::Duration};

use bus::{
    credentials::Access,
    protocol::{EventRecord, Limits},
    server::{
        self as bus_server, RunningBus,
        config::{BusConfig, DEFAULT_MAX_QUERIES, DeliveryConfig},
        writer::DEFAULT_KEY_CACHE,
    },
};
use reporting::Reporting;
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};
use superclient::{Service, Settings};
use testkit::TestDb;
use tokio_util::sync::CancellationToken;
use trust::{
    bundle::Bundle,
    user_token::{Issuer, Role},
};

/// The bus and the reporting service on a database of their own, built
/// from `events`.
pub struct Console {
    pub base: String,
    pub http: reqwest::Client,
    caller_token: String,
    pub staff_token: String,
    pub customer_token: String,
    shutdown: CancellationToken,
    service: tokio::task::JoinHandle<anyhow::Result<()>>,
    bus: Option<RunningBus>,
    pub db: TestDb,
}

impl Console {
    pub async fn start(events: &[EventRecord]) -> Self {
        let db = TestDb::new().await;
        // The log first (the bus creates its schema), then the bus on it.
        let pool = bus::store::connect(&db.url, 2).await.expect("bus schema");
        let mut connection = pool.acquire().await.expect("connection");
        bus::store::events::append(&mut connection, events)
            .await
            .expect("write the log");
        drop(connection);
        pool.close().await;

        let bundle = Bundle::generate();
        let bus = bus_server::start(
            BusConfig {
                database_url: db.url.clone(),
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
        .expect("the bus starts");
        let settings = Settings {
            listen: Some("127.0.0.1:0".to_owned()),
            database_url: db.url.clone(),
            bus_url: format!("ws://{}/bus", bus.address),
            // The reporting scope of the default table: reads all but UserCreated.
            bus_token: bundle.bus_token("reporting").to_owned(),
            callers: bundle.callers(),
            user_tokens: bundle.verifier(),
            max_batch: 500,
            bus_deadline: Duration::from_secs(10),
        };
        let shutdown = CancellationToken::new();
        let (ready, address) = tokio::sync::oneshot::channel::<SocketAddr>();
        let service = tokio::spawn(superclient::run(
            Reporting,
            settings,
            None,
            shutdown.clone(),
            move |at| {
                let _ = ready.send(at);
            },
        ));
        let address = tokio::time::timeout(testkit::PATIENCE, address)
            .await
            .expect("the service starts in time")
            .expect("the service starts");
        let issuer = Issuer::from_pem(
            &bundle.user_keys.private_pem,
            trust::user_token::DEFAULT_LIFETIME,
        )
        .expect("issuer");
        let now = chrono::Utc::now();
        let token = |name: &str, role| issuer.issue(name, role, now).expect("token").token;
        Self {
            base: format!("http://{address}"),
            http: reqwest::Client::new(),
            caller_token: bundle.caller_token("web").to_owned(),
            staff_token: token("staff", Role::Staff),
            customer_token: token("alice", Role::Customer),
            shutdown,
            service,
            bus: Some(bus),
            db,
        }
    }

    /// `GET path` as `user_token`: the status and the JSON body.
    pub async fn get_as(&self, path: &str, user_token: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.caller_token)
            .header("x-user-token", user_token)
            .send()
            .await
            .expect("the service answers");
        let status = response.status().as_u16();
        let body = response.json().await.expect("a JSON body");
        (status, body)
    }

    /// `GET path` as staff, expecting 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.get_as(path, &self.staff_token).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// `GET path` as staff, expecting `status`; the error's message.
    pub async fn refused(&self, path: &str, status: u16) -> String {
        let (got, body) = self.get_as(path, &self.staff_token).await;
        assert_eq!(got, status, "GET {path}: {body}");
        body["error"]["message"]
            .as_str()
            .expect("an error message")
            .to_owned()
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let _ = (&mut self.service).await;
        if let Some(bus) = self.bus.take() {
            bus.stop().await;
        }
    }
}

/// A connection to `url` with the reporting schema migrated, as its search path.
pub async fn migrated(url: &str) -> PgConnection {
    let mut connection = PgConnection::connect(url).await.expect("connect");
    connection
        .execute("CREATE SCHEMA reporting; SET search_path TO reporting")
        .await
        .expect("schema");
    Reporting
        .migrator()
        .run_direct(&mut connection)
        .await
        .expect("migrate");
    connection
}
