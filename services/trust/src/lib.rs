//! Who may do what in Ledgerline ("Who may do what" in ARCHITECTURE.md).
//!
//! - [`scopes`]: the default scope table: which program may publish and
//!   read which events on the bus.
//! - [`secret`]: random tokens.
//! - [`callers`]: the programs that may call a service's HTTP API, each
//!   known by the digest of its caller token.
//! - [`user_token`]: the short-lived signed token (EdDSA) that names a user
//!   or a staff member; only the users service holds the signing key.
//! - [`bundle`]: a complete set of tokens and keys, generated: for tests,
//!   the embedded system, and production (`ledgerline-trust generate`).

pub mod bundle;
pub mod callers;
pub mod scopes;
pub mod secret;
pub mod user_token;
