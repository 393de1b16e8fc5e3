//! Passwords: hashed with argon2id, checked in constant time. The work
//! (tens of milliseconds) runs off the async threads.

use std::sync::LazyLock;

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 1024;

/// A PHC string (`$argon2id$v=19$...`).
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("could not hash a password: {e}"))
    })
    .await?
}

/// Whether `password` matches `hash`. A malformed hash matches nothing.
pub async fn verify(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// Checks `password` against `hash`, or, for a user that does not exist,
/// against a hash of no one's password: answering an unknown username
/// takes as long as answering a wrong password.
pub async fn verify_or_decoy(password: String, hash: Option<String>) -> bool {
    static DECOY: LazyLock<String> = LazyLock::new(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"no one's password", &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    });
    match hash {
        Some(hash) => verify(password, hash).await,
        None => {
            let decoy = tokio::task::spawn_blocking(|| DECOY.clone())
                .await
                .unwrap_or_default();
            let _ = verify(password, decoy).await;
            false
        }
    }
}
