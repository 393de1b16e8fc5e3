//! Slowing down password guessing: log-in attempts are rate-limited per
//! username and per client address (GCRA, with the `governor` crate).
//!
//! A username gets 10 attempts at once, then one every 90 seconds: ten
//! wrong guesses lock it for a minute and a half at a time, and it is fully
//! free again after 15 quiet minutes. An address gets 30 attempts at once,
//! then one every 6 seconds, which slows down trying many usernames. The
//! check comes before the password is looked at, so a locked username
//! cannot be tried even with the right password.

use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

pub struct LoginThrottle {
    usernames: DefaultKeyedRateLimiter<String>,
    addresses: DefaultKeyedRateLimiter<IpAddr>,
    attempts: AtomicU64,
}

/// Every so many attempts, keys that are fully replenished are forgotten,
/// so memory follows recent attempts only.
const SWEEP_EVERY: u64 = 4096;

/// Refused: the next attempt is allowed after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryLater(pub Duration);

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(
            quota(Duration::from_secs(90), 10),
            quota(Duration::from_secs(6), 30),
        )
    }
}

fn quota(period: Duration, burst: u32) -> Quota {
    Quota::with_period(period)
        .expect("a non-zero period")
        .allow_burst(NonZeroU32::new(burst).expect("a non-zero burst"))
}

impl LoginThrottle {
    pub fn new(per_username: Quota, per_address: Quota) -> Self {
        Self {
            usernames: RateLimiter::keyed(per_username),
            addresses: RateLimiter::keyed(per_address),
            attempts: AtomicU64::new(0),
        }
    }

    /// Counts an attempt at `username` from `address`, or says when the
    /// next may come.
    pub fn attempt(&self, username: &str, address: IpAddr) -> Result<(), TryLater> {
        if self.attempts.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.usernames.retain_recent();
            self.addresses.retain_recent();
        }
        let now = DefaultClock::default().now();
        let by_address = self.addresses.check_key(&address);
        let by_username = self.usernames.check_key(&username.to_owned());
        let wait = [by_address.err(), by_username.err()]
            .into_iter()
            .flatten()
            .map(|not_until| not_until.wait_time_from(now))
            .max();
        match wait {
            Some(wait) => Err(TryLater(wait.max(Duration::from_secs(1)))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_attempts_then_a_wait_per_username_and_other_users_unaffected() {
        let throttle = LoginThrottle::default();
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..10 {
            assert!(throttle.attempt("alice", address).is_ok());
        }
        let TryLater(wait) = throttle.attempt("alice", other).expect_err("locked");
        assert!(wait > Duration::from_secs(60), "{wait:?}");
        assert!(throttle.attempt("bob", other).is_ok());
    }

    #[test]
    fn one_address_trying_many_usernames_is_slowed_down() {
        let throttle = LoginThrottle::default();
        let address: IpAddr = "198.51.100.7".parse().unwrap();
        for n in 0..30 {
            assert!(throttle.attempt(&format!("user{n}"), address).is_ok());
        }
        assert!(throttle.attempt("user99", address).is_err());
    }
}
