//! Demo data for the one-command bank: two customers with two accounts
//! each and a history of deposits, withdrawals and transfers, and one
//! staff log-in. Their passwords are made at the first start and kept,
//! owner-only, in the state directory, so the printed log-ins keep working.
//!
//! Everything goes through the services' APIs like any customer's
//! actions, with fixed idempotency keys: seeding twice changes nothing.
//! The bus stamps each event with the time it stores it, so the history
//! is dated at seeding; a bank cannot backdate its own log.

use std::{path::Path, time::Duration};

use anyhow::Context;
use bus::{
    client::{BusClient, ClientConfig},
    protocol::Mode,
};
use events::{AccountCreated, DomainEvent};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    services::{CallFor, Services},
    session::Issued,
};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Login {
    pub username: String,
    pub display_name: String,
    pub password: String,
}

/// The demo's log-ins: printed at start.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DemoLogins {
    pub staff: Login,
    pub customers: Vec<Login>,
}

impl DemoLogins {
    /// Reads `demo-logins.json` from `dir`, or makes it.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("demo-logins.json");
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("could not read {}", path.display()))?;
            return serde_json::from_str(&text)
                .with_context(|| format!("{} is not a demo log-in file", path.display()));
        }
        let login = |username: &str, display_name: &str| Login {
            username: username.to_owned(),
            display_name: display_name.to_owned(),
            password: format!("demo-{}", &trust::secret::new_token()[..12]),
        };
        let logins = Self {
            staff: login("staff", "Bank staff"),
            customers: vec![
                login("alice", "Alice Fairweather"),
                login("bob", "Bob Marsh"),
            ],
        };
        write_private(&path, &serde_json::to_string_pretty(&logins)?)
            .with_context(|| format!("could not write {}", path.display()))?;
        Ok(logins)
    }

    /// What `ledgerline` prints once it is up.
    pub fn describe(&self) -> String {
        let mut text = String::from("Demo log-ins (username / password):\n");
        for login in &self.customers {
            text.push_str(&format!(
                "  customer  {} / {}\n",
                login.username, login.password
            ));
        }
        text.push_str(&format!(
            "  staff     {} / {}",
            self.staff.username, self.staff.password
        ));
        text
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

/// True when no account has ever been opened: a new bank, to be seeded.
pub async fn bank_is_new(bus_url: &str, web_bus_token: &str) -> anyhow::Result<bool> {
    let (client, _) = BusClient::connect(ClientConfig::new(bus_url).token(web_bus_token).register(
        "web",
        &[AccountCreated::TYPE],
        Mode::Observe,
    ))
    .await?;
    let head = client.head_position().await;
    client.close();
    Ok(head? == 0)
}

/// Signs the demo customers up and gives them a history.
pub async fn seed(services: &Services, logins: &DemoLogins) -> anyhow::Result<()> {
    let mut accounts = Vec::new();
    for customer in &logins.customers {
        accounts.push(open_two_accounts(services, customer).await?);
    }
    let [alice, bob] = [&accounts[0], &accounts[1]];
    let (alice_current, alice_savings) = (alice.accounts[0], alice.accounts[1]);
    let (bob_current, bob_savings) = (bob.accounts[0], bob.accounts[1]);

    let steps: &[(&Customer, &str, Value)] = &[
        (
            alice,
            "deposit",
            json!({"account": alice_current, "amount": "2450.00", "note": "Salary, Harbour & Co"}),
        ),
        (
            alice,
            "deposit",
            json!({"account": alice_savings, "amount": "5000.00", "note": "Opening deposit"}),
        ),
        (
            bob,
            "deposit",
            json!({"account": bob_current, "amount": "1875.40", "note": "Salary, Northfield Trust"}),
        ),
        (
            bob,
            "deposit",
            json!({"account": bob_savings, "amount": "1200.00", "note": "Opening deposit"}),
        ),
        (
            alice,
            "withdraw",
            json!({"account": alice_current, "amount": "62.18", "note": "Groceries"}),
        ),
        (
            alice,
            "transfer",
            json!({"from": alice_current, "to": bob_current, "amount": "45.00", "reference": "Concert tickets"}),
        ),
        (
            bob,
            "withdraw",
            json!({"account": bob_current, "amount": "750.00", "note": "Rent"}),
        ),
        (
            alice,
            "transfer",
            json!({"from": alice_current, "to": alice_savings, "amount": "400.00", "reference": "Monthly saving"}),
        ),
        (
            bob,
            "transfer",
            json!({"from": bob_current, "to": alice_current, "amount": "18.50", "reference": "Lunch"}),
        ),
        (
            alice,
            "withdraw",
            json!({"account": alice_current, "amount": "120.00", "note": "Cash machine"}),
        ),
        (
            bob,
            "deposit",
            json!({"account": bob_current, "amount": "60.00", "note": "Refund, Railway Ltd"}),
        ),
        (
            bob,
            "transfer",
            json!({"from": bob_current, "to": bob_savings, "amount": "200.00", "reference": "Holiday fund"}),
        ),
        (
            alice,
            "withdraw",
            json!({"account": alice_current, "amount": "34.99", "note": "Phone bill"}),
        ),
    ];
    for (number, (customer, kind, step)) in steps.iter().enumerate() {
        let key = format!("demo-{number}");
        let call = CallFor {
            user_token: Some(&customer.token),
            idempotency_key: Some(&key),
            ..CallFor::default()
        };
        match *kind {
            "deposit" | "withdraw" => {
                let path = if *kind == "deposit" {
                    "deposits"
                } else {
                    "withdrawals"
                };
                let body = json!({"amount": step["amount"], "note": step["note"]});
                services
                    .accounts::<Value>(
                        Method::POST,
                        &format!("/accounts/{}/{path}", step["account"]),
                        &call,
                        Some(&body),
                    )
                    .await?;
            }
            _ => {
                let body = json!({
                    "from_account_id": step["from"],
                    "to_account_id": step["to"],
                    "amount": step["amount"],
                    "reference": step["reference"],
                });
                services
                    .transactions::<Value>(Method::POST, "/transfers", &call, Some(&body))
                    .await?;
            }
        }
    }
    Ok(())
}

struct Customer {
    token: String,
    accounts: [i64; 2],
}

#[derive(Deserialize)]
struct AccountRequests {
    accounts: Vec<AccountRequest>,
}

#[derive(Deserialize)]
struct AccountRequest {
    account_id: Option<i64>,
}

/// Signs `login` up (with its first account), asks for a second account,
/// and waits until both are open.
async fn open_two_accounts(services: &Services, login: &Login) -> anyhow::Result<Customer> {
    let signup_key = format!("demo-signup-{}", login.username);
    let body = json!({
        "username": login.username,
        "display_name": login.display_name,
        "password": login.password,
    });
    let signup = CallFor {
        idempotency_key: Some(&signup_key),
        ..CallFor::default()
    };
    services
        .users::<Value>(Method::POST, "/users", &signup, Some(&body))
        .await
        .with_context(|| format!("could not sign up the demo customer {}", login.username))?;
    let credentials = json!({"username": login.username, "password": login.password});
    let issued: Issued = services
        .users(
            Method::POST,
            "/sessions",
            &CallFor::default(),
            Some(&credentials),
        )
        .await?;
    let second_key = format!("demo-second-account-{}", login.username);
    let call = CallFor {
        user_token: Some(&issued.token),
        idempotency_key: Some(&second_key),
        ..CallFor::default()
    };
    let path = format!("/users/{}/accounts", login.username);
    services
        .users::<Value>(Method::POST, &path, &call, None::<&()>)
        .await?;

    let as_customer = CallFor {
        user_token: Some(&issued.token),
        ..CallFor::default()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let requests: AccountRequests = services
            .users(Method::GET, &path, &as_customer, None::<&()>)
            .await?;
        let opened: Vec<i64> = requests
            .accounts
            .iter()
            .filter_map(|request| request.account_id)
            .collect();
        if let [first, second, ..] = opened[..] {
            return Ok(Customer {
                token: issued.token.clone(),
                accounts: [first, second],
            });
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the demo accounts of {} were not opened within 30 s",
            login.username
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
