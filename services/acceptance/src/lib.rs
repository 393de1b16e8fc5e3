//! The bank under test: the real `bus`, `users`, `accounts` and
//! `transactions` binaries as processes on a database of their own, HTTP
//! calls as the web server makes them, and the bus's log as evidence.
//! The black-box tests in `tests/` and the benchmark `services-bench` use it.
//!
//! The binaries are taken from the target directory this crate was built
//! into: build them first (`cargo build -p bus -p users -p accounts
//! -p transactions`, with `--release` for the benchmark); `./dev test` does.

mod bank;
mod process;

pub use bank::{Api, Bank, balances_from_log, money};
pub use process::{Process, Service};
pub use testkit::{PATIENCE, TestDb, eventually};

pub const SERVICE_TOKEN: &str = "test-service-token";
