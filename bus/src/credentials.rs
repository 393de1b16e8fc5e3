//! Who may use the bus, and for what (protocol v1.1).
//!
//! Every client presents a bearer token. A token stands for a [`Scope`]:
//! the client types it may register as, the event types it may publish and
//! read, and whether it may use the staff endpoints. The credentials file
//! keeps only a SHA-256 digest of each token, so the file itself gives no
//! one access; tokens are long random strings, for which a fast digest is
//! as good as a slow one.
//!
//! ```toml
//! [[client]]
//! name = "accounts"
//! token_sha256 = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
//! client_types = ["accounts"]
//! publish = ["AccountCreated", "ConfirmedCredit", "ConfirmedDebit"]
//! read = ["AccountCreated", "ConfirmedCredit", "ConfirmedDebit", "PendingTransaction"]
//! staff = false
//! ```
//!
//! `"*"` as the only entry of a list means every name.

use std::{collections::HashMap, path::Path, sync::Arc};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::protocol::{EventTypes, is_valid_name};

/// What one token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Names the client in logs (never the token).
    pub name: String,
    /// The client types it may register as, in either mode.
    pub client_types: EventTypes,
    pub publish: EventTypes,
    /// What it may register for, observe and query.
    pub read: EventTypes,
    /// May use `/subscriptions`, `/parked`, replay and skip.
    pub staff: bool,
}

impl Scope {
    /// Everything: the development token, and every client of an `--insecure` bus.
    pub fn all_powerful(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            client_types: EventTypes::All,
            publish: EventTypes::All,
            read: EventTypes::All,
            staff: true,
        }
    }

    /// Why registering as `client_type` for `types` is refused, if it is.
    pub fn refuses_registration(&self, client_type: &str, types: &EventTypes) -> Option<String> {
        if !self.client_types.contains(client_type) {
            return Some(format!(
                "this token may not register as client type {client_type:?}"
            ));
        }
        self.refuses_reading(types)
    }

    /// Why reading `types` is refused, if it is.
    pub fn refuses_reading(&self, types: &EventTypes) -> Option<String> {
        outside(&self.read, types).map(|name| format!("this token may not read {name}"))
    }

    pub fn may_publish(&self, event_type: &str) -> bool {
        self.publish.contains(event_type)
    }
}

/// The first of `asked` that `allowed` does not hold.
fn outside(allowed: &EventTypes, asked: &EventTypes) -> Option<String> {
    match (allowed, asked) {
        (EventTypes::All, _) => None,
        (EventTypes::Only(_), EventTypes::All) => Some("every type (\"*\")".to_owned()),
        (EventTypes::Only(allowed), EventTypes::Only(asked)) => {
            asked.iter().find(|name| !allowed.contains(*name)).cloned()
        }
    }
}

/// The lowercase hex SHA-256 of a token: what a credentials file stores.
pub fn token_digest(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// How the bus decides who a connection is.
#[derive(Debug, Clone)]
pub enum Access {
    /// Development only: every client may do everything.
    Insecure,
    /// Tokens and their scopes.
    Tokens(Credentials),
}

impl Access {
    /// The scope of a presented token; `None`: not a known token.
    pub fn authenticate(&self, token: Option<&str>) -> Option<Arc<Scope>> {
        match self {
            Self::Insecure => Some(Arc::new(Scope::all_powerful("insecure"))),
            Self::Tokens(credentials) => credentials.scope_of(token?),
        }
    }
}

/// Known tokens (by digest) and their scopes.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    by_digest: HashMap<String, Arc<Scope>>,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("could not read the credentials file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the credentials file is not valid TOML of the expected shape: {0}")]
    Syntax(String),
    #[error("client {client:?}: {problem}")]
    Invalid { client: String, problem: String },
}

/// One `[[client]]` of the credentials file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    pub name: String,
    pub token_sha256: String,
    #[serde(default)]
    pub client_types: Vec<String>,
    #[serde(default)]
    pub publish: Vec<String>,
    #[serde(default)]
    pub read: Vec<String>,
    #[serde(default)]
    pub staff: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default, rename = "client")]
    clients: Vec<ClientEntry>,
}

impl Credentials {
    pub fn load(path: &Path) -> Result<Self, CredentialsError> {
        let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    pub fn from_toml(text: &str) -> Result<Self, CredentialsError> {
        let file: CredentialsFile =
            toml::from_str(text).map_err(|error| CredentialsError::Syntax(error.to_string()))?;
        Self::from_entries(file.clients)
    }

    pub fn from_entries(entries: Vec<ClientEntry>) -> Result<Self, CredentialsError> {
        let mut credentials = Self::default();
        for entry in entries {
            let invalid = |problem: String| CredentialsError::Invalid {
                client: entry.name.clone(),
                problem,
            };
            let digest = entry.token_sha256.to_ascii_lowercase();
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(
                    "token_sha256 must be 64 hexadecimal digits (the SHA-256 of the token)".into(),
                ));
            }
            let scope = Scope {
                name: entry.name.clone(),
                client_types: names(&entry.client_types, "client_types").map_err(&invalid)?,
                publish: names(&entry.publish, "publish").map_err(&invalid)?,
                read: names(&entry.read, "read").map_err(&invalid)?,
                staff: entry.staff,
            };
            if credentials
                .by_digest
                .insert(digest, Arc::new(scope))
                .is_some()
            {
                return Err(invalid("its token is also another client's".into()));
            }
        }
        Ok(credentials)
    }

    /// Adds the all-powerful development token.
    pub fn with_admin_token(mut self, token: &str) -> Self {
        self.by_digest.insert(
            token_digest(token),
            Arc::new(Scope::all_powerful("admin (BUS_TOKEN)")),
        );
        self
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    pub fn scope_of(&self, token: &str) -> Option<Arc<Scope>> {
        // The digest of a guess says nothing about the stored digests, so a
        // plain map look-up leaks nothing useful through its timing.
        self.by_digest.get(&token_digest(token)).cloned()
    }

    /// The file's text for `entries`.
    pub fn to_toml(entries: &[ClientEntry]) -> String {
        let file = CredentialsFile {
            clients: entries.to_vec(),
        };
        toml::to_string(&file).expect("credentials serialise")
    }
}

/// A list of names: `[]` is none, `["*"]` every one.
fn names(list: &[String], field: &str) -> Result<EventTypes, String> {
    if list.is_empty() {
        return Ok(EventTypes::Only(Default::default()));
    }
    if list.len() > 1 || list[0] != "*" {
        for (index, name) in list.iter().enumerate() {
            if !is_valid_name(name) {
                return Err(format!(
                    "{field}[{index}] must be 1 to 128 characters of A-Z, a-z, 0-9, '_', '.', '-' (or the list [\"*\"])"
                ));
            }
        }
    }
    EventTypes::from_list(list.to_vec(), field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(list: &[&str]) -> EventTypes {
        EventTypes::from_list(list.iter().map(|s| (*s).to_owned()).collect(), "t").unwrap()
    }

    const FILE: &str = r#"
        [[client]]
        name = "accounts"
        token_sha256 = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
        client_types = ["accounts"]
        publish = ["ConfirmedDebit"]
        read = ["ConfirmedDebit", "PendingTransaction"]

        [[client]]
        name = "ops"
        token_sha256 = "FCDE2B2EDBA56BF408601FB721FE9B5C338D10EE429EA04FAE5511B68FBF8FB9"
        read = ["*"]
        staff = true
    "#;

    #[test]
    fn tokens_map_to_their_scopes() {
        let credentials = Credentials::from_toml(FILE).unwrap();
        assert_eq!(
            token_digest("foo"),
            "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
        );
        let accounts = credentials.scope_of("foo").unwrap();
        assert_eq!(accounts.name, "accounts");
        assert!(accounts.may_publish("ConfirmedDebit"));
        assert!(!accounts.may_publish("UserCreated"));
        assert!(!accounts.staff);
        assert_eq!(
            accounts.refuses_registration("accounts", &types(&["PendingTransaction"])),
            None
        );
        assert_eq!(
            accounts.refuses_registration("users", &types(&["PendingTransaction"])),
            Some("this token may not register as client type \"users\"".into())
        );
        assert_eq!(
            accounts.refuses_reading(&types(&["UserCreated"])),
            Some("this token may not read UserCreated".into())
        );
        assert_eq!(
            accounts.refuses_reading(&EventTypes::All),
            Some("this token may not read every type (\"*\")".into())
        );
        let ops = credentials
            .scope_of("bar")
            .expect("upper-case digests are fine");
        assert!(ops.staff);
        assert_eq!(ops.refuses_reading(&EventTypes::All), None);
        assert!(!ops.may_publish("ConfirmedDebit"), "no publish list: none");
        assert!(credentials.scope_of("baz").is_none());
        assert!(credentials.scope_of("").is_none());
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let error = Credentials::from_toml("[[client]]\nname = \"x\"\ntoken_sha256 = \"abc\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("64 hexadecimal digits"), "{error}");
        let error = Credentials::from_toml(
            "[[client]]\nname = \"x\"\ntoken_sha256 = \"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\"\npublish = [\"bad name\"]",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("publish[0]"), "{error}");
        let twice = format!(
            "{FILE}\n[[client]]\nname = \"again\"\ntoken_sha256 = \"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\""
        );
        assert!(Credentials::from_toml(&twice).is_err());
        assert!(Credentials::from_toml("[[client]]\nname = 1").is_err());
    }

    #[test]
    fn round_trips_through_toml() {
        let entries = vec![ClientEntry {
            name: "web".into(),
            token_sha256: token_digest("t"),
            client_types: vec!["web".into()],
            publish: vec![],
            read: vec!["ConfirmedCredit".into()],
            staff: false,
        }];
        let credentials = Credentials::from_toml(&Credentials::to_toml(&entries)).unwrap();
        assert_eq!(credentials.scope_of("t").unwrap().name, "web");
    }

    #[test]
    fn the_admin_token_and_insecure_access_may_do_everything() {
        let access = Access::Tokens(Credentials::default().with_admin_token("secret"));
        let admin = access.authenticate(Some("secret")).unwrap();
        assert!(admin.staff && admin.may_publish("UserCreated"));
        assert!(access.authenticate(None).is_none());
        assert!(Access::Insecure.authenticate(None).unwrap().staff);
    }
}
