//! The bank's staff login, from configuration.

use crate::{password, rules};

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
        let password_hash = password::hash_now(password)?;
        Ok(Self {
            username: username.to_owned(),
            password_hash,
        })
    }
}
