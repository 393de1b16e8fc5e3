//! `users`: the users service's process.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Parser;
use trust::user_token::Issuer;
use users::{Passwords, StaffLogin, Users};

#[derive(Parser)]
#[command(version, about = "Ledgerline's users service")]
struct Cli {
    #[command(flatten)]
    service: superclient::ServiceArgs,
    /// The private key that signs user tokens (PEM, Ed25519): this
    /// service's alone.
    #[arg(long, env = "USER_TOKEN_PRIVATE_KEY_FILE")]
    user_token_private_key_file: PathBuf,
    /// How long a user token is good for, in seconds.
    #[arg(long, env = "USER_TOKEN_LIFETIME_SECS", default_value_t = 900)]
    user_token_lifetime_secs: u64,
    /// The bank staff login's username (with STAFF_PASSWORD).
    #[arg(long, env = "STAFF_USERNAME", requires = "staff_password")]
    staff_username: Option<String>,
    #[arg(long, env = "STAFF_PASSWORD", hide_env_values = true)]
    staff_password: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let staff = match (cli.staff_username, cli.staff_password) {
        (Some(username), Some(password)) => Some(StaffLogin::new(&username, &password)?),
        _ => None,
    };
    let private_key =
        std::fs::read_to_string(&cli.user_token_private_key_file).with_context(|| {
            format!(
                "could not read the user token private key {}",
                cli.user_token_private_key_file.display()
            )
        })?;
    let issuer = Issuer::from_pem(
        &private_key,
        Duration::from_secs(cli.user_token_lifetime_secs),
    )?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let users = Users::new(staff, issuer, Passwords::new(cores));
    superclient::main(users, cli.service.settings()?).await
}
