//! A script as a [`Service`]: the framework does everything it does for
//! a Rust service (rebuild, gap-free exactly-once claims, batches, acks,
//! redelivery, correlation and causation, metrics, credentials), and
//! calls the script where a Rust service's code would run.

use std::{path::Path, sync::Arc};

use sqlx::PgConnection;
use superclient::{Ctx, EventRecord, HandlerError, Reaction, Service};

use crate::{
    db::{self, Connection, InTransaction, Snapshot},
    error::ScriptError,
    limits::Limits,
    pool::{Pool, Turn},
    routes,
    vm::{Source, Target},
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The port a script that names none listens on.
pub const DEFAULT_PORT: u16 = 8090;

pub struct Scripted {
    name: &'static str,
    port: u16,
    applies: &'static [&'static str],
    reacts_to: &'static [&'static str],
    pub(crate) pool: Arc<Pool>,
}

impl Scripted {
    /// Loads the script at `path`; `vms` calls may run at once.
    pub fn load(path: &Path, limits: Limits, vms: usize) -> Result<Self, ScriptError> {
        let code = std::fs::read_to_string(path).map_err(|error| {
            ScriptError::Load(format!("could not read {}: {error}", path.display()))
        })?;
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "script.lua".to_owned());
        Self::from_source(Source { name, code }, limits, vms)
    }

    pub fn from_source(source: Source, limits: Limits, vms: usize) -> Result<Self, ScriptError> {
        let pool = Pool::new(source, limits, vms)?;
        let declared = pool.declared().clone();
        // The framework names a service with `&'static str`s; a script's
        // names are read once at start and live as long as the process.
        let leak = |names: Vec<String>| -> &'static [&'static str] {
            let names: Vec<&'static str> = names
                .into_iter()
                .map(|name| &*Box::leak(name.into_boxed_str()))
                .collect();
            Box::leak(names.into_boxed_slice())
        };
        Ok(Self {
            name: Box::leak(declared.name.into_boxed_str()),
            port: declared.port.unwrap_or(DEFAULT_PORT),
            applies: leak(declared.applies),
            reacts_to: leak(declared.reacts_to),
            pool: Arc::new(pool),
        })
    }
}

/// A handler's failure as the framework reports it: the event is nacked,
/// and the traceback is in the log.
fn handler_failed(event: &EventRecord, error: &ScriptError) -> HandlerError {
    tracing::error!(
        position = event.position,
        event_type = %event.event_type,
        key = %event.consistency.key,
        "the script failed on an event:\n{error}"
    );
    HandlerError::Other(format!(
        "the script failed on {}: {error}",
        event.event_type
    ))
}

impl Service for Scripted {
    fn name(&self) -> &'static str {
        self.name
    }

    fn default_port(&self) -> u16 {
        self.port
    }

    fn applies(&self) -> &'static [&'static str] {
        self.applies
    }

    fn reacts_to(&self) -> &'static [&'static str] {
        self.reacts_to
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    async fn apply(&self, db: &mut PgConnection, event: &EventRecord) -> Result<(), HandlerError> {
        self.apply_all(db, &[event]).await
    }

    /// One call of the pool for the whole batch, and one flush of the
    /// store's writes.
    async fn apply_all(
        &self,
        db: &mut PgConnection,
        events: &[&EventRecord],
    ) -> Result<(), HandlerError> {
        let owned: Vec<EventRecord> = events.iter().map(|event| (*event).clone()).collect();
        let mut answerer = InTransaction { db: &mut *db };
        let applied = self
            .pool
            .run(Turn::Apply, &mut answerer, move |vm, bridge| {
                vm.apply(bridge, &owned)
            })
            .await;
        let writes = match applied {
            Ok(Ok(writes)) => writes,
            Ok(Err((index, error))) => return Err(handler_failed(events[index], &error)),
            Err(error) => return Err(HandlerError::Other(error.to_string())),
        };
        db::flush(db, writes).await?;
        Ok(())
    }

    async fn react(
        &self,
        db: &mut PgConnection,
        event: &EventRecord,
    ) -> Result<Reaction, HandlerError> {
        let target = Target::React(event.clone());
        let mut snapshot = Snapshot::new(Connection::Held(Some(&mut *db)), None);
        let decided = self
            .pool
            .run(Turn::Decision, &mut snapshot, move |vm, bridge| {
                vm.decide(bridge, target)
            })
            .await;
        snapshot.close().await?;
        match decided {
            Ok(Ok(decision)) => Ok(Reaction {
                emits: decision.emits,
                reads: decision.reads,
            }),
            Ok(Err(error)) | Err(error) => Err(handler_failed(event, &error)),
        }
    }

    fn routes(&self) -> axum::Router<Ctx<Self>> {
        routes::router(&self.pool.declared().routes)
    }
}
