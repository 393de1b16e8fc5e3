//! The bus and the services, started together, and how tests talk to them.

use std::collections::BTreeMap;

use bus::{
    client::{BusClient, ClientConfig, QueryFrom, QueryItem, QuerySpec},
    protocol::EventRecord,
};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use testkit::{TestDb, eventually};

use crate::{Process, SERVICE_TOKEN, Service};

/// The bus and one instance of each service, on one test database.
pub struct Bank {
    // Fields drop in order: the processes stop before their database goes.
    pub users: Process,
    pub accounts: Vec<Process>,
    pub transactions: Process,
    pub bus: Process,
    pub db: TestDb,
    pub http: reqwest::Client,
}

impl Bank {
    pub async fn start() -> Self {
        Self::start_with_accounts(1).await
    }

    /// With `accounts` instances of the accounts service.
    pub async fn start_with_accounts(accounts: usize) -> Self {
        let db = TestDb::new().await;
        let bus = Process::bus(&db.url);
        let users = Process::service(Service::Users, &db.url, &bus);
        let accounts = (0..accounts)
            .map(|_| Process::service(Service::Accounts, &db.url, &bus))
            .collect();
        let transactions = Process::service(Service::Transactions, &db.url, &bus);
        Self {
            users,
            accounts,
            transactions,
            bus,
            db,
            http: reqwest::Client::new(),
        }
    }

    pub fn call(&self, service: &Process) -> Api {
        Api {
            base: service.http_base(),
            http: self.http.clone(),
        }
    }

    /// Signs `username` up; returns the first account's id.
    pub async fn sign_up(&self, username: &str) -> i64 {
        let (status, body) = self
            .call(&self.users)
            .post(None, "/users", json!({"username": username, "display_name": username, "password": "correct horse battery"}))
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

    /// Every stored event of `types` (all: `["*"]`), read from the bus.
    pub async fn log(&self, types: &[&str]) -> Vec<EventRecord> {
        let (client, _) = BusClient::connect(ClientConfig::new(self.bus.bus_url()))
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

/// HTTP calls to one service, as the web server makes them.
#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    pub async fn get(&self, user: Option<&str>, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)), user)
            .await
    }

    pub async fn post(&self, user: Option<&str>, path: &str, body: Value) -> (u16, Value) {
        self.send(
            self.http.post(format!("{}{path}", self.base)).json(&body),
            user,
        )
        .await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder, user: Option<&str>) -> (u16, Value) {
        let request = request.bearer_auth(SERVICE_TOKEN);
        let request = match user {
            Some(user) => request.header("x-acting-user", user),
            None => request,
        };
        let response = request.send().await.expect("the service answers");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub fn raw(&self) -> (&reqwest::Client, &str) {
        (&self.http, &self.base)
    }
}
