//! `users`: the users service's process.

use clap::Parser;
use users::{StaffLogin, Users};

#[derive(Parser)]
#[command(version, about = "Ledgerline's users service")]
struct Cli {
    #[command(flatten)]
    service: superclient::ServiceArgs,
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
    superclient::main(Users::new(staff), cli.service).await
}
