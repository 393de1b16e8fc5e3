//! Scripted services: a Lua 5.4 script run as a full Ledgerline service.
//!
//! The script declares what it handles and serves; the framework
//! ([`superclient`]) does the rest exactly as for a Rust service. From the
//! bottom up:
//!
//! - [`error`], [`limits`]: what can go wrong, and the per-call limits on
//!   instructions and memory.
//! - [`decimal`], [`convert`]: exact money, and Lua values to and from JSON.
//! - [`call`], [`bridge`]: one call's state, and how a script on a
//!   blocking thread reaches the database the async side holds.
//! - [`api`]: the globals a script sees (`service`, `bus`, `store`, `log`,
//!   `http`, `decimal`).
//! - [`request`]: a route's request and answer.
//! - [`vm`]: the sandbox, loading a script, and calling its handlers;
//!   [`pool`]: a few VMs, lent one call at a time.
//! - [`db`]: the store's table and versions, in the framework's
//!   transaction or a snapshot.
//! - [`service`], [`routes`]: the script as a [`superclient::Service`].

pub mod api;
pub mod bridge;
pub mod call;
pub mod convert;
pub mod db;
pub mod decimal;
pub mod error;
pub mod limits;
pub mod pool;
pub mod request;
pub mod routes;
pub mod service;
pub mod vm;

pub use error::ScriptError;
pub use limits::Limits;
pub use service::Scripted;
pub use vm::Source;
