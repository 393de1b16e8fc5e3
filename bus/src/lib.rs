//! Ledgerline's event bus: the single source of truth.
//!
//! - [`protocol`]: the wire protocol's messages and their validation
//!   (`bus/PROTOCOL.md`), shared by server and client.
//! - [`store`]: the Postgres store: the event log and durable subscriptions.
//! - [`server`]: the bus server: group-committing writer, consume and
//!   observe delivery, streamed queries, HTTP endpoints.
//! - [`client`]: the Rust client library the services and the web server use.
//! - [`credentials`]: tokens and what each may do (register, publish, read,
//!   staff).
//! - [`signal`]: waiting for Ctrl-C or SIGTERM.

pub mod client;
pub mod credentials;
pub mod protocol;
pub mod server;
pub mod signal;
pub mod store;
