//! The bank under test: the real `bus`, `users`, `accounts`,
//! `transactions` and `reporting` binaries as processes on a database of their own, with
//! freshly generated tokens and keys; HTTP calls as the web server makes
//! them (a caller token, a user token from a real log-in, an idempotency
//! key); and the bus's log as evidence. The black-box tests in `tests/`
//! and the benchmark `services-bench` use it.
//!
//! The binaries are taken from the target directory this crate was built
//! into: build them first (`cargo build -p bus -p users -p accounts
//! -p transactions -p reporting`, with `--release` for the benchmark, and `cargo build
//! -p app --features ssr --bin ledgerline` for the web server's test);
//! `./dev test` does.

mod api;
mod bank;
mod process;

pub use api::{Api, Sessions};
pub use bank::{Bank, Trust, balances_from_log, money};
pub use process::{Process, Service};
pub use testkit::{PATIENCE, TestDb, eventually};

/// The password every test user signs up with.
pub const PASSWORD: &str = "correct horse battery";
/// The staff log-in the users service is started with.
pub const STAFF: (&str, &str) = ("staff", "staff password 1");
