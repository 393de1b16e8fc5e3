//! `populate`: fills a bank with customers and money movements through the
//! services' APIs, reports throughput and latency, and checks the log.
//! See the crate's docs (`src/lib.rs`) and `services/README.md`.

use std::{io::Write, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::Parser;
use indicatif::{MultiProgress, ProgressDrawTarget};
use populate::{
    AmountRange, Client, Endpoints, Mix, Pace, Plan, Shape, options::Rate, plan::new_run_name,
};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Fill a Ledgerline bank with customers and money movements, measure it, check its log"
)]
struct Args {
    /// The users service (several, comma-separated, to spread calls over instances).
    #[arg(long, env = "USERS_URL", value_delimiter = ',', required = true)]
    users_url: Vec<String>,
    #[arg(long, env = "ACCOUNTS_URL", value_delimiter = ',', required = true)]
    accounts_url: Vec<String>,
    #[arg(long, env = "TRANSACTIONS_URL", value_delimiter = ',', required = true)]
    transactions_url: Vec<String>,
    /// A file holding this tool's caller token (the installation's `populate` caller).
    #[arg(long, env = "CALLER_TOKEN_FILE")]
    caller_token_file: PathBuf,

    /// The bus, for --verify.
    #[arg(long, env = "BUS_URL")]
    bus_url: Option<String>,
    /// A file holding a bus token that may read every banking event (the
    /// installation's `staff` bus token), for --verify.
    #[arg(long, env = "BUS_TOKEN_FILE")]
    bus_token_file: Option<PathBuf>,

    /// Customers to sign up.
    #[arg(long, default_value_t = 10)]
    users: usize,
    /// Accounts each customer holds (1 to 10; the first is opened at sign-up).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=10))]
    accounts_per_user: u8,
    /// Random deposits, withdrawals and transfers per account.
    #[arg(long, default_value_t = 10)]
    operations_per_account: usize,
    /// Each account's opening deposit, drawn from LOW..HIGH.
    #[arg(long, default_value = "100.00..1000.00")]
    opening_deposit: AmountRange,
    /// Each operation's amount, drawn from LOW..HIGH.
    #[arg(long, default_value = "1.00..250.00")]
    amount: AmountRange,
    /// Weights of deposits, withdrawals and transfers.
    #[arg(long, default_value = "1,1,2")]
    mix: Mix,

    /// Requests in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Operations started per second, or "unlimited".
    #[arg(long, default_value = "unlimited")]
    rate: Rate,
    /// Start no operation after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Draws the run's customers and operations: the same seed, shape and
    /// run name make the same run, with the same idempotency keys.
    #[arg(long)]
    seed: Option<u64>,
    /// Names the run's customers and keys (1 to 16 of a-z and 0-9; random if not given).
    #[arg(long)]
    run: Option<String>,
    /// How long a request is sent again (same key) before it counts as failed.
    #[arg(long, default_value_t = 60.0)]
    patience: f64,

    /// Instead of a random population, the demo bank: two customers with
    /// two accounts each and a history. Their passwords are printed.
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// After the run, read the whole log from the bus and check it.
    #[arg(long)]
    verify: bool,
    /// Write every receipt (the key and value of each event a service said
    /// it stored) to this file, one JSON object per line.
    #[arg(long)]
    receipts: Option<PathBuf>,
}

/// A year: longer durations mean nothing here (and would not fit a timer).
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Preset {
    Demo,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("populate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let caller_token = read_secret(&args.caller_token_file)?;
    let verifying = if args.verify {
        let (Some(url), Some(file)) = (&args.bus_url, &args.bus_token_file) else {
            anyhow::bail!(
                "--verify reads the log from the bus: give --bus-url and --bus-token-file"
            );
        };
        Some((url.clone(), read_secret(file)?))
    } else {
        None
    };
    anyhow::ensure!(
        args.patience > 0.0 && args.patience <= MAX_SECONDS,
        "--patience is a positive number of seconds, at most a year"
    );
    let client = Client::new(
        Endpoints {
            users: args.users_url.clone(),
            accounts: args.accounts_url.clone(),
            transactions: args.transactions_url.clone(),
        },
        caller_token,
        Duration::from_secs_f64(args.patience),
    )?;

    if let Some(Preset::Demo) = args.preset {
        let password = || format!("demo-{:016x}", rand::random::<u64>());
        let customers = populate::demo::customers(password(), password());
        populate::demo::seed(&client, &customers).await?;
        println!("The demo bank is seeded. Log-ins (username / password):");
        for customer in &customers {
            println!("  {} / {}", customer.username, customer.password);
        }
        return Ok(ExitCode::SUCCESS);
    }

    let run = match args.run {
        Some(run) => {
            anyhow::ensure!(
                (1..=16).contains(&run.len())
                    && run
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "--run is 1 to 16 of a-z and 0-9: {run:?}"
            );
            run
        }
        None => new_run_name(),
    };
    let seed = args.seed.unwrap_or_else(rand::random);
    let duration = args
        .duration
        .map(|seconds| {
            anyhow::ensure!(
                seconds > 0.0 && seconds <= MAX_SECONDS,
                "--duration is a positive number of seconds, at most a year"
            );
            Ok(Duration::from_secs_f64(seconds))
        })
        .transpose()?;
    let shape = Shape {
        users: args.users,
        accounts_per_user: usize::from(args.accounts_per_user),
        operations_per_account: args.operations_per_account,
        opening_deposit: args.opening_deposit,
        amount: args.amount,
        mix: args.mix,
    };
    let pace = Pace {
        concurrency: usize::from(args.concurrency),
        rate: args.rate,
        duration,
    };
    let plan = Plan::draw(&run, &shape, seed);
    eprintln!(
        "run {run} (seed {seed}): {} customers, {} accounts, {} operations",
        shape.users,
        shape.users * shape.accounts_per_user,
        plan.operations.len()
    );
    let progress = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let (report, receipts) = (
        populate::Report::default(),
        populate::receipts::Receipts::default(),
    );
    let customers = match populate::run(&client, &plan, &pace, &report, &receipts, &progress).await
    {
        Ok(customers) => customers,
        Err(error) => {
            print!("{report}");
            return Err(error);
        }
    };
    print!("{report}");

    if let Some(path) = &args.receipts {
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("could not create {}", path.display()))?,
        );
        receipts.write_to(&mut file)?;
        file.flush()?;
    }

    let mut code = ExitCode::SUCCESS;
    if let Some((bus_url, bus_token)) = verifying {
        let expected = populate::verify::Expected::of(&plan.run, &receipts.all(), &report);
        match populate::check(
            &client,
            &customers,
            &receipts.all(),
            &expected,
            &bus_url,
            &bus_token,
        )
        .await?
        {
            Ok(summary) => println!("{summary}"),
            Err(problems) => {
                println!("{problems}");
                code = ExitCode::FAILURE;
            }
        }
    }
    let failed = report.failed();
    if failed > 0 {
        eprintln!(
            "populate: {failed} operations failed (no final answer, or one that should never come)"
        );
        code = ExitCode::FAILURE;
    }
    Ok(code)
}

fn read_secret(path: &PathBuf) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?;
    let secret = text.trim().to_owned();
    anyhow::ensure!(!secret.is_empty(), "{} is empty", path.display());
    Ok(secret)
}
