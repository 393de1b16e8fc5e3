//! A complete set of tokens and keys for one installation: a bus token for
//! every program of the default scope table (and the bus's credentials
//! file of their digests), a caller token for every default caller (and
//! the services' callers file), and the user-token key pair.
//!
//! Tests and the embedded system generate one at start and keep it in
//! memory or a private directory; production generates one with
//! `ledgerline-trust generate` and hands each program its own files.

use std::{
    collections::BTreeMap,
    io,
    path::{Path, PathBuf},
};

use bus::credentials::{ClientEntry, Credentials};

use crate::{
    callers::{self, CallerEntry, Callers},
    scopes,
    secret::{new_token, read_token},
    user_token::{KeyPair, Verifier},
};

pub struct Bundle {
    /// Program name → its bus token.
    pub bus_tokens: BTreeMap<String, String>,
    /// Caller name → its caller token.
    pub caller_tokens: BTreeMap<String, String>,
    pub user_keys: KeyPair,
}

/// Where [`Bundle::write`] put each file.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    /// For the bus (`--credentials`).
    pub fn bus_credentials(&self) -> PathBuf {
        self.dir.join("bus-credentials.toml")
    }

    /// For the program `name` (`BUS_TOKEN_FILE`).
    pub fn bus_token(&self, name: &str) -> PathBuf {
        self.dir.join("bus-tokens").join(format!("{name}.token"))
    }

    /// For every service (`CALLERS_FILE`).
    pub fn callers(&self) -> PathBuf {
        self.dir.join("callers.toml")
    }

    /// For the caller `name`.
    pub fn caller_token(&self, name: &str) -> PathBuf {
        self.dir.join("caller-tokens").join(format!("{name}.token"))
    }

    /// For the users service only (`USER_TOKEN_PRIVATE_KEY_FILE`).
    pub fn user_token_private_key(&self) -> PathBuf {
        self.dir.join("user-token-private.pem")
    }

    /// For every service (`USER_TOKEN_PUBLIC_KEY_FILE`).
    pub fn user_token_public_key(&self) -> PathBuf {
        self.dir.join("user-token-public.pem")
    }
}

impl Bundle {
    pub fn generate() -> Self {
        Self {
            bus_tokens: scopes::DEFAULT
                .iter()
                .map(|scope| (scope.name.to_owned(), new_token()))
                .collect(),
            caller_tokens: callers::DEFAULT
                .iter()
                .map(|name| ((*name).to_owned(), new_token()))
                .collect(),
            user_keys: KeyPair::generate(),
        }
    }

    /// The bus token of the program `name` (one of the default scopes).
    pub fn bus_token(&self, name: &str) -> &str {
        &self.bus_tokens[name]
    }

    /// The caller token of `name` (one of the default callers).
    pub fn caller_token(&self, name: &str) -> &str {
        &self.caller_tokens[name]
    }

    /// The bus's credentials file's entries: each program's scope with
    /// its token's digest.
    pub fn bus_entries(&self) -> Vec<ClientEntry> {
        scopes::DEFAULT
            .iter()
            .map(|scope| scope.entry(&self.bus_tokens[scope.name]))
            .collect()
    }

    pub fn bus_credentials(&self) -> Credentials {
        Credentials::from_entries(self.bus_entries()).expect("the default scopes are valid")
    }

    pub fn caller_entries(&self) -> Vec<CallerEntry> {
        self.caller_tokens
            .iter()
            .map(|(name, token)| CallerEntry::new(name, token))
            .collect()
    }

    pub fn callers(&self) -> Callers {
        Callers::from_entries(self.caller_entries()).expect("the default callers are valid")
    }

    pub fn verifier(&self) -> Verifier {
        Verifier::from_pem(&self.user_keys.public_pem).expect("a generated key reads back")
    }

    /// Reads back what [`Bundle::write`] wrote into `dir`: the embedded
    /// system keeps one installation's tokens and keys across restarts, so
    /// sessions and their user tokens outlive a restart.
    ///
    /// A program added to the default scope table since the files were
    /// written (the reporting service, say) gets a new bus token, and the
    /// bus's credentials file is written again to include it.
    pub fn read(dir: &Path) -> io::Result<Self> {
        let layout = Layout {
            dir: dir.to_owned(),
        };
        let mut added = false;
        let bus_tokens = scopes::DEFAULT
            .iter()
            .map(|scope| {
                let token = match read_token(&layout.bus_token(scope.name)) {
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {
                        added = true;
                        new_token()
                    }
                    other => other?,
                };
                Ok((scope.name.to_owned(), token))
            })
            .collect::<io::Result<_>>()?;
        let caller_tokens = callers::DEFAULT
            .iter()
            .map(|name| Ok(((*name).to_owned(), read_token(&layout.caller_token(name))?)))
            .collect::<io::Result<_>>()?;
        // PEM ends with one newline; the secret file adds one of its own.
        let pem = |path: PathBuf| -> io::Result<String> {
            Ok(format!("{}\n", std::fs::read_to_string(path)?.trim_end()))
        };
        let user_keys = KeyPair {
            private_pem: pem(layout.user_token_private_key())?,
            public_pem: pem(layout.user_token_public_key())?,
        };
        let bundle = Self {
            bus_tokens,
            caller_tokens,
            user_keys,
        };
        if added {
            bundle.write(dir)?;
        }
        Ok(bundle)
    }

    /// Writes every file into `dir` (created if missing); secrets are
    /// readable by the owner only.
    pub fn write(&self, dir: &Path) -> io::Result<Layout> {
        let layout = Layout {
            dir: dir.to_owned(),
        };
        private_dir(dir)?;
        private_dir(&dir.join("bus-tokens"))?;
        private_dir(&dir.join("caller-tokens"))?;
        std::fs::write(
            layout.bus_credentials(),
            Credentials::to_toml(&self.bus_entries()),
        )?;
        std::fs::write(layout.callers(), Callers::to_toml(&self.caller_entries()))?;
        std::fs::write(layout.user_token_public_key(), &self.user_keys.public_pem)?;
        for (name, token) in &self.bus_tokens {
            secret_file(&layout.bus_token(name), token)?;
        }
        for (name, token) in &self.caller_tokens {
            secret_file(&layout.caller_token(name), token)?;
        }
        secret_file(
            &layout.user_token_private_key(),
            &self.user_keys.private_pem,
        )?;
        Ok(layout)
    }
}

fn private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn secret_file(path: &Path, contents: &str) -> io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user_token;

    #[test]
    fn written_files_read_back_and_fit_together() {
        let bundle = Bundle::generate();
        let dir = std::env::temp_dir().join(format!("trust-{}", uuid::Uuid::now_v7()));
        let layout = bundle.write(&dir).unwrap();

        let credentials = Credentials::load(&layout.bus_credentials()).unwrap();
        let accounts = read_token(&layout.bus_token("accounts")).unwrap();
        assert_eq!(credentials.scope_of(&accounts).unwrap().name, "accounts");

        let callers = Callers::load(&layout.callers()).unwrap();
        let web = read_token(&layout.caller_token("web")).unwrap();
        assert_eq!(callers.caller_of(&web), Some("web"));

        let private = std::fs::read_to_string(layout.user_token_private_key()).unwrap();
        let public = std::fs::read_to_string(layout.user_token_public_key()).unwrap();
        let issuer = user_token::Issuer::from_pem(&private, user_token::DEFAULT_LIFETIME).unwrap();
        let token = issuer
            .issue("alice", user_token::Role::Customer, chrono::Utc::now())
            .unwrap();
        assert_eq!(
            Verifier::from_pem(&public)
                .unwrap()
                .verify(&token.token)
                .unwrap()
                .sub,
            "alice"
        );

        let read = Bundle::read(&dir).unwrap();
        assert_eq!(read.bus_tokens, bundle.bus_tokens);
        std::fs::remove_file(layout.bus_token("reporting")).unwrap();
        let completed = Bundle::read(&dir).unwrap();
        assert_ne!(
            completed.bus_token("reporting"),
            bundle.bus_token("reporting")
        );
        let credentials = Credentials::load(&layout.bus_credentials()).unwrap();
        let reporting = read_token(&layout.bus_token("reporting")).unwrap();
        assert_eq!(credentials.scope_of(&reporting).unwrap().name, "reporting");
        assert_eq!(read.caller_tokens, bundle.caller_tokens);
        assert_eq!(read.user_keys.public_pem, bundle.user_keys.public_pem);
        assert_eq!(read.user_keys.private_pem, bundle.user_keys.private_pem);

        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(layout.user_token_private_key())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the private key is the owner's alone");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
