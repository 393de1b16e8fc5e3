//! `scripted`: runs a Lua script as a Ledgerline service.
//!
//! ```text
//! scripted --script services/nectar/nectar.lua   # plus the usual service settings
//! ```

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use scripted::{Limits, Scripted};
use superclient::ServiceArgs;

#[derive(Parser)]
#[command(version, about = "Runs a Lua script as a Ledgerline service")]
struct Args {
    /// The script (Lua 5.4).
    #[arg(long, env = "SCRIPT")]
    script: PathBuf,
    /// Most Lua instructions one call of a handler or route may run.
    #[arg(long, env = "MAX_INSTRUCTIONS", default_value_t = Limits::default().max_instructions)]
    max_instructions: u64,
    /// Most memory one call may allocate, in MiB.
    #[arg(long, env = "MAX_MEMORY_MIB", default_value_t = Limits::default().max_memory >> 20)]
    max_memory_mib: usize,
    /// Calls that may run at once (each on a VM of its own).
    #[arg(long, env = "SCRIPT_VMS", default_value_t = 4)]
    vms: usize,
    #[command(flatten)]
    service: ServiceArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let limits = Limits {
        max_instructions: args.max_instructions,
        max_memory: args.max_memory_mib << 20,
    };
    let service = Scripted::load(&args.script, limits, args.vms)
        .with_context(|| format!("the script {}", args.script.display()))?;
    superclient::main(service, args.service.settings()?).await
}
