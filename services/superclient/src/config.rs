//! The command line and environment every service shares, and the
//! settings they resolve to.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use trust::{callers::Callers, secret::read_token, user_token::Verifier};

/// How a service instance reaches its database and the bus, and whom it serves.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// Address of the HTTP API (default: 127.0.0.1 and the service's own port).
    #[arg(long, env = "LISTEN")]
    pub listen: Option<String>,
    /// PostgreSQL URL; the service keeps its tables in a schema of its own name.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// The bus's WebSocket address.
    #[arg(long, env = "BUS_URL", default_value = "ws://127.0.0.1:8081/bus")]
    pub bus_url: String,
    /// This service's bus token (its scope is in the bus's credentials file).
    #[arg(long, env = "BUS_TOKEN", hide_env_values = true)]
    pub bus_token: Option<String>,
    /// A file holding this service's bus token, instead of BUS_TOKEN.
    #[arg(long, env = "BUS_TOKEN_FILE", conflicts_with = "bus_token")]
    pub bus_token_file: Option<PathBuf>,
    /// The programs that may call this service: a TOML file of names and
    /// token digests (`ledgerline-trust generate` makes one).
    #[arg(long, env = "CALLERS_FILE")]
    pub callers_file: PathBuf,
    /// The users service's public key for user tokens (PEM).
    #[arg(long, env = "USER_TOKEN_PUBLIC_KEY_FILE")]
    pub user_token_public_key_file: PathBuf,
    /// Most live events applied in one database transaction.
    #[arg(long, env = "MAX_BATCH", default_value_t = 500)]
    pub max_batch: usize,
    /// Milliseconds a publish (with its resends) or a bus request may take.
    #[arg(long, env = "BUS_DEADLINE_MS", default_value_t = 10_000)]
    pub bus_deadline_ms: u64,
}

/// What a service instance runs with, resolved from [`ServiceArgs`] or
/// made in code (the embedded system, tests).
#[derive(Clone)]
pub struct Settings {
    /// `None`: 127.0.0.1 and the service's own port.
    pub listen: Option<String>,
    pub database_url: String,
    pub bus_url: String,
    pub bus_token: String,
    pub callers: Callers,
    pub user_tokens: Verifier,
    pub max_batch: usize,
    pub bus_deadline: Duration,
}

impl ServiceArgs {
    /// Reads the files the arguments name.
    pub fn settings(self) -> anyhow::Result<Settings> {
        let bus_token = match (self.bus_token, &self.bus_token_file) {
            (Some(token), _) if !token.is_empty() => token,
            (_, Some(path)) => read_token(path)
                .with_context(|| format!("could not read the bus token from {}", path.display()))?,
            _ => anyhow::bail!(
                "BUS_TOKEN or BUS_TOKEN_FILE is required: the bus admits no one without a token"
            ),
        };
        let callers = Callers::load(&self.callers_file)?;
        let public_key =
            std::fs::read_to_string(&self.user_token_public_key_file).with_context(|| {
                format!(
                    "could not read the user token public key {}",
                    self.user_token_public_key_file.display()
                )
            })?;
        Ok(Settings {
            listen: self.listen,
            database_url: self.database_url,
            bus_url: self.bus_url,
            bus_token,
            callers,
            user_tokens: Verifier::from_pem(&public_key)?,
            max_batch: self.max_batch,
            bus_deadline: Duration::from_millis(self.bus_deadline_ms),
        })
    }
}
