//! The run's operations: `pace.concurrency` in flight at once, started no
//! faster than `pace.rate`, none started after `pace.duration`.
//!
//! A deposit or withdrawal is final with the service's answer. A transfer
//! is asked for (202, pending), then looked at with `?wait=`, which the
//! service answers when the transfer is accepted or rejected: its latency
//! runs to that final status.

use std::time::Duration;

use futures_util::{StreamExt, stream::FuturesUnordered};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::{
    client::{Answer, CallError, Client, Service},
    options::{Pace, Rate},
    plan::{Kind, Operation, Plan},
    receipts::{Receipt, Receipts},
    report::{Final, OperationKind, Phase, Report},
    setup::Customer,
};

/// How long a transfer may stay pending before it counts as failed.
const DECISION_PATIENCE: Duration = Duration::from_secs(120);
/// How long one look at a pending transfer waits for its decision.
const DECISION_WAIT: Duration = Duration::from_secs(5);
/// A transfer not shown yet is looked at again after this, doubling up to
/// the longest.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// A progress bar in the tool's style (drawn only on a terminal).
pub fn bar(length: u64, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(length);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} {per_sec:>12} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(what);
    bar
}

/// Everything an operation needs.
struct Context<'a> {
    client: &'a Client,
    plan: &'a Plan,
    customers: &'a [Customer],
    report: &'a Report,
    receipts: &'a Receipts,
}

pub async fn run(
    client: &Client,
    plan: &Plan,
    customers: &[Customer],
    pace: &Pace,
    report: &Report,
    receipts: &Receipts,
    progress: &MultiProgress,
) {
    let context = Context {
        client,
        plan,
        customers,
        report,
        receipts,
    };
    let bar = progress.add(bar(plan.operations.len() as u64, "operations"));
    let started = Instant::now();
    let stop_at = pace.duration.map(|duration| started + duration);
    let mut ticks = match pace.rate {
        Rate::Unlimited => None,
        Rate::PerSecond(rate) => {
            let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            // Behind schedule, go on at the rate rather than in a burst.
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            Some(interval)
        }
    };
    let concurrency = pace.concurrency.max(1);
    // Driven here, on this task: each operation waits on the network.
    let mut in_flight = FuturesUnordered::new();
    let mut started_count = 0u64;
    for operation in &plan.operations {
        while in_flight.len() >= concurrency {
            in_flight.next().await;
            show(&bar, report);
        }
        if let Some(ticks) = ticks.as_mut() {
            let stop =
                stop_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600));
            loop {
                tokio::select! {
                    _ = ticks.tick() => break,
                    _ = tokio::time::sleep_until(stop) => break,
                    Some(()) = in_flight.next(), if !in_flight.is_empty() => show(&bar, report),
                }
            }
        }
        if stop_at.is_some_and(|stop| Instant::now() >= stop) {
            break;
        }
        started_count += 1;
        in_flight.push(perform(&context, operation));
    }
    while in_flight.next().await.is_some() {
        show(&bar, report);
    }
    report.not_started(plan.operations.len() as u64 - started_count);
    report.phase_took(Phase::Operations, started.elapsed());
    bar.finish();
}

fn show(bar: &ProgressBar, report: &Report) {
    bar.inc(1);
    let (accepted, rejected, failed) = report.settled();
    bar.set_message(format!(
        "accepted {accepted} rejected {rejected} failed {failed}"
    ));
}

async fn perform(context: &Context<'_>, operation: &Operation) {
    let started = Instant::now();
    let customer = &context.customers[operation.account.customer];
    let account = customer.accounts[operation.account.slot];
    let key = format!("{}-op-{}", context.plan.run, operation.number);
    let amount = operation.amount.to_string();
    let (kind, outcome) = match operation.kind {
        Kind::Deposit | Kind::Withdrawal => {
            let (kind, path, event_type) = if operation.kind == Kind::Deposit {
                (OperationKind::Deposit, "deposits", "ConfirmedCredit")
            } else {
                (OperationKind::Withdrawal, "withdrawals", "ConfirmedDebit")
            };
            let body = json!({"amount": amount, "note": crate::verify::tag(&context.plan.run)});
            let answer = customer
                .send(
                    context.client,
                    Service::Accounts,
                    Method::POST,
                    format!("/accounts/{account}/{path}"),
                    Some(&key),
                    Some(&body),
                )
                .await;
            (kind, movement(answer, event_type, &key, context.receipts))
        }
        Kind::Transfer { to } => {
            let to = context.customers[to.customer].accounts[to.slot];
            let body = json!({
                "from_account_id": account,
                "to_account_id": to,
                "amount": amount,
                "reference": crate::verify::tag(&context.plan.run),
            });
            let outcome = transfer(context, customer, &key, &body).await;
            (OperationKind::Transfer, outcome)
        }
    };
    match outcome {
        Ok(outcome) => context.report.record(kind, started.elapsed(), outcome),
        Err(why) => context.report.fail(kind, format!("{key}: {why}")),
    }
}

/// A deposit's or withdrawal's answer: booked (201), or refused for
/// insufficient funds (422).
fn movement(
    answer: Result<Answer, CallError>,
    event_type: &'static str,
    key: &str,
    receipts: &Receipts,
) -> Result<Final, String> {
    let answer = answer.map_err(|error| error.to_string())?;
    match answer.status {
        201 => {
            let receipt = entry_receipt(&answer.body, event_type, key)
                .ok_or_else(|| format!("a booking without its entry: {}", answer.body))?;
            receipts.keep(receipt);
            Ok(Final::Accepted)
        }
        422 if answer.code() == "insufficient_funds" => Ok(Final::Rejected),
        _ => Err(answer.describe()),
    }
}

/// The receipt of a booked deposit or withdrawal: the account's event at
/// the entry's version.
pub fn entry_receipt(booked: &Value, event_type: &'static str, request: &str) -> Option<Receipt> {
    Some(Receipt {
        event_type,
        key: events::account_key(booked["account_id"].as_i64()?),
        value: booked["entry"]["version"].as_i64()?,
        request: request.to_owned(),
    })
}

/// Asks for a transfer, then waits for its decision.
async fn transfer(
    context: &Context<'_>,
    customer: &Customer,
    key: &str,
    body: &Value,
) -> Result<Final, String> {
    let answer = customer
        .send(
            context.client,
            Service::Transactions,
            Method::POST,
            "/transfers".into(),
            Some(key),
            Some(body),
        )
        .await
        .map_err(|error| error.to_string())?;
    if answer.status != 202 {
        return Err(answer.describe());
    }
    let id = answer.body["transaction_id"]
        .as_i64()
        .ok_or_else(|| format!("a transfer without an id: {}", answer.body))?;
    context.receipts.keep(Receipt {
        event_type: "PendingTransaction",
        key: events::transfer_key(id),
        value: 0,
        request: key.to_owned(),
    });
    let deadline = Instant::now() + DECISION_PATIENCE;
    let mut pause = FIRST_PAUSE;
    loop {
        // The service answers when the transfer is decided, or after the
        // wait with it still pending.
        let answer = customer
            .send(
                context.client,
                Service::Transactions,
                Method::GET,
                format!("/transfers/{id}?wait={}", DECISION_WAIT.as_secs()),
                None,
                None,
            )
            .await
            .map_err(|error| error.to_string())?;
        // A 404 is a transfer this instance does not show yet (another
        // took the request); it is looked at again, after a pause, until
        // the patience runs out.
        match (answer.status, answer.body["status"].as_str()) {
            (200, Some("accepted")) => return Ok(Final::Accepted),
            (200, Some("rejected")) => return Ok(Final::Rejected),
            (200, Some("pending")) => {}
            (404, _) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
            _ => return Err(format!("transfer {id}: {}", answer.describe())),
        }
        if Instant::now() > deadline {
            return Err(format!(
                "transfer {id} was still pending after {DECISION_PATIENCE:?}"
            ));
        }
    }
}
