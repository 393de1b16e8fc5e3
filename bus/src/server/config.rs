//! The bus's settings: from flags and environment variables (see `bus --help`).

use std::time::Duration;

use crate::{credentials::Access, protocol::Limits};

/// How consume-mode delivery behaves. Defaults are the protocol's.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryConfig {
    /// Unacknowledged events per instance before the bus holds back.
    pub max_in_flight: usize,
    /// An event not acked within this counts as a nack.
    pub ack_timeout: Duration,
    /// Deliveries before an event is parked.
    pub max_deliveries: u32,
    /// The first redelivery's delay after a failure; it doubles each time.
    pub retry_backoff: Duration,
    /// The longest delay between redeliveries.
    pub max_backoff: Duration,
    /// Events one subscription holds in memory before it stops taking live
    /// events and reads the log in pages instead.
    pub max_held: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 1000,
            ack_timeout: Duration::from_secs(30),
            max_deliveries: 5,
            retry_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            max_held: 20_000,
        }
    }
}

impl DeliveryConfig {
    /// The delay before delivery number `deliveries + 1`.
    pub fn backoff(&self, deliveries: u32) -> Duration {
        let doublings = deliveries.saturating_sub(1).min(16);
        self.retry_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// Everything the server needs.
#[derive(Debug, Clone)]
pub struct BusConfig {
    pub database_url: String,
    /// Who may connect, and what each client may do.
    pub access: Access,
    pub limits: Limits,
    pub delivery: DeliveryConfig,
    /// How many keys' consistency values the writer keeps in memory.
    pub key_cache: usize,
    /// Queries running at once over all connections.
    pub max_queries: usize,
}

/// The bus-wide cap on concurrent queries, by default.
pub const DEFAULT_MAX_QUERIES: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config = DeliveryConfig::default();
        assert_eq!(config.backoff(1), Duration::from_millis(200));
        assert_eq!(config.backoff(2), Duration::from_millis(400));
        assert_eq!(config.backoff(4), Duration::from_millis(1600));
        assert_eq!(config.backoff(100), Duration::from_secs(30));
    }
}
