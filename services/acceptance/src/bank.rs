//! The bus and the services, started together, and how tests talk to them.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use bus::{
    client::{BusClient, ClientConfig, QueryFrom, QueryItem, QuerySpec},
    protocol::EventRecord,
};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use trust::bundle::{Bundle, Layout};

use testkit::{TestDb, eventually};

use crate::{Api, PASSWORD, Process, STAFF, Service, Sessions};

/// The installation's tokens and keys, generated for one test and written
/// to a private directory of its own.
pub struct Trust {
    pub bundle: Bundle,
    pub files: Layout,
    /// The bus's development token: the tests read the whole log with it.
    pub admin_token: String,
}

impl Trust {
    pub fn generate() -> Self {
        let bundle = Bundle::generate();
        let dir: PathBuf =
            std::env::temp_dir().join(format!("ledgerline-trust-{}", uuid::Uuid::now_v7()));
        let files = bundle.write(&dir).expect("write the tokens and keys");
        Self {
            bundle,
            files,
            admin_token: trust::secret::new_token(),
        }
    }
}

impl Drop for Trust {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.files.dir);
    }
}

/// The bus and one instance of each service, on one test database.
pub struct Bank {
    // Fields drop in order: the processes stop before their database goes.
    pub users: Process,
    pub accounts: Vec<Process>,
    pub transactions: Process,
    pub reporting: Process,
    pub bus: Process,
    pub db: TestDb,
    pub trust: Trust,
    pub http: reqwest::Client,
    sessions: Arc<Sessions>,
}

impl Bank {
    pub async fn start() -> Self {
        Self::start_with_accounts(1).await
    }

    /// With `accounts` instances of the accounts service.
    pub async fn start_with_accounts(accounts: usize) -> Self {
        Self::start_on(TestDb::new().await, accounts)
    }

    /// On `db` (a database on a private cluster, say), with `accounts`
    /// instances of the accounts service.
    pub fn start_on(db: TestDb, accounts: usize) -> Self {
        let trust = Trust::generate();
        let bus = Process::bus(&db.url, &trust);
        let users = Process::service(Service::Users, &db.url, &bus, &trust);
        let accounts = (0..accounts)
            .map(|_| Process::service(Service::Accounts, &db.url, &bus, &trust))
            .collect();
        let transactions = Process::service(Service::Transactions, &db.url, &bus, &trust);
        let reporting = Process::service(Service::Reporting, &db.url, &bus, &trust);
        let sessions = Arc::new(Sessions::new(
            users.http_base(),
            trust.bundle.caller_token("web").to_owned(),
            STAFF,
        ));
        Self {
            users,
            accounts,
            transactions,
            reporting,
            bus,
            db,
            trust,
            http: reqwest::Client::new(),
            sessions,
        }
    }

    /// The load tool's client of this bank: its own caller token, every
    /// instance of each service here and in `more`.
    pub fn populate_client(&self, more: &[Process]) -> populate::Client {
        let mut endpoints = populate::Endpoints {
            users: vec![self.users.http_base()],
            accounts: self.accounts.iter().map(Process::http_base).collect(),
            transactions: vec![self.transactions.http_base()],
        };
        for process in more {
            let list = match process.kind() {
                Some(Service::Users) => &mut endpoints.users,
                Some(Service::Accounts) => &mut endpoints.accounts,
                Some(Service::Transactions) => &mut endpoints.transactions,
                _ => continue,
            };
            list.push(process.http_base());
        }
        populate::Client::new(
            endpoints,
            self.trust.bundle.caller_token("populate").to_owned(),
            std::time::Duration::from_secs(60),
        )
        .expect("every service has an address")
    }

    /// Calls to `service` as the web server makes them.
    pub fn call(&self, service: &Process) -> Api {
        Api::new(
            service.http_base(),
            self.trust.bundle.caller_token("web").to_owned(),
            self.sessions.clone(),
        )
    }

    /// A service restarted: where it is now.
    pub fn restarted(&self) {
        self.sessions.users_moved(self.users.http_base());
    }

    /// A new instance of a service, on the bank's database and bus.
    pub fn another(&self, service: Service) -> Process {
        Process::service(service, &self.db.url, &self.bus, &self.trust)
    }

    /// A new instance of a service with settings of the test's own.
    pub fn another_with(&self, service: Service, settings: &[(&str, &str)]) -> Process {
        Process::service_with(service, &self.db.url, &self.bus, &self.trust, settings)
    }

    /// A client of the bus with the token of the program `name` (one of
    /// the default scopes), or the development token for `None`.
    pub fn bus_config(&self, name: Option<&str>) -> ClientConfig {
        let token = match name {
            Some(name) => self.trust.bundle.bus_token(name),
            None => &self.trust.admin_token,
        };
        ClientConfig::new(self.bus.bus_url()).token(token)
    }

    /// Signs `username` up; returns the first account's id.
    pub async fn sign_up(&self, username: &str) -> i64 {
        let (status, body) = self
            .call(&self.users)
            .post(
                None,
                "/users",
                json!({"username": username, "display_name": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["first_account"]["account_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no first account: {body}"))
    }

    pub async fn deposit(&self, username: &str, account_id: i64, amount: &str) {
        let (status, body) = self
            .call(&self.accounts[0])
            .post(
                Some(username),
                &format!("/accounts/{account_id}/deposits"),
                json!({"amount": amount}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    pub async fn balance(&self, username: &str, account_id: i64) -> Decimal {
        let (status, body) = self
            .call(&self.accounts[0])
            .get(Some(username), &format!("/accounts/{account_id}"))
            .await;
        assert_eq!(status, 200, "{body}");
        money(&body["balance"])
    }

    /// Waits until the account's balance is `expected`.
    pub async fn balance_becomes(&self, username: &str, account_id: i64, expected: Decimal) {
        eventually(
            &format!("account {account_id} holds {expected}"),
            || async { (self.balance(username, account_id).await == expected).then_some(()) },
        )
        .await;
    }

    /// Asks for a transfer; returns its id.
    pub async fn transfer(&self, username: &str, from: i64, to: i64, amount: &str) -> i64 {
        let (status, body) = self
            .call(&self.transactions)
            .post(Some(username), "/transfers", json!({"from_account_id": from, "to_account_id": to, "amount": amount, "reference": "test"}))
            .await;
        assert_eq!(status, 202, "{body}");
        body["transaction_id"].as_i64().expect("an id")
    }

    /// Waits until the transfer is decided; returns it.
    pub async fn decided(&self, username: &str, transaction_id: i64) -> Value {
        let api = self.call(&self.transactions);
        eventually(&format!("transfer {transaction_id} decided"), || {
            let api = api.clone();
            async move {
                let (status, body) = api
                    .get(Some(username), &format!("/transfers/{transaction_id}"))
                    .await;
                (status == 200 && body["status"] != "pending").then_some(body)
            }
        })
        .await
    }

    /// Customers `user0`, `user1`, … each with a first account holding
    /// `amount`; their names and account ids.
    pub async fn funded_customers(&self, count: usize, amount: &str) -> Vec<(String, i64)> {
        let mut customers = Vec::with_capacity(count);
        for user in 0..count {
            let name = format!("user{user}");
            let account = self.sign_up(&name).await;
            self.deposit(&name, account, amount).await;
            customers.push((name, account));
        }
        customers
    }

    /// How many lines the account's whole statement has (read page by page).
    pub async fn statement_lines(&self, username: &str, account_id: i64) -> usize {
        let api = self.call(&self.accounts[0]);
        let mut lines = 0;
        let mut path = format!("/accounts/{account_id}/statement?limit=200");
        loop {
            let (status, page) = api.get(Some(username), &path).await;
            assert_eq!(status, 200, "{page}");
            lines += page["entries"].as_array().map_or(0, Vec::len);
            match page["next_before"].as_i64() {
                Some(before) => {
                    path = format!("/accounts/{account_id}/statement?limit=200&before={before}")
                }
                None => return lines,
            }
        }
    }

    /// The events the bus has parked for the accounts service, as its staff
    /// endpoint lists them; `None` while the bus does not answer.
    pub async fn parked_for_accounts(&self) -> Option<Vec<Value>> {
        let body: Value = self
            .http
            .get(format!(
                "{}/parked?client_type=accounts",
                self.bus.http_base()
            ))
            .bearer_auth(self.trust.bundle.bus_token("staff"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body["parked"].as_array().cloned()
    }

    /// The first accounts instance's `/metrics` page.
    pub async fn accounts_metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.accounts[0].http_base()))
            .send()
            .await
            .expect("an answer")
            .text()
            .await
            .expect("text")
    }

    /// The first accounts instance's value of the metric written exactly
    /// `series` (a name, with its labels if it has any); 0 before it is
    /// first counted.
    pub async fn accounts_metric(&self, series: &str) -> u64 {
        let prefix = format!("{series} ");
        self.accounts_metrics()
            .await
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .map_or(0, |count| count.trim().parse().unwrap_or(0))
    }

    /// Every stored event of `types` (all: `["*"]`), read from the bus.
    pub async fn log(&self, types: &[&str]) -> Vec<EventRecord> {
        let (client, _) = BusClient::connect(self.bus_config(None))
            .await
            .expect("connect to the bus");
        let mut answer = client
            .query(QuerySpec {
                event_types: types.iter().map(|t| (*t).to_owned()).collect(),
                start: QueryFrom::AfterPosition(0),
                key: None,
                limit: None,
            })
            .expect("query");
        let mut events = Vec::new();
        while let QueryItem::Batch(batch) =
            answer.next().await.expect("an answer").expect("no error")
        {
            events.extend(batch);
        }
        client.close();
        events
    }
}

/// Per account, the balance the log says it has, checking on the way that
/// it is never negative at any position.
pub fn balances_from_log(log: &[EventRecord]) -> BTreeMap<i64, Decimal> {
    let mut balances = BTreeMap::new();
    for event in log {
        let data: Value = serde_json::from_str(event.data.get()).expect("JSON data");
        let sign = match event.event_type.as_str() {
            "ConfirmedCredit" => Decimal::ONE,
            "ConfirmedDebit" => Decimal::NEGATIVE_ONE,
            _ => continue,
        };
        let account = data["account_id"].as_i64().expect("account_id");
        let balance = balances.entry(account).or_insert(Decimal::ZERO);
        *balance += sign * money(&data["amount"]);
        assert!(
            *balance >= Decimal::ZERO,
            "account {account} is negative at position {}",
            event.position
        );
    }
    balances
}

/// A money string (`"30.00"`) as a decimal.
pub fn money(value: &Value) -> Decimal {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not money: {value}"))
}
