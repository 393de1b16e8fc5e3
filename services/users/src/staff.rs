//! The bank's staff login, from configuration.

use argon2::{
    Argon2, PasswordHasher,
    password_hash::{SaltString, rand_core::OsRng},
};

use crate::rules;

/// The staff username and a hash of its password (the password itself is
/// dropped as soon as it is hashed).
pub struct StaffLogin {
    pub(crate) username: String,
    pub(crate) password_hash: String,
}

impl StaffLogin {
    pub fn new(username: &str, password: &str) -> anyhow::Result<Self> {
        rules::check_username(username)
            .map_err(|e| anyhow::anyhow!("STAFF_USERNAME: {}", e.message))?;
        rules::check_password(password)
            .map_err(|e| anyhow::anyhow!("STAFF_PASSWORD: {}", e.message))?;
        let salt = SaltString::generate(&mut OsRng);
        let password_hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("could not hash the staff password: {e}"))?
            .to_string();
        Ok(Self {
            username: username.to_owned(),
            password_hash,
        })
    }
}
