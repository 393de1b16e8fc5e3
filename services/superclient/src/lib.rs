//! The superclient: Ledgerline's service framework.
//!
//! A service is its business logic: the event types it applies to its
//! tables, the commands it reacts to, its HTTP routes and its Postgres
//! schema (the [`Service`] trait). Everything about the bus is here, once.
//! From the bottom up (each module uses only those above it):
//!
//! - [`service`]: what a service declares and what its decisions emit.
//! - [`origin`]: correlation ids, causation, and event ids derived from the
//!   event or the request that caused them.
//! - [`spans`], [`transient`]: tracing spans of events; which database
//!   errors are worth trying again.
//! - [`applied`]: what the tables have applied, per key: gap-free,
//!   exactly-once claims, locked in key order.
//! - [`context`]: what the parts share ([`Ctx`]).
//! - [`publish`]: publishing events and reading the receipt.
//! - [`apply`]: applying events in transactions, catching keys up from the
//!   bus, making keys current.
//! - [`rebuild`], [`consumer`], [`reactions`]: history at start, live
//!   events in batches, answers to commands; [`chain`]: a round's
//!   decisions that build on each other, published as one message.
//! - [`decide`]: an HTTP request's decision, published safely.
//! - [`idempotency`]: `Idempotency-Key`: one outcome however often a
//!   request is sent.
//! - [`key_locks`]: one decision per key at a time within an instance.
//! - [`http`]: caller tokens, user tokens, correlation ids, errors as
//!   JSON, `/health` and `/metrics`.
//! - [`config`], [`runtime`]: the settings every service shares; start-up
//!   and shutdown.
//!
//! The service's state is a cache of the events it has applied: dropping
//! its schema and starting again gives the same state.

pub mod applied;
pub mod apply;
pub mod chain;
pub mod config;
pub mod consumer;
pub mod context;
pub mod decide;
pub mod http;
pub mod idempotency;
pub mod key_locks;
pub mod origin;
pub mod publish;
pub mod reactions;
pub mod rebuild;
pub mod runtime;
pub mod service;
pub mod spans;
pub mod transient;

pub use applied::value_of as consistency_value;
pub use bus::protocol::EventRecord;
pub use config::{ServiceArgs, Settings};
pub use context::Ctx;
pub use decide::DecideError;
pub use http::{ActingUser, ApiError, Caller, ClientAddress};
pub use idempotency::{Begin, Idempotency, IdempotencyKey};
pub use origin::CorrelationId;
pub use runtime::{main, run};
pub use service::{Emit, Expect, HandlerError, Reaction, Read, Service};
