//! Database errors worth trying again: a deadlock or a serialization
//! failure (the other transaction wins, this one may simply run again) and
//! a lost connection. Everything else is final.

use std::time::Duration;

use rand::Rng;

/// How often a transaction that failed transiently is run again.
pub const ATTEMPTS: u32 = 8;

pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(error) => matches!(
            error.code().as_deref(),
            // serialization_failure, deadlock_detected
            Some("40001") | Some("40P01")
        ),
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        _ => false,
    }
}

/// A short random pause that grows with the attempts.
pub async fn pause(attempt: u32) {
    let ceiling_ms = 2u64 << attempt.min(7);
    let pause = rand::rng().random_range(0..=ceiling_ms * 1000);
    tokio::time::sleep(Duration::from_micros(pause)).await;
}
