//! What Ledgerline's black-box tests share: the bus's (`bus/tests`) and the
//! services' (`services/acceptance`).
//!
//! - [`TestDb`]: a database of one's own on the server at `DATABASE_URL`.
//! - [`eventually`]: polling for an effect with a deadline, never a sleep
//!   that hopes it was long enough.

mod database;

use std::time::Duration;

pub use database::TestDb;

/// How long a test waits for an effect that should come promptly.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `probe` until it yields a value, failing the test after
/// [`PATIENCE`]: for effects that happen soon but not at once (a progress
/// save, a parked event, another service catching up).
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
