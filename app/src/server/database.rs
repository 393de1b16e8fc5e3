//! Connecting to Postgres and bringing its schemas up to date.

use std::time::Duration;

use sqlx::{
    Connection, PgPool,
    migrate::{MigrateDatabase, MigrateError},
    postgres::{PgConnectOptions, PgPoolOptions},
};

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    InvalidUrl(sqlx::Error),
    #[error("could not reach PostgreSQL at {target}: {source}")]
    Unreachable { target: String, source: sqlx::Error },
    #[error("could not create the database {database}: {source}")]
    Create {
        database: String,
        source: sqlx::Error,
    },
    #[error("could not apply the migrations: {0}")]
    Migrate(#[from] MigrateError),
}

/// The migrations of every component, in `migrations/` at the workspace root.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connects to the database at `url`, creating it when the server has no
/// such database yet, and applies any pending migration.
pub async fn connect(url: &str) -> Result<PgPool, DatabaseError> {
    let options: PgConnectOptions = url.parse().map_err(DatabaseError::InvalidUrl)?;
    let target = format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("(default database)")
    );
    let unreachable = |source| DatabaseError::Unreachable {
        target: target.clone(),
        source,
    };

    let exists = sqlx::Postgres::database_exists(url)
        .await
        .map_err(unreachable)?;
    if !exists {
        let database = options.get_database().unwrap_or_default().to_owned();
        tracing::info!(%database, "creating the database");
        sqlx::Postgres::create_database(url)
            .await
            .map_err(|source| DatabaseError::Create { database, source })?;
    }

    // No ping before every use (a round trip per page, for the session):
    // a connection that died meanwhile fails one query and is dropped.
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(unreachable)?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// True when the database answers a trivial query within `timeout`.
pub async fn answers(pool: &PgPool, timeout: Duration) -> bool {
    let probe = async {
        let mut connection = pool.acquire().await?;
        connection.ping().await
    };
    matches!(tokio::time::timeout(timeout, probe).await, Ok(Ok(())))
}
