//! `ledgerline-trust`: generates the tokens and keys of one installation.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use trust::{bundle::Bundle, callers, scopes};

#[derive(Parser)]
#[command(
    version,
    about = "Tokens and keys for Ledgerline's bus, services and callers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes a new set into a directory (created with owner-only access).
    Generate {
        /// Where to write the files.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let Cli {
        command: Command::Generate { out },
    } = Cli::parse();
    anyhow::ensure!(
        !out.join("bus-credentials.toml").exists(),
        "{} already holds a set; move it away first",
        out.display()
    );
    let layout = Bundle::generate().write(&out)?;
    println!("wrote a new set into {}:", layout.dir.display());
    println!(
        "  bus:              --credentials {}",
        layout.bus_credentials().display()
    );
    for scope in scopes::DEFAULT {
        println!(
            "  {:<16}  BUS_TOKEN_FILE={}",
            scope.name,
            layout.bus_token(scope.name).display()
        );
    }
    println!(
        "  every service:    CALLERS_FILE={}",
        layout.callers().display()
    );
    println!(
        "                    USER_TOKEN_PUBLIC_KEY_FILE={}",
        layout.user_token_public_key().display()
    );
    println!(
        "  users only:       USER_TOKEN_PRIVATE_KEY_FILE={}",
        layout.user_token_private_key().display()
    );
    for caller in callers::DEFAULT {
        println!(
            "  caller {:<9}  {}",
            caller,
            layout.caller_token(caller).display()
        );
    }
    Ok(())
}
