//! The async side of a call: the store's table and the framework's
//! versions, read in the framework's transaction (applying) or in a
//! snapshot (deciding), and a batch's writes, flushed set-based.

use std::collections::HashSet;

use serde_json::{Map, Value};
use sqlx::{Connection as _, PgConnection, PgPool, Postgres, Transaction};
use superclient::Ctx;

use crate::{
    api::store::MAX_SCAN,
    bridge::{Answer, Answerer, AskError, Query},
    call::Writes,
    service::Scripted,
};

fn failed(error: sqlx::Error) -> AskError {
    AskError::Failed(error.to_string())
}

async fn get(db: &mut PgConnection, key: &str) -> Result<Answer, AskError> {
    let value: Option<Value> = sqlx::query_scalar("SELECT value FROM store WHERE key = $1")
        .bind(key)
        .fetch_optional(db)
        .await
        .map_err(failed)?;
    Ok(Answer::Value(value))
}

async fn scan(db: &mut PgConnection, prefix: &str) -> Result<Answer, AskError> {
    // The column's "C" collation makes a LIKE prefix a range of its index.
    let pattern = format!(
        "{}%",
        prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let entries: Vec<(String, Value)> = sqlx::query_as(
        "SELECT key, value FROM store WHERE key LIKE $1 ESCAPE '\\' ORDER BY key LIMIT $2",
    )
    .bind(pattern)
    .bind(MAX_SCAN as i64 + 1)
    .fetch_all(db)
    .await
    .map_err(failed)?;
    Ok(Answer::Entries(entries))
}

async fn version(db: &mut PgConnection, key: &str) -> Result<Answer, AskError> {
    let value: Option<i64> =
        sqlx::query_scalar("SELECT value FROM applied_keys WHERE key = $1 AND value >= 0")
            .bind(key)
            .fetch_optional(db)
            .await
            .map_err(failed)?;
    Ok(Answer::Version(value))
}

/// Writes a batch's store changes: one upsert and one delete.
pub(crate) async fn flush(db: &mut PgConnection, writes: Writes) -> Result<(), sqlx::Error> {
    let mut puts = Map::new();
    let mut deletes = Vec::new();
    for (key, value) in writes {
        match value {
            Some(value) => {
                puts.insert(key, value);
            }
            None => deletes.push(key),
        }
    }
    if !deletes.is_empty() {
        sqlx::query("DELETE FROM store WHERE key = ANY($1)")
            .bind(&deletes)
            .execute(&mut *db)
            .await?;
    }
    if !puts.is_empty() {
        sqlx::query(
            "INSERT INTO store (key, value) SELECT key, value FROM jsonb_each($1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(Value::Object(puts))
        .execute(&mut *db)
        .await?;
    }
    Ok(())
}

/// Applying: everything inside the framework's transaction.
pub(crate) struct InTransaction<'c> {
    pub db: &'c mut PgConnection,
}

impl Answerer for InTransaction<'_> {
    async fn answer(&mut self, query: Query) -> Result<Answer, AskError> {
        match query {
            Query::Get(key) => get(self.db, &key).await,
            Query::Scan(prefix) => scan(self.db, &prefix).await,
            Query::Version(_) => Err(AskError::Refused(
                "bus:version is for decisions; an applied event carries its own: event.value"
                    .to_owned(),
            )),
        }
    }
}

/// Deciding: every read of one call from one snapshot, so that a version
/// and the values it stands for agree.
///
/// A route's decision also brings the keys it asks versions of up to date
/// with the bus first, so that it never refuses on old state. That must
/// happen before its snapshot is taken: a key asked for after the store was
/// read stops the call ([`AskError::NeedsSync`]), and it runs again with
/// the key brought up to date beforehand.
pub(crate) struct Snapshot<'c> {
    db: Connection<'c>,
    /// Open from the first read on. A transaction of sqlx's own: a call
    /// abandoned half-way rolls it back, so no connection goes back to the
    /// pool inside a read-only snapshot.
    open: Option<Transaction<'c, Postgres>>,
    sync: Option<Refresh<'c>>,
}

/// Where a snapshot reads: a connection the caller holds (a reaction's),
/// or one taken from the pool at the first read. A route takes it only
/// then, inside the call's turn on a VM: requests waiting for a VM hold
/// no connection, so they cannot starve the calls that run of the
/// connections that bringing keys up to date needs.
pub(crate) enum Connection<'c> {
    Held(Option<&'c mut PgConnection>),
    Pooled(PgPool),
}

const SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

pub(crate) struct Refresh<'c> {
    pub ctx: Ctx<Scripted>,
    pub synced: &'c mut HashSet<String>,
}

impl<'c> Snapshot<'c> {
    pub(crate) fn new(db: Connection<'c>, sync: Option<Refresh<'c>>) -> Self {
        Self {
            db,
            open: None,
            sync,
        }
    }

    /// The snapshot's connection, in its transaction.
    async fn begin(&mut self) -> Result<&mut PgConnection, AskError> {
        if self.open.is_none() {
            let begun = match &mut self.db {
                Connection::Held(db) => match db.take() {
                    Some(db) => db.begin_with(SNAPSHOT).await,
                    None => return Err(AskError::Failed("the connection was used up".to_owned())),
                },
                Connection::Pooled(pool) => pool.begin_with(SNAPSHOT).await,
            };
            self.open = Some(begun.map_err(failed)?);
        }
        match &mut self.open {
            Some(tx) => Ok(&mut **tx),
            None => Err(AskError::Failed("the snapshot did not open".to_owned())),
        }
    }

    /// Ends the snapshot (it wrote nothing).
    pub(crate) async fn close(self) -> Result<(), sqlx::Error> {
        match self.open {
            Some(tx) => tx.rollback().await,
            None => Ok(()),
        }
    }
}

impl Answerer for Snapshot<'_> {
    async fn answer(&mut self, query: Query) -> Result<Answer, AskError> {
        if let (Query::Version(key), Some(sync)) = (&query, &mut self.sync)
            && !sync.synced.contains(key)
        {
            if self.open.is_some() {
                return Err(AskError::NeedsSync(key.clone()));
            }
            sync.ctx
                .refresh(std::slice::from_ref(key))
                .await
                .map_err(|error| AskError::Failed(error.to_string()))?;
            sync.synced.insert(key.clone());
        }
        let db = self.begin().await?;
        match query {
            Query::Get(key) => get(db, &key).await,
            Query::Scan(prefix) => scan(db, &prefix).await,
            Query::Version(key) => version(db, &key).await,
        }
    }
}
