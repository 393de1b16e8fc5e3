//! Passwords: hashed with argon2id, checked in constant time. The work
//! (tens of milliseconds and 19 MiB each) runs off the async threads and
//! under a bounded semaphore, so a burst of log-ins queues instead of
//! exhausting memory and cores.

use std::{
    sync::{Arc, LazyLock},
    time::Duration,
};

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use tokio::sync::Semaphore;

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 1024;

/// How long a check waits for its turn before the caller is told to retry.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("too many password checks at once; try again shortly")]
    Busy,
    #[error("could not hash a password: {0}")]
    Hash(String),
}

/// Hashing and checking passwords, a bounded number at a time.
pub struct Passwords {
    turns: Arc<Semaphore>,
}

impl Passwords {
    /// At most `at_once` hashes or checks run together.
    pub fn new(at_once: usize) -> Self {
        Self {
            turns: Arc::new(Semaphore::new(at_once.max(1))),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let turn = tokio::time::timeout(QUEUE_WAIT, self.turns.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Busy)?;
        // The turn goes with the work: a caller that gives up (a dropped
        // request) frees it only when the hashing it started is done.
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            work()
        })
        .await
        .map_err(|error| PasswordError::Hash(error.to_string()))
    }

    /// A PHC string (`$argon2id$v=19$...`).
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.run(move || hash_now(&password)).await?
    }

    /// Whether `password` matches `hash`. A malformed hash matches nothing.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, PasswordError> {
        self.run(move || verify_now(&password, &hash)).await
    }

    /// Checks `password` against `hash`, or, for a user that does not
    /// exist, against a hash of no one's password: answering an unknown
    /// username takes as long as answering a wrong password.
    pub async fn verify_or_decoy(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, PasswordError> {
        static DECOY: LazyLock<String> =
            LazyLock::new(|| hash_now("no one's password").unwrap_or_default());
        match hash {
            Some(hash) => self.verify(password, hash).await,
            None => {
                self.run(move || {
                    let _ = verify_now(&password, &DECOY);
                    false
                })
                .await
            }
        }
    }
}

pub fn hash_now(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

fn verify_now(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_check_and_unknown_users_fail_alike() {
        let passwords = Passwords::new(2);
        let hash = passwords.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            passwords
                .verify("correct horse".into(), hash.clone())
                .await
                .unwrap()
        );
        assert!(!passwords.verify("wrong horse".into(), hash).await.unwrap());
        assert!(!passwords.verify_or_decoy("x".into(), None).await.unwrap());
    }
}
