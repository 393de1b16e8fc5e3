//! The bus's Postgres store (schema `bus`).
//!
//! [`events`] is the log: appends by the single writer, pages read back for
//! catch-up and queries, and the look-ups staff reporting needs.
//! [`subscriptions`] is the durable state of consume-mode delivery: which
//! client types are owed which events, how far they have acknowledged, what
//! failed and what is parked or blocked. [`parking`] is what staff see of
//! parked events and decide about them.

pub mod events;
pub mod parking;
pub mod subscriptions;

use std::time::Duration;

use sqlx::{
    PgPool,
    migrate::{MigrateDatabase, MigrateError},
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// The migrations of every component (`migrations/` at the workspace root).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    InvalidUrl(sqlx::Error),
    #[error("the database failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("could not apply the migrations: {0}")]
    Migrate(#[from] MigrateError),
    #[error("stored event {position} holds invalid JSON: {source}")]
    CorruptData {
        position: i64,
        source: serde_json::Error,
    },
}

/// The connection settings in `url`.
pub fn connect_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    url.parse().map_err(StoreError::InvalidUrl)
}

/// Connects to `url` (creating the database when missing) and migrates it.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    let options = connect_options(url)?;
    if !sqlx::Postgres::database_exists(url).await? {
        sqlx::Postgres::create_database(url).await?;
    }
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}
