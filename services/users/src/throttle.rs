//! Slowing down password guessing: failed log-ins are rate-limited per
//! username and per client address (GCRA, with the `governor` crate).
//!
//! A username may fail 10 times at once, then once every 90 seconds: ten
//! wrong guesses lock it for a minute and a half at a time, and it is fully
//! free again after 15 minutes without failures. An address may fail 30
//! times at once, then once every 6 seconds, which slows down trying many
//! usernames. Only failures count: logging in does not use anything up. A
//! lock holds before the password is looked at, so a locked username cannot
//! be tried even with the right password.

use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::Mutex,
    time::{Duration, Instant},
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

/// What a limit is kept for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Username(String),
    Address(IpAddr),
}

pub struct LoginThrottle {
    usernames: DefaultKeyedRateLimiter<String>,
    addresses: DefaultKeyedRateLimiter<IpAddr>,
    /// Subjects over their limit, and until when: a failure that the
    /// limiter refuses locks its subject until the limiter allows again.
    locked: Mutex<HashMap<Subject, Instant>>,
}

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

/// Past this many locks held, expired ones are dropped.
const SWEEP_AT: usize = 10_000;

impl LoginThrottle {
    pub fn new(per_username: Quota, per_address: Quota) -> Self {
        Self {
            usernames: RateLimiter::keyed(per_username),
            addresses: RateLimiter::keyed(per_address),
            locked: Mutex::new(HashMap::new()),
        }
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<Subject, Instant>> {
        self.locked
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Whether an attempt at `username` from `address` may go on.
    pub fn check(&self, username: &str, address: IpAddr) -> Result<(), TryLater> {
        let now = Instant::now();
        let locked = self.locked();
        let wait = [
            Subject::Username(username.to_owned()),
            Subject::Address(address),
        ]
        .iter()
        .filter_map(|subject| locked.get(subject))
        .filter(|until| **until > now)
        .map(|until| *until - now)
        .max();
        match wait {
            Some(wait) => Err(TryLater(wait.max(Duration::from_secs(1)))),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt; a subject over its limit is locked.
    pub fn failed(&self, username: &str, address: IpAddr) {
        let clock = DefaultClock::default();
        let now = Instant::now();
        let mut locks = Vec::new();
        if let Err(not_until) = self.usernames.check_key(&username.to_owned()) {
            let wait = not_until.wait_time_from(clock.now());
            locks.push((Subject::Username(username.to_owned()), now + wait));
        }
        if let Err(not_until) = self.addresses.check_key(&address) {
            let wait = not_until.wait_time_from(clock.now());
            locks.push((Subject::Address(address), now + wait));
        }
        let mut locked = self.locked();
        if locked.len() >= SWEEP_AT {
            locked.retain(|_, until| *until > now);
            self.usernames.retain_recent();
            self.addresses.retain_recent();
        }
        locked.extend(locks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_failures_lock_the_username_from_anywhere_and_others_go_on() {
        let throttle = LoginThrottle::default();
        for n in 0..10 {
            let address: IpAddr = format!("192.0.2.{n}").parse().unwrap();
            assert!(throttle.check("alice", address).is_ok());
            throttle.failed("alice", address);
        }
        let elsewhere: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(
            throttle.check("alice", elsewhere).is_ok(),
            "ten failures allowed"
        );
        throttle.failed("alice", elsewhere);
        let TryLater(wait) = throttle.check("alice", elsewhere).expect_err("locked");
        assert!(wait > Duration::from_secs(60), "{wait:?}");
        assert!(
            throttle
                .check("bob", "198.51.100.2".parse().unwrap())
                .is_ok()
        );
    }

    #[test]
    fn successes_use_nothing_up() {
        let throttle = LoginThrottle::default();
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..100 {
            assert!(throttle.check("alice", address).is_ok());
        }
    }

    #[test]
    fn one_address_failing_at_many_usernames_is_slowed_down() {
        let throttle = LoginThrottle::default();
        let address: IpAddr = "198.51.100.7".parse().unwrap();
        for n in 0..31 {
            assert!(throttle.check(&format!("user{n}"), address).is_ok());
            throttle.failed(&format!("user{n}"), address);
        }
        assert!(throttle.check("user99", address).is_err());
    }
}
