//! What a service declares, and what its decisions emit.

use std::future::Future;

use bus::protocol::{ConsistencyValue, EventRecord};
use serde_json::value::RawValue;
use sqlx::PgConnection;

use crate::context::Ctx;

/// A service: its name, the events it handles, its schema and its routes.
///
/// Every event type it takes is either *applied* (a fact that updates its
/// tables, [`Service::apply`]) or *reacted to* (a command that it answers by
/// publishing new events, [`Service::react`]); never both.
///
/// Changing [`Service::applies`] rebuilds the service's tables from the
/// log at the next start (so a type added later gets its history); stop
/// the instances of the old version first.
pub trait Service: Send + Sync + Sized + 'static {
    /// The client type on the bus, and the name of the Postgres schema.
    /// Methods rather than constants: a scripted service learns them from
    /// its script when it starts.
    fn name(&self) -> &'static str;
    /// The port its HTTP API listens on unless told otherwise.
    fn default_port(&self) -> u16;
    /// The event types applied to the service's tables.
    fn applies(&self) -> &'static [&'static str];
    /// The event types the service reacts to by deciding and publishing.
    fn reacts_to(&self) -> &'static [&'static str] {
        &[]
    }

    /// The service's own migrations; they run with the service's schema as
    /// the search path, so they create unqualified tables there.
    fn migrator(&self) -> &'static sqlx::migrate::Migrator;

    /// Applies one event to the tables, inside the framework's transaction.
    /// The framework has checked that it is exactly its key's next event.
    fn apply(
        &self,
        db: &mut PgConnection,
        event: &EventRecord,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Applies `events` in order, inside the framework's transaction; each
    /// is exactly its key's next event. The default applies them one by
    /// one; a service overrides it to apply a whole batch with a few
    /// set-based statements (a rebuild hands it hundreds of events at
    /// once). When a batch fails, the framework applies its events one per
    /// transaction to find the one at fault.
    fn apply_all(
        &self,
        db: &mut PgConnection,
        events: &[&EventRecord],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send {
        async move {
            for event in events {
                self.apply(db, event).await?;
            }
            Ok(())
        }
    }

    /// Decides what a command event leads to, reading the tables through
    /// `db` (no transaction is open: nothing may wait on the bus inside
    /// one). May run more than once for one event (after `inconsistent`,
    /// after a redelivery): it must decide from what it reads, nothing else.
    fn react(
        &self,
        db: &mut PgConnection,
        event: &EventRecord,
    ) -> impl Future<Output = Result<Reaction, HandlerError>> + Send {
        let _ = (db, event);
        async { Ok(Reaction::default()) }
    }

    /// Decides what each of `commands` leads to, as [`Service::react`]
    /// does, one outcome per command in order. The default decides them
    /// one by one; a service overrides it to read what they all need with
    /// one query. An override may also decide each command on the state
    /// the decisions before it leave (the balance after the transfer
    /// before), saying so by the versions it reads: the framework then
    /// publishes those decisions together, in one message.
    fn react_all(
        &self,
        db: &mut PgConnection,
        commands: &[&EventRecord],
    ) -> impl Future<Output = Vec<Result<Reaction, HandlerError>>> + Send {
        async move {
            let mut reactions = Vec::with_capacity(commands.len());
            for command in commands {
                reactions.push(self.react(db, command).await);
            }
            reactions
        }
    }

    /// The HTTP API; the framework requires a caller token on every route.
    fn routes(&self) -> axum::Router<Ctx<Self>>;
}

/// Why a handler failed. A live event is nacked and, after the bus's
/// `max_deliveries`, parked (which holds its key's later events back).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("the event's data is not a valid {event_type}: {message}")]
    BadData { event_type: String, message: String },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Other(String),
}

impl HandlerError {
    pub fn bad_data(event: &EventRecord, error: impl std::fmt::Display) -> Self {
        Self::BadData {
            event_type: event.event_type.clone(),
            message: error.to_string(),
        }
    }

    /// Refuses data about another key than the one it was written under
    /// (money booked on `acc-7` is account 7's).
    pub fn check_key(event: &EventRecord, data_key: &str) -> Result<(), Self> {
        if data_key == event.consistency.key {
            Ok(())
        } else {
            Err(Self::bad_data(
                event,
                format!(
                    "its data belongs to {data_key}, not {}",
                    event.consistency.key
                ),
            ))
        }
    }
}

/// The consistency value an emitted event claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this value: the key's next one as the decision saw it.
    Value(i64),
    /// Whatever is next: for keys nobody races on. Such events are not
    /// applied locally at once; they are applied when delivered.
    Any,
}

impl Expect {
    /// The value after `version` (the key's last applied value; `None`: the key is new).
    pub fn after(version: Option<i64>) -> Self {
        Self::Value(version.map_or(0, |v| v + 1))
    }
}

/// An event a decision publishes. The framework adds its id, correlation
/// and causation.
#[derive(Debug, Clone)]
pub struct Emit {
    pub event_type: String,
    pub key: String,
    pub expect: Expect,
    pub data: Box<RawValue>,
}

impl Emit {
    pub fn new(
        event_type: &str,
        key: String,
        expect: Expect,
        data: &impl serde::Serialize,
    ) -> Result<Self, HandlerError> {
        let data = serde_json::value::to_raw_value(data)
            .map_err(|e| HandlerError::Other(format!("could not encode {event_type}: {e}")))?;
        Ok(Self {
            event_type: event_type.to_owned(),
            key,
            expect,
            data,
        })
    }

    pub(crate) fn consistency_value(&self) -> ConsistencyValue {
        match self.expect {
            Expect::Value(value) => ConsistencyValue::Explicit(value),
            Expect::Any => ConsistencyValue::Implicit,
        }
    }
}

/// What a reaction decided: the events to publish (none: nothing to do),
/// and the keys it read, each at the version it saw. A read its own
/// events pin with an explicit value needs no more; the others (a
/// rejection reads balances without writing them) the framework confirms
/// with the bus before publishing, and decides again when one was not
/// current. The versions also say which decisions of a round build on
/// each other (see [`crate::chain`]).
#[derive(Debug, Clone, Default)]
pub struct Reaction {
    pub emits: Vec<Emit>,
    pub reads: Vec<Read>,
}

/// A key a decision read, at the version it saw (`None`: no event yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub key: String,
    pub version: Option<i64>,
}
