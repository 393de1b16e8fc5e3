//! The bank under test: the real `bus`, `users`, `accounts`,
//! `transactions` and `reporting` binaries as processes on a database of
//! their own (on the shared server, or on a private [`Cluster`] that a test
//! may stop and restart), with freshly generated tokens and keys; HTTP
//! calls as the web server makes them (a caller token, a user token from a
//! real log-in, an idempotency key), and the load tool's client
//! ([`Bank::populate_client`]); and the bus's log as evidence. The
//! black-box tests in `tests/` (the fault tests R1–R4 in `faults.rs`) and
//! the benchmark `services-bench` use it.
//!
//! The binaries are taken from the target directory this crate was built
//! into: build them first (`cargo build -p bus -p users -p accounts
//! -p transactions -p reporting -p populate`, with `--release` for the
//! benchmark, and `cargo build -p app --features ssr --bin ledgerline` for
//! the web server's test and the private clusters); `./dev test` does.

mod api;
mod bank;
mod cluster;
mod process;

pub use api::{Api, Sessions};
pub use bank::{Bank, Trust, balances_from_log, money};
pub use cluster::Cluster;
pub use process::{Process, Service, binary};
pub use testkit::{PATIENCE, TestDb, eventually};

/// The password every test user signs up with.
pub const PASSWORD: &str = "correct horse battery";
/// The staff log-in the users service is started with.
pub const STAFF: (&str, &str) = ("staff", "staff password 1");
