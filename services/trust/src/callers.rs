//! The programs that may call a service's HTTP API (the web server, the
//! load tool), each known by the SHA-256 digest of its caller token:
//!
//! ```toml
//! [[caller]]
//! name = "web"
//! token_sha256 = "…"
//! ```

use std::{collections::HashMap, path::Path};

use bus::credentials::token_digest;
use serde::{Deserialize, Serialize};

/// The callers a bundle makes tokens for.
pub const DEFAULT: &[&str] = &["web", "populate"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerEntry {
    pub name: String,
    pub token_sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallersFile {
    #[serde(default, rename = "caller")]
    callers: Vec<CallerEntry>,
}

/// Who may call, by the digest of their token.
#[derive(Debug, Clone, Default)]
pub struct Callers {
    by_digest: HashMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CallersError {
    #[error("could not read the callers file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the callers file is not valid: {0}")]
    Invalid(String),
}

impl Callers {
    pub fn load(path: &Path) -> Result<Self, CallersError> {
        let text = std::fs::read_to_string(path).map_err(|source| CallersError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    pub fn from_toml(text: &str) -> Result<Self, CallersError> {
        let file: CallersFile =
            toml::from_str(text).map_err(|error| CallersError::Invalid(error.to_string()))?;
        Self::from_entries(file.callers)
    }

    pub fn from_entries(entries: Vec<CallerEntry>) -> Result<Self, CallersError> {
        let mut by_digest = HashMap::new();
        for entry in entries {
            let digest = entry.token_sha256.to_ascii_lowercase();
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(CallersError::Invalid(format!(
                    "caller {:?}: token_sha256 must be 64 hexadecimal digits",
                    entry.name
                )));
            }
            if entry.name.is_empty() || entry.name.len() > 64 {
                return Err(CallersError::Invalid(
                    "a caller's name is 1 to 64 characters".into(),
                ));
            }
            by_digest.insert(digest, entry.name);
        }
        if by_digest.is_empty() {
            return Err(CallersError::Invalid(
                "no callers: nobody could call the service".into(),
            ));
        }
        Ok(Self { by_digest })
    }

    pub fn to_toml(entries: &[CallerEntry]) -> String {
        toml::to_string(&CallersFile {
            callers: entries.to_vec(),
        })
        .expect("callers serialise")
    }

    /// The name of the caller whose token this is.
    pub fn caller_of(&self, token: &str) -> Option<&str> {
        self.by_digest.get(&token_digest(token)).map(String::as_str)
    }
}

impl CallerEntry {
    pub fn new(name: &str, token: &str) -> Self {
        Self {
            name: name.to_owned(),
            token_sha256: token_digest(token),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_is_known_by_its_token() {
        let callers =
            Callers::from_toml(&Callers::to_toml(&[CallerEntry::new("web", "w-token")])).unwrap();
        assert_eq!(callers.caller_of("w-token"), Some("web"));
        assert_eq!(callers.caller_of("w-toke"), None);
        assert!(
            Callers::from_toml("").is_err(),
            "an empty file lets no one in"
        );
    }
}
