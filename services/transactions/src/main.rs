//! `transactions`: the transactions service's process.

use clap::Parser;
use transactions::Transactions;

#[derive(Parser)]
#[command(version, about = "Ledgerline's transactions service")]
struct Cli {
    #[command(flatten)]
    service: superclient::ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    superclient::main(Transactions::default(), Cli::parse().service.settings()?).await
}
