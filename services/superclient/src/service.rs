//! What a service declares, and the events it emits.

use std::future::Future;

use bus::protocol::{ConsistencyValue, EventRecord};
use serde_json::value::RawValue;
use sqlx::PgConnection;

use crate::{decide::Expect, runtime::Ctx};

/// A service: its name, the events it handles, its schema and its routes.
///
/// Every event type it takes is either *applied* (a fact that updates its
/// tables, [`Service::apply`]) or *reacted to* (a command that it answers by
/// publishing new events, [`Service::react`]); never both.
pub trait Service: Send + Sync + Sized + 'static {
    /// The client type on the bus, and the name of the Postgres schema.
    const NAME: &'static str;
    /// The port its HTTP API listens on unless told otherwise.
    const DEFAULT_PORT: u16;
    /// The event types applied to the service's tables.
    const APPLIES: &'static [&'static str];
    /// The event types the service reacts to by deciding and publishing.
    const REACTS_TO: &'static [&'static str] = &[];

    /// The service's own migrations; they run with the service's schema as
    /// the search path, so they create unqualified tables there.
    fn migrator(&self) -> &'static sqlx::migrate::Migrator;

    /// Applies one event to the tables, inside the framework's transaction.
    /// The framework has already checked it was not applied before.
    fn apply(
        &self,
        db: &mut PgConnection,
        event: &EventRecord,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Decides what a command event leads to, reading the tables through
    /// `db`. May run more than once for one event (after `inconsistent`, or
    /// after a redelivery): it must decide from what it reads, nothing else.
    fn react(
        &self,
        db: &mut PgConnection,
        event: &EventRecord,
    ) -> impl Future<Output = Result<Vec<Emit>, HandlerError>> + Send {
        let _ = (db, event);
        async { Ok(Vec::new()) }
    }

    /// The HTTP API; the framework requires the service token on every route.
    fn routes(&self) -> axum::Router<Ctx<Self>>;
}

/// Why a handler failed. The event is nacked and, after the bus's
/// `max_deliveries`, parked.
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
