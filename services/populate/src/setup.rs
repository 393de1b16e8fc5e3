//! The run's customers: each signed up (with a first account), logged in
//! like any client, given the rest of their accounts, and an opening
//! deposit on each.

use std::time::Duration;

use futures_util::{StreamExt, stream::FuturesUnordered};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::{sync::RwLock, time::Instant};

use crate::{
    client::{Answer, Call, Client, Service},
    options::Pace,
    plan::{Plan, PlannedCustomer},
    receipts::{Receipt, Receipts},
    report::{Final, OperationKind, Phase, Report},
};

/// How long an account may stay pending before the run gives up on it.
const ACCOUNT_PATIENCE: Duration = Duration::from_secs(60);

/// A customer of the run, logged in.
#[derive(Debug)]
pub struct Customer {
    pub username: String,
    password: String,
    token: RwLock<String>,
    /// In slot order.
    pub accounts: Vec<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{what}: {answer}")]
    Refused { what: String, answer: String },
    #[error("{what}: {source}")]
    Unanswered {
        what: String,
        source: crate::client::CallError,
    },
    #[error("{0}")]
    Stuck(String),
}

impl Customer {
    /// The customer's token now.
    pub async fn token(&self) -> String {
        self.token.read().await.clone()
    }

    /// `call` as this customer; logged in again once if the token has expired.
    pub async fn send(
        &self,
        client: &Client,
        service: Service,
        method: Method,
        path: String,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Answer, crate::client::CallError> {
        let token = self.token().await;
        let call = |token| Call {
            service,
            method: method.clone(),
            path: path.clone(),
            user_token: Some(token),
            idempotency_key: key,
            body,
        };
        let answer = client.send(&call(&token)).await?;
        if answer.status != 401 {
            return Ok(answer);
        }
        let renewed = log_in(client, &self.username, &self.password).await?;
        match renewed {
            Ok(fresh) => {
                *self.token.write().await = fresh.clone();
                client.send(&call(&fresh)).await
            }
            Err(refused) => Ok(refused),
        }
    }
}

/// Sets every customer of `plan` up, `pace.concurrency` at a time.
pub async fn set_up(
    client: &Client,
    plan: &Plan,
    pace: &Pace,
    report: &Report,
    receipts: &Receipts,
    progress: &indicatif::MultiProgress,
) -> Result<Vec<Customer>, SetupError> {
    let bar = progress.add(crate::load::bar(plan.customers.len() as u64, "customers"));
    let started = Instant::now();
    let concurrency = pace.concurrency.max(1);
    let mut in_flight = FuturesUnordered::new();
    let mut done: Vec<(usize, Customer)> = Vec::with_capacity(plan.customers.len());
    let mut waiting = plan.customers.iter().enumerate();
    loop {
        while in_flight.len() < concurrency {
            let Some((number, planned)) = waiting.next() else {
                break;
            };
            in_flight.push(async move {
                (
                    number,
                    set_up_one(client, plan, number, planned, report, receipts).await,
                )
            });
        }
        let Some((number, customer)) = in_flight.next().await else {
            break;
        };
        bar.inc(1);
        done.push((number, customer?));
    }
    bar.finish();
    report.phase_took(Phase::Setup, started.elapsed());
    done.sort_by_key(|(number, _)| *number);
    Ok(done.into_iter().map(|(_, customer)| customer).collect())
}

async fn set_up_one(
    client: &Client,
    plan: &Plan,
    number: usize,
    planned: &PlannedCustomer,
    report: &Report,
    receipts: &Receipts,
) -> Result<Customer, SetupError> {
    let run = &plan.run;
    let accounts = planned.opening_deposits.len();
    let customer = enrol(client, run, planned, accounts, report, receipts).await?;
    for (slot, amount) in planned.opening_deposits.iter().enumerate() {
        let started = Instant::now();
        let account = customer.accounts[slot];
        let key = format!("{run}-opening-{number}-{slot}");
        let what = format!("account {account}");
        let body = json!({"amount": amount.to_string(), "note": crate::verify::tag(run)});
        let answer = definite(
            customer
                .send(
                    client,
                    Service::Accounts,
                    Method::POST,
                    format!("/accounts/{account}/deposits"),
                    Some(&key),
                    Some(&body),
                )
                .await,
            OperationKind::OpeningDeposit,
            &what,
            report,
        )?;
        let booked = expect(answer, 201, OperationKind::OpeningDeposit, &what, report)?;
        report.record(
            OperationKind::OpeningDeposit,
            started.elapsed(),
            Final::Accepted,
        );
        let receipt =
            crate::load::entry_receipt(&booked, "ConfirmedCredit", &key).ok_or_else(|| {
                let why = format!("a booking without its entry: {booked}");
                report.fail(OperationKind::OpeningDeposit, format!("{what}: {why}"));
                SetupError::Stuck(why)
            })?;
        receipts.keep(receipt);
    }
    Ok(customer)
}

/// Signs `planned` up, logs them in and opens their accounts (`accounts`
/// in all, the first at sign-up). Idempotency keys start with `prefix`.
pub async fn enrol(
    client: &Client,
    prefix: &str,
    planned: &PlannedCustomer,
    accounts: usize,
    report: &Report,
    receipts: &Receipts,
) -> Result<Customer, SetupError> {
    let started = Instant::now();
    let signup_key = format!("{prefix}-signup-{}", planned.username);
    let body = json!({
        "username": planned.username,
        "display_name": planned.display_name,
        "password": planned.password,
    });
    let answer = definite(
        client
            .send(&Call {
                service: Service::Users,
                method: Method::POST,
                path: "/users".into(),
                user_token: None,
                idempotency_key: Some(&signup_key),
                body: Some(&body),
            })
            .await,
        OperationKind::SignUp,
        &planned.username,
        report,
    )?;
    let first = expect(
        answer,
        201,
        OperationKind::SignUp,
        &planned.username,
        report,
    )?;
    let token = match log_in(client, &planned.username, &planned.password).await {
        Ok(Ok(token)) => token,
        Ok(Err(refused)) => {
            return Err(refused_by(
                OperationKind::SignUp,
                &planned.username,
                refused,
                report,
            ));
        }
        Err(source) => {
            return Err(unanswered(
                OperationKind::SignUp,
                &planned.username,
                source,
                report,
            ));
        }
    };
    let mut customer = Customer {
        username: planned.username.clone(),
        password: planned.password.clone(),
        token: RwLock::new(token),
        accounts: Vec::new(),
    };
    let first_account = opened(client, &customer, &first["first_account"])
        .await
        .inspect_err(|error| report.fail(OperationKind::SignUp, error.to_string()))?;
    report.record(OperationKind::SignUp, started.elapsed(), Final::Accepted);
    receipts.keep(account_created(first_account, &signup_key));
    customer.accounts.push(first_account);

    for slot in 1..accounts {
        let started = Instant::now();
        let key = format!("{prefix}-open-{}-{slot}", planned.username);
        let what = format!("{} slot {slot}", planned.username);
        let answer = definite(
            customer
                .send(
                    client,
                    Service::Users,
                    Method::POST,
                    format!("/users/{}/accounts", planned.username),
                    Some(&key),
                    None,
                )
                .await,
            OperationKind::AccountOpening,
            &what,
            report,
        )?;
        let status = answer.status;
        let request = if status == 201 || status == 202 {
            answer.body
        } else {
            return Err(refused_by(
                OperationKind::AccountOpening,
                &what,
                answer,
                report,
            ));
        };
        let account = opened(client, &customer, &request)
            .await
            .inspect_err(|error| report.fail(OperationKind::AccountOpening, error.to_string()))?;
        report.record(
            OperationKind::AccountOpening,
            started.elapsed(),
            Final::Accepted,
        );
        receipts.keep(account_created(account, &key));
        customer.accounts.push(account);
    }

    Ok(customer)
}

/// Logs in: the token, or the refusal.
pub async fn log_in(
    client: &Client,
    username: &str,
    password: &str,
) -> Result<Result<String, Answer>, crate::client::CallError> {
    let _turn = client.log_in_turn().await;
    let body = json!({"username": username, "password": password});
    let answer = client
        .send(&Call {
            service: Service::Users,
            method: Method::POST,
            path: "/sessions".into(),
            user_token: None,
            idempotency_key: None,
            body: Some(&body),
        })
        .await?;
    Ok(match answer.body["token"].as_str() {
        Some(token) if answer.status == 200 => Ok(token.to_owned()),
        _ => Err(answer),
    })
}

/// The account an account request (as the users service shows it) opened,
/// asked for again until the accounts service has opened it.
async fn opened(client: &Client, customer: &Customer, request: &Value) -> Result<i64, SetupError> {
    if let Some(account) = request["account_id"].as_i64() {
        return Ok(account);
    }
    let request_id = request["request_id"]
        .as_str()
        .ok_or_else(|| SetupError::Stuck(format!("an account request without an id: {request}")))?;
    let deadline = Instant::now() + ACCOUNT_PATIENCE;
    let mut wait = Duration::from_millis(5);
    loop {
        let answer = customer
            .send(
                client,
                Service::Users,
                Method::GET,
                format!("/account-requests/{request_id}"),
                None,
                None,
            )
            .await
            .map_err(|source| SetupError::Unanswered {
                what: format!("account request {request_id}"),
                source,
            })?;
        if let Some(account) = answer.body["account_id"].as_i64() {
            return Ok(account);
        }
        if Instant::now() > deadline {
            return Err(SetupError::Stuck(format!(
                "account request {request_id} of {} was not opened within {ACCOUNT_PATIENCE:?}: {}",
                customer.username,
                answer.describe()
            )));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(200));
    }
}

fn account_created(account: i64, request: &str) -> Receipt {
    Receipt {
        event_type: "AccountCreated",
        key: events::account_key(account),
        value: 0,
        request: request.to_owned(),
    }
}

fn definite(
    answer: Result<Answer, crate::client::CallError>,
    kind: OperationKind,
    what: &str,
    report: &Report,
) -> Result<Answer, SetupError> {
    answer.map_err(|source| unanswered(kind, what, source, report))
}

fn expect(
    answer: Answer,
    status: u16,
    kind: OperationKind,
    what: &str,
    report: &Report,
) -> Result<Value, SetupError> {
    if answer.status == status {
        Ok(answer.body)
    } else {
        Err(refused_by(kind, what, answer, report))
    }
}

fn refused_by(kind: OperationKind, what: &str, answer: Answer, report: &Report) -> SetupError {
    report.fail(kind, format!("{what}: {}", answer.describe()));
    SetupError::Refused {
        what: format!("{} of {what}", kind.name()),
        answer: answer.describe(),
    }
}

fn unanswered(
    kind: OperationKind,
    what: &str,
    source: crate::client::CallError,
    report: &Report,
) -> SetupError {
    report.fail(kind, format!("{what}: {source}"));
    SetupError::Unanswered {
        what: format!("{} of {what}", kind.name()),
        source,
    }
}
