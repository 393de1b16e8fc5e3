//! `populate`: Ledgerline's population and load tool.
//!
//! It acts like any client of the bank: it signs customers up through the
//! users service, logs them in (user tokens), opens their accounts, pays
//! opening deposits, then makes random deposits, withdrawals and transfers
//! through the accounts and transactions services, with an idempotency key
//! on every request that changes state, and the same key again after any
//! answer that leaves the outcome open. It reports throughput and the
//! latency from request to final status, and with `--verify` reads the
//! whole event log from the bus and checks it independently of the
//! services.
//!
//! - [`options`]: what to make (the plan's shape) and how fast.
//! - [`plan`]: the run's customers and operations, drawn from one seed.
//! - [`client`]: HTTP calls, retries with the same key, user tokens.
//! - [`setup`]: customers, accounts and opening deposits.
//! - [`load`]: the operations, at a concurrency and a rate, for a duration.
//! - [`report`]: counts and HdrHistogram latencies per kind of operation.
//! - [`receipts`]: every event a service said it stored, as a key and value.
//! - [`log`]: the whole log, read through the bus's `query`.
//! - [`verify`]: the checks of the log.
//! - [`demo`]: the one-command bank's demo customers and their history.

pub mod client;
pub mod demo;
pub mod load;
pub mod log;
pub mod options;
pub mod plan;
pub mod receipts;
pub mod report;
pub mod setup;
pub mod verify;

pub use client::{Client, Endpoints};
pub use options::{AmountRange, Mix, Pace, Shape};
pub use plan::Plan;
pub use report::Report;
pub use verify::{Summary, verify};

/// Runs a whole population: setup, then the operations, recording into
/// `report` and `receipts` as it goes (so a caller can watch it). The
/// customers, with their accounts.
pub async fn run(
    client: &Client,
    plan: &Plan,
    pace: &Pace,
    report: &Report,
    receipts: &receipts::Receipts,
    progress: &indicatif::MultiProgress,
) -> anyhow::Result<Vec<setup::Customer>> {
    let customers = setup::set_up(client, plan, pace, report, receipts, progress).await?;
    load::run(client, plan, &customers, pace, report, receipts, progress).await;
    Ok(customers)
}

/// The `--verify` step: reads the balances of the run's accounts from the
/// accounts service (as their owners) and the whole log from the bus, and
/// checks them.
pub async fn check(
    client: &Client,
    customers: &[setup::Customer],
    receipts: &[receipts::Receipt],
    expected: &verify::Expected,
    bus_url: &str,
    bus_token: &str,
) -> anyhow::Result<Result<Summary, verify::Problems>> {
    let mut reported = std::collections::BTreeMap::new();
    for customer in customers {
        for account in &customer.accounts {
            let answer = customer
                .send(
                    client,
                    client::Service::Accounts,
                    reqwest::Method::GET,
                    format!("/accounts/{account}"),
                    None,
                    None,
                )
                .await?;
            let balance = answer.body["balance"]
                .as_str()
                .and_then(|balance| balance.parse::<rust_decimal::Decimal>().ok());
            match (answer.status, balance) {
                (200, Some(balance)) => {
                    reported.insert(*account, balance);
                }
                _ => anyhow::bail!("account {account}: {}", answer.describe()),
            }
        }
    }
    let log = log::read(bus_url, bus_token).await?;
    Ok(verify(&log, &reported, receipts, Some(expected)))
}
