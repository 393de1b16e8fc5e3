//! The superclient: Ledgerline's service framework.
//!
//! A service is its business logic: the event types it applies to its
//! tables, the commands it reacts to, its HTTP routes and its Postgres
//! schema (the [`Service`] trait). Everything about the bus is here, once:
//!
//! - [`runtime`]: start-up (schema, rebuild from history, registration),
//!   the live loop, the HTTP server and graceful shutdown.
//! - [`rebuild`]: applying history after the last position applied.
//! - [`consumer`]: live events in batches, one transaction per batch, acks
//!   after the commit, nacks on failure.
//! - [`decide`]: publishing decisions with explicit consistency values and
//!   re-running them on fresh state after `inconsistent`.
//! - [`reactions`]: answering a batch's command events, their publishes
//!   committed together.
//! - [`applied`]: what the service's tables have applied, per key: the
//!   idempotency that makes redelivery and rebuild harmless.
//! - [`key_locks`]: one decision per key at a time within an instance.
//! - [`http`]: the service token, the acting user, correlation ids,
//!   errors as JSON, `/health` and `/metrics`.
//! - [`config`]: the command line and environment every service shares.
//!
//! The service's state is a cache of the events it has applied: dropping
//! its schema and starting again gives the same state.

pub mod applied;
pub mod config;
pub mod consumer;
pub mod decide;
pub mod http;
pub mod key_locks;
pub mod reactions;
pub mod rebuild;
pub mod runtime;
pub mod service;

pub use applied::value_of as consistency_value;
pub use bus::protocol::EventRecord;
pub use config::ServiceArgs;
pub use decide::{DecideError, Expect};
pub use http::{ActingUser, ApiError, CorrelationId};
pub use runtime::{Ctx, main, run};
pub use service::{Emit, HandlerError, Service};
