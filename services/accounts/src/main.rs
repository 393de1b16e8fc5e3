//! `accounts`: the accounts service's process.

use accounts::Accounts;
use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Ledgerline's accounts service")]
struct Cli {
    #[command(flatten)]
    service: superclient::ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    superclient::main(Accounts, Cli::parse().service.settings()?).await
}
