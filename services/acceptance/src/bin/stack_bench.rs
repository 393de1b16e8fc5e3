//! `stack-bench`: sustained transfers through the whole stack, measured
//! with the load tool. The real release binaries (the bus, and 1 or 2
//! instances of users, accounts and transactions, plus reporting) on a
//! fresh database; `populate` signs customers up, pays opening deposits,
//! then asks for transfers over HTTP and waits for each to be final
//! (transactions → bus → accounts → bus → transactions). It prints the
//! load tool's report and where the CPU went: each process's user and
//! system time over the transfers, from `/proc`, per transfer. With
//! `--hot-account`, every transfer comes out of one single account.
//!
//! ```sh
//! cargo build --release -p bus -p users -p accounts -p transactions -p reporting -p acceptance
//! DATABASE_URL=postgres://… target/release/stack-bench [--instances 2] [--rate 2000] [--seconds 20]
//! ```

use std::{collections::BTreeMap, time::Duration};

use acceptance::{Bank, Process, Service};
use clap::Parser;
use indicatif::{MultiProgress, ProgressDrawTarget};
use populate::{
    Mix, Pace, Plan, Report, Shape,
    options::Rate,
    plan::{AccountRef, Kind},
    receipts::Receipts,
};

#[derive(Parser)]
#[command(about = "Sustained transfers through the whole stack, with where the CPU goes")]
struct Cli {
    /// Instances of each of users, accounts and transactions.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Customers, each with two accounts.
    #[arg(long, default_value_t = 200)]
    customers: usize,
    /// Transfers started per second ("unlimited": as fast as `--concurrency` allows).
    #[arg(long, default_value = "unlimited")]
    rate: Rate,
    /// Transfers in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long transfers are started for.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Every transfer out of one single account (of 1p to 10p, to the others).
    #[arg(long)]
    hot_account: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let bank = Bank::start_with_accounts(cli.instances).await;
    let more: Vec<Process> = (1..cli.instances)
        .flat_map(|_| {
            [
                bank.another(Service::Users),
                bank.another(Service::Transactions),
            ]
        })
        .collect();
    let client = bank.populate_client(&more);
    let shape = Shape {
        users: cli.customers,
        accounts_per_user: 2,
        // Enough that the duration, not the plan, ends the run.
        operations_per_account: 10_000,
        opening_deposit: "5000.00..10000.00".parse()?,
        amount: if cli.hot_account {
            "0.01..0.10"
        } else {
            "0.01..20.00"
        }
        .parse()?,
        mix: Mix {
            deposits: 0,
            withdrawals: 0,
            transfers: 1,
        },
    };
    let mut plan = Plan::draw("bench", &shape, 1);
    if cli.hot_account {
        let hot = AccountRef {
            customer: 0,
            slot: 0,
        };
        for operation in &mut plan.operations {
            operation.account = hot;
            if let Kind::Transfer { to } = &mut operation.kind
                && *to == hot
            {
                *to = AccountRef {
                    customer: 0,
                    slot: 1,
                };
            }
        }
    }
    let progress = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let (report, receipts) = (Report::default(), Receipts::default());

    // Setup first (no duration), then the transfers, with CPU samples around them.
    let setup_pace = Pace {
        concurrency: 16,
        rate: Rate::Unlimited,
        duration: Some(Duration::ZERO),
    };
    let customers =
        populate::run(&client, &plan, &setup_pace, &report, &receipts, &progress).await?;
    let processes: Vec<&Process> = std::iter::once(&bank.bus)
        .chain(std::iter::once(&bank.users))
        .chain(bank.accounts.iter())
        .chain(std::iter::once(&bank.transactions))
        .chain(std::iter::once(&bank.reporting))
        .chain(more.iter())
        .collect();
    let before = cpu(&processes);
    let load_before = process_cpu(std::process::id());
    let postgres_before = postgres_cpu();
    let pace = Pace {
        concurrency: cli.concurrency,
        rate: cli.rate,
        duration: Some(Duration::from_secs_f64(cli.seconds)),
    };
    let transfers = Report::default();
    populate::load::run(
        &client, &plan, &customers, &pace, &transfers, &receipts, &progress,
    )
    .await;
    let after = cpu(&processes);
    let postgres = postgres_cpu() - postgres_before;
    let load = process_cpu(std::process::id()) - load_before;

    println!(
        "{} instance(s) of each service, {} customers, rate {:?}, concurrency {}{}",
        cli.instances,
        cli.customers,
        cli.rate,
        cli.concurrency,
        if cli.hot_account {
            ", every transfer out of one account"
        } else {
            ""
        }
    );
    print!("{transfers}");
    let tally = transfers.tally(populate::report::OperationKind::Transfer);
    let done = (tally.accepted + tally.rejected).max(1) as f64;
    println!("CPU over the transfers (seconds, and milliseconds per transfer):");
    let mut by_name: BTreeMap<String, f64> = BTreeMap::new();
    for ((name, start), (_, end)) in before.iter().zip(&after) {
        *by_name.entry(name.clone()).or_default() += end - start;
    }
    by_name.insert("postgres (all backends)".into(), postgres);
    by_name.insert("the load (this program)".into(), load);
    let mut total = 0.0;
    for (name, seconds) in &by_name {
        total += seconds;
        println!(
            "  {name:<26} {seconds:>7.2} s  {:>6.3} ms",
            seconds * 1000.0 / done
        );
    }
    println!(
        "  {:<26} {total:>7.2} s  {:>6.3} ms",
        "all",
        total * 1000.0 / done
    );
    Ok(())
}

/// Each process's user + system CPU seconds so far, named by its program.
fn cpu(processes: &[&Process]) -> Vec<(String, f64)> {
    processes
        .iter()
        .map(|process| {
            let name = process.kind().map_or("bus", Service::name).to_owned();
            (name, process_cpu(process.pid()))
        })
        .collect()
}

fn process_cpu(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces): utime is the
    // 14th field, stime the 15th, in clock ticks (100 a second on Linux).
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of every process named `postgres` on the machine.
fn postgres_cpu() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "postgres")
        })
        .map(process_cpu)
        .sum()
}
