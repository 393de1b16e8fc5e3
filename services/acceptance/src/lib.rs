//! The bank under test: the real `bus`, `users`, `accounts` and
//! `transactions` binaries as processes on a database of their own, HTTP
//! calls as the web server makes them, and the bus's log as evidence.
//! The black-box tests in `tests/` and the benchmark `services-bench` use it.
//!
//! The binaries are taken from the target directory this crate was built
//! into: build them first (`cargo build -p bus -p users -p accounts
//! -p transactions`, with `--release` for the benchmark); `./dev test` does.

mod bank;
mod db;
mod process;

use std::time::Duration;

pub use bank::{Api, Bank, balances_from_log, money};
pub use db::TestDb;
pub use process::{Process, Service};

/// How long a test waits for something that should happen promptly.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub const SERVICE_TOKEN: &str = "test-service-token";

/// Polls `probe` until it yields a value, failing the test after [`PATIENCE`].
pub async fn eventually<T, Probe, Answer>(what: &str, mut probe: Probe) -> T
where
    Probe: FnMut() -> Answer,
    Answer: Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
