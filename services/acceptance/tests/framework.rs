//! The framework's own promises, with a service written for the test and
//! run in this process against the real bus: the rebuild mark moves with
//! live applies (a restart does not read everything again), and a type
//! added to a service's `APPLIES` later gets its history.

use std::time::Duration;

use acceptance::{Bank, eventually};
use bus::{
    client::{BusClient, Publish},
    protocol::{ConsistencyValue, ReceiptStatus},
};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use superclient::{Ctx, EventRecord, HandlerError, Service, Settings};
use tokio_util::sync::CancellationToken;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("tests/tally_migrations");

/// Counts what it applies, per type and key. The first version applies
/// apples only; the second apples and bananas.
struct Apples;
struct ApplesAndBananas;

async fn tally(db: &mut PgConnection, event: &EventRecord) -> Result<(), HandlerError> {
    sqlx::query(
        "INSERT INTO tallies (event_type, key, applied) VALUES ($1, $2, 1)
         ON CONFLICT (event_type, key) DO UPDATE SET applied = tallies.applied + 1",
    )
    .bind(&event.event_type)
    .bind(&event.consistency.key)
    .execute(&mut *db)
    .await?;
    Ok(())
}

impl Service for Apples {
    fn name(&self) -> &'static str {
        "tally"
    }
    fn default_port(&self) -> u16 {
        0
    }
    fn applies(&self) -> &'static [&'static str] {
        &["Apple"]
    }
    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }
    async fn apply(&self, db: &mut PgConnection, event: &EventRecord) -> Result<(), HandlerError> {
        tally(db, event).await
    }
    fn routes(&self) -> axum::Router<Ctx<Self>> {
        axum::Router::new()
    }
}

impl Service for ApplesAndBananas {
    fn name(&self) -> &'static str {
        "tally"
    }
    fn default_port(&self) -> u16 {
        0
    }
    fn applies(&self) -> &'static [&'static str] {
        &["Apple", "Banana"]
    }
    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }
    async fn apply(&self, db: &mut PgConnection, event: &EventRecord) -> Result<(), HandlerError> {
        tally(db, event).await
    }
    fn routes(&self) -> axum::Router<Ctx<Self>> {
        axum::Router::new()
    }
}

/// A running test service, stopped with [`Running::stop`].
struct Running {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn start<S: Service>(bank: &Bank, service: S) -> Self {
        let settings = Settings {
            listen: Some("127.0.0.1:0".into()),
            database_url: bank.db.url.clone(),
            bus_url: bank.bus.bus_url(),
            // The test service is in no scope table: the development token.
            bus_token: bank.trust.admin_token.clone(),
            callers: bank.trust.bundle.callers(),
            user_tokens: bank.trust.bundle.verifier(),
            max_batch: 500,
            bus_deadline: Duration::from_secs(5),
        };
        let shutdown = CancellationToken::new();
        let (ready, started) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(superclient::run(
            service,
            settings,
            None,
            shutdown.clone(),
            move |_| {
                let _ = ready.send(());
            },
        ));
        started.await.expect("the service starts");
        Self { shutdown, task }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("ran").expect("stopped cleanly");
    }
}

async fn publish(bank: &Bank, event_type: &str, count: usize) {
    let (client, _) = BusClient::connect(bank.bus_config(None))
        .await
        .expect("connect");
    for n in 0..count {
        let event = Publish::new(
            event_type,
            format!("{}-{}", event_type.to_lowercase(), n % 3),
            ConsistencyValue::Implicit,
            &json!({"n": n}),
        )
        .expect("encode");
        let receipt = client.publish(vec![event]).await.expect("a receipt");
        assert_eq!(receipt.status, ReceiptStatus::Success);
    }
    client.close();
}

async fn tallied(pool: &PgPool, event_type: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(applied), 0)::bigint FROM tally.tallies WHERE event_type = $1",
    )
    .bind(event_type)
    .fetch_one(pool)
    .await
    .unwrap_or(0)
}

async fn head(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM bus.events")
        .fetch_one(pool)
        .await
        .expect("the head")
}

#[tokio::test]
async fn the_rebuild_mark_moves_with_live_applies() {
    let bank = Bank::start().await;
    let pool = bank.db.pool().await;
    let service = Running::start(&bank, Apples).await;
    publish(&bank, "Apple", 60).await;
    eventually("the apples applied live", || async {
        (tallied(&pool, "Apple").await == 60).then_some(())
    })
    .await;
    service.stop().await;
    let mark: i64 = sqlx::query_scalar("SELECT rebuilt_through FROM tally.rebuild_progress")
        .fetch_one(&pool)
        .await
        .unwrap();
    let last_apple: i64 =
        sqlx::query_scalar("SELECT max(position) FROM bus.events WHERE event_type = 'Apple'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        mark >= last_apple,
        "a restart would read history again from {mark}, though everything up to {last_apple} is applied"
    );
    // Started again: nothing applied twice, and it goes on.
    let service = Running::start(&bank, Apples).await;
    publish(&bank, "Apple", 3).await;
    eventually("the new apples applied", || async {
        (tallied(&pool, "Apple").await == 63).then_some(())
    })
    .await;
    service.stop().await;
}

#[tokio::test]
async fn a_type_added_to_applies_later_gets_its_history() {
    let bank = Bank::start().await;
    let pool = bank.db.pool().await;
    let service = Running::start(&bank, Apples).await;
    publish(&bank, "Apple", 5).await;
    publish(&bank, "Banana", 7).await;
    eventually("the apples applied", || async {
        (tallied(&pool, "Apple").await == 5).then_some(())
    })
    .await;
    service.stop().await;
    assert_eq!(tallied(&pool, "Banana").await, 0);
    assert!(head(&pool).await > 0);

    let service = Running::start(&bank, ApplesAndBananas).await;
    eventually("the bananas' history applied", || async {
        (tallied(&pool, "Banana").await == 7).then_some(())
    })
    .await;
    assert_eq!(tallied(&pool, "Apple").await, 5, "and the apples once");
    publish(&bank, "Banana", 1).await;
    eventually("a new banana applied live", || async {
        (tallied(&pool, "Banana").await == 8).then_some(())
    })
    .await;
    service.stop().await;
}

#[tokio::test]
async fn an_event_beyond_its_keys_next_catches_the_key_up_and_is_never_applied_over_the_gap() {
    let bank = Bank::start().await;
    let pool = bank.db.pool().await;
    let service = Running::start(&bank, Apples).await;
    let (client, _) = BusClient::connect(bank.bus_config(None))
        .await
        .expect("connect");
    let apple = |value: i64| {
        Publish::new(
            "Apple",
            "apple-k",
            ConsistencyValue::Explicit(value),
            &json!({"n": value}),
        )
        .expect("encode")
    };
    for value in 0..2 {
        client.publish(vec![apple(value)]).await.expect("a receipt");
    }
    eventually("both applied", || async {
        (tallied(&pool, "Apple").await == 2).then_some(())
    })
    .await;
    service.stop().await;
    // The tables lose the second event (as if it had never been applied).
    let first: i64 = sqlx::query_scalar(
        "SELECT position FROM bus.events WHERE consistency_key = 'apple-k' AND consistency_value = 0",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE tally.applied_keys SET value = 0, position = $1 WHERE key = 'apple-k'")
        .bind(first)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE tally.tallies SET applied = 1 WHERE key = 'apple-k'")
        .execute(&pool)
        .await
        .unwrap();

    // The third comes live: the service catches the second up first.
    let service = Running::start(&bank, Apples).await;
    client.publish(vec![apple(2)]).await.expect("a receipt");
    eventually("the key caught up, then the third applied", || async {
        let value: i64 =
            sqlx::query_scalar("SELECT value FROM tally.applied_keys WHERE key = 'apple-k'")
                .fetch_one(&pool)
                .await
                .ok()?;
        (value == 2).then_some(())
    })
    .await;
    assert_eq!(
        tallied(&pool, "Apple").await,
        3,
        "the second applied again, then the third"
    );
    client.close();
    service.stop().await;
}
