//! Demo data for the one-command bank: two customers with two accounts
//! each and a history of deposits, withdrawals and transfers, and one
//! staff log-in. Their passwords are made at the first start and kept,
//! owner-only, in the state directory, so the printed log-ins keep working.
//!
//! The history itself is the load tool's demo preset
//! (`populate::demo`): everything goes through the services' APIs like
//! any customer's actions, with fixed idempotency keys.

use std::{path::Path, time::Duration};

use anyhow::Context;
use bus::{
    client::{BusClient, ClientConfig},
    protocol::Mode,
};
use events::{AccountCreated, DomainEvent};
use serde::{Deserialize, Serialize};

use super::services::Services;

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
        let [alice, bob] = populate::demo::customers(String::new(), String::new());
        let logins = Self {
            staff: login("staff", "Bank staff"),
            customers: vec![
                login(&alice.username, &alice.display_name),
                login(&bob.username, &bob.display_name),
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

/// Signs the demo customers up and gives them a history: the load tool's
/// demo preset (`populate --preset demo`), with the passwords kept here.
pub async fn seed(services: &Services, logins: &DemoLogins) -> anyhow::Result<()> {
    let urls = services.urls();
    let client = populate::Client::new(
        populate::Endpoints {
            users: vec![urls.users.clone()],
            accounts: vec![urls.accounts.clone()],
            transactions: vec![urls.transactions.clone()],
        },
        services.caller_token().to_owned(),
        Duration::from_secs(30),
    )?;
    let [alice, bob] = &logins.customers[..] else {
        anyhow::bail!(
            "the demo log-in file names {} customers, not two",
            logins.customers.len()
        );
    };
    let mut customers = populate::demo::customers(alice.password.clone(), bob.password.clone());
    for (customer, login) in customers.iter_mut().zip([alice, bob]) {
        anyhow::ensure!(
            customer.username == login.username,
            "the demo log-in file names {}, where the demo has {}",
            login.username,
            customer.username
        );
    }
    populate::demo::seed(&client, &customers).await
}
