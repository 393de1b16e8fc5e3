//! `reporting`: the reporting service's process.

use clap::Parser;
use reporting::Reporting;

#[derive(Parser)]
#[command(version, about = "Ledgerline's reporting service")]
struct Cli {
    #[command(flatten)]
    service: superclient::ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    superclient::main(Reporting, Cli::parse().service.settings()?).await
}
