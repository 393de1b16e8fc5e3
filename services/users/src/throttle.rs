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
//!
//! Limits count failures only once they are known, so guesses sent
//! together would all pass the check before the first one failed. An
//! attempt therefore holds its place while its password is checked: one at
//! a time per username, a few at a time per address.

use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::{Mutex, MutexGuard},
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

impl Subject {
    /// Attempts of this subject checked at once.
    fn at_once(&self) -> usize {
        match self {
            Subject::Username(_) => 1,
            Subject::Address(_) => 8,
        }
    }
}

pub struct LoginThrottle {
    usernames: DefaultKeyedRateLimiter<String>,
    addresses: DefaultKeyedRateLimiter<IpAddr>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Subjects over their limit, and until when: a failure that the
    /// limiter refuses locks its subject until the limiter allows again.
    locked: HashMap<Subject, Instant>,
    /// Attempts being checked, by subject.
    checking: HashMap<Subject, usize>,
}

/// Refused: the next attempt is allowed after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryLater(pub Duration);

/// An attempt being checked: holds its place until dropped.
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    username: String,
    address: IpAddr,
}

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
/// What an attempt refused for another one in progress is told to wait.
const BUSY_WAIT: Duration = Duration::from_secs(1);

impl LoginThrottle {
    pub fn new(per_username: Quota, per_address: Quota) -> Self {
        Self {
            usernames: RateLimiter::keyed(per_username),
            addresses: RateLimiter::keyed(per_address),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// An attempt at `username` from `address`, if it may go on now.
    pub fn begin(&self, username: &str, address: IpAddr) -> Result<Attempt<'_>, TryLater> {
        let subjects = subjects(username, address);
        let mut state = self.state();
        state.lock_wait(&subjects).map_or(Ok(()), Err)?;
        if subjects
            .iter()
            .any(|subject| state.checking.get(subject).copied().unwrap_or(0) >= subject.at_once())
        {
            return Err(TryLater(BUSY_WAIT));
        }
        for subject in subjects {
            *state.checking.entry(subject).or_default() += 1;
        }
        Ok(Attempt {
            throttle: self,
            username: username.to_owned(),
            address,
        })
    }

    /// Counts a failed attempt; a subject over its limit is locked.
    fn failed(&self, username: &str, address: IpAddr) {
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
        let mut state = self.state();
        if state.locked.len() >= SWEEP_AT {
            state.locked.retain(|_, until| *until > now);
            self.usernames.retain_recent();
            self.addresses.retain_recent();
        }
        state.locked.extend(locks);
    }
}

impl State {
    /// How long the longest lock on these subjects still holds.
    fn lock_wait(&self, subjects: &[Subject]) -> Option<TryLater> {
        let now = Instant::now();
        subjects
            .iter()
            .filter_map(|subject| self.locked.get(subject))
            .filter(|until| **until > now)
            .map(|until| TryLater((*until - now).max(Duration::from_secs(1))))
            .max_by_key(|TryLater(wait)| *wait)
    }
}

fn subjects(username: &str, address: IpAddr) -> [Subject; 2] {
    [
        Subject::Username(username.to_owned()),
        Subject::Address(address),
    ]
}

impl Attempt<'_> {
    /// The password was wrong: counted against both subjects.
    pub fn failed(self) {
        self.throttle.failed(&self.username, self.address);
    }

    /// The password was right: allowed unless a lock came meanwhile (from
    /// the address's failures at other usernames).
    pub fn succeeded(self) -> Result<(), TryLater> {
        let subjects = subjects(&self.username, self.address);
        self.throttle
            .state()
            .lock_wait(&subjects)
            .map_or(Ok(()), Err)
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let mut state = self.throttle.state();
        for subject in subjects(&self.username, self.address) {
            if let Some(count) = state.checking.get_mut(&subject) {
                *count -= 1;
                if *count == 0 {
                    state.checking.remove(&subject);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(throttle: &LoginThrottle, username: &str, address: IpAddr) {
        throttle.begin(username, address).expect("allowed").failed();
    }

    #[test]
    fn ten_failures_lock_the_username_from_anywhere_and_others_go_on() {
        let throttle = LoginThrottle::default();
        for n in 0..10 {
            let address: IpAddr = format!("192.0.2.{n}").parse().unwrap();
            fail(&throttle, "alice", address);
        }
        let elsewhere: IpAddr = "198.51.100.1".parse().unwrap();
        fail(&throttle, "alice", elsewhere);
        let Err(TryLater(wait)) = throttle.begin("alice", elsewhere) else {
            panic!("locked");
        };
        assert!(wait > Duration::from_secs(60), "{wait:?}");
        assert!(
            throttle
                .begin("bob", "198.51.100.2".parse().unwrap())
                .is_ok()
        );
    }

    #[test]
    fn successes_use_nothing_up() {
        let throttle = LoginThrottle::default();
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..100 {
            let attempt = throttle.begin("alice", address).expect("allowed");
            assert_eq!(attempt.succeeded(), Ok(()));
        }
    }

    #[test]
    fn one_address_failing_at_many_usernames_is_slowed_down() {
        let throttle = LoginThrottle::default();
        let address: IpAddr = "198.51.100.7".parse().unwrap();
        for n in 0..31 {
            fail(&throttle, &format!("user{n}"), address);
        }
        assert!(throttle.begin("user99", address).is_err());
    }

    #[test]
    fn a_username_is_checked_one_attempt_at_a_time() {
        let throttle = LoginThrottle::default();
        let first = throttle
            .begin("alice", "192.0.2.1".parse().unwrap())
            .expect("allowed");
        assert_eq!(
            throttle.begin("alice", "192.0.2.2".parse().unwrap()).err(),
            Some(TryLater(BUSY_WAIT)),
            "a guess sent alongside waits for the first to be counted"
        );
        first.failed();
        assert!(
            throttle
                .begin("alice", "192.0.2.2".parse().unwrap())
                .is_ok()
        );
    }

    #[test]
    fn a_right_password_is_refused_if_the_address_was_locked_meanwhile() {
        let throttle = LoginThrottle::default();
        let address: IpAddr = "198.51.100.9".parse().unwrap();
        let right = throttle.begin("alice", address).expect("allowed");
        for n in 0..31 {
            fail(&throttle, &format!("user{n}"), address);
        }
        assert!(right.succeeded().is_err());
    }
}
