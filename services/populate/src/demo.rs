//! The demo bank (`--preset demo`, and the one-command bank's seeding):
//! two customers with two accounts each and a short history of deposits,
//! withdrawals and transfers. Fixed idempotency keys make seeding twice
//! with the same passwords change nothing (the web app keeps its
//! passwords; `populate --preset demo` draws new ones, so it is for a new
//! bank).
//!
//! The bus stamps each event with the time it stores it, so the history is
//! dated at seeding: a bank cannot backdate its own log.

use reqwest::Method;
use serde_json::json;

use crate::{
    client::{Client, Service},
    plan::PlannedCustomer,
    receipts::Receipts,
    report::Report,
    setup::{Customer, enrol},
};

/// The demo's two customers, with the passwords the caller chose.
pub fn customers(alice_password: String, bob_password: String) -> [PlannedCustomer; 2] {
    let customer = |username: &str, display_name: &str, password| PlannedCustomer {
        username: username.to_owned(),
        display_name: display_name.to_owned(),
        password,
        opening_deposits: Vec::new(),
    };
    [
        customer("alice", "Alice Fairweather", alice_password),
        customer("bob", "Bob Marsh", bob_password),
    ]
}

enum Step {
    Deposit {
        account: i64,
        amount: &'static str,
        note: &'static str,
    },
    Withdrawal {
        account: i64,
        amount: &'static str,
        note: &'static str,
    },
    Transfer {
        from: i64,
        to: i64,
        amount: &'static str,
        reference: &'static str,
    },
}

/// Signs the demo customers up, opens their second accounts and gives
/// them a history.
pub async fn seed(client: &Client, customers: &[PlannedCustomer; 2]) -> anyhow::Result<()> {
    let (report, receipts) = (Report::default(), Receipts::default());
    let alice = enrol(client, "demo", &customers[0], 2, &report, &receipts).await?;
    let bob = enrol(client, "demo", &customers[1], 2, &report, &receipts).await?;
    let [alice_current, alice_savings] = [alice.accounts[0], alice.accounts[1]];
    let [bob_current, bob_savings] = [bob.accounts[0], bob.accounts[1]];
    use Step::*;
    let steps: [(&Customer, Step); 13] = [
        (
            &alice,
            Deposit {
                account: alice_current,
                amount: "2450.00",
                note: "Salary, Harbour & Co",
            },
        ),
        (
            &alice,
            Deposit {
                account: alice_savings,
                amount: "5000.00",
                note: "Opening deposit",
            },
        ),
        (
            &bob,
            Deposit {
                account: bob_current,
                amount: "1875.40",
                note: "Salary, Northfield Trust",
            },
        ),
        (
            &bob,
            Deposit {
                account: bob_savings,
                amount: "1200.00",
                note: "Opening deposit",
            },
        ),
        (
            &alice,
            Withdrawal {
                account: alice_current,
                amount: "62.18",
                note: "Groceries",
            },
        ),
        (
            &alice,
            Transfer {
                from: alice_current,
                to: bob_current,
                amount: "45.00",
                reference: "Concert tickets",
            },
        ),
        (
            &bob,
            Withdrawal {
                account: bob_current,
                amount: "750.00",
                note: "Rent",
            },
        ),
        (
            &alice,
            Transfer {
                from: alice_current,
                to: alice_savings,
                amount: "400.00",
                reference: "Monthly saving",
            },
        ),
        (
            &bob,
            Transfer {
                from: bob_current,
                to: alice_current,
                amount: "18.50",
                reference: "Lunch",
            },
        ),
        (
            &alice,
            Withdrawal {
                account: alice_current,
                amount: "120.00",
                note: "Cash machine",
            },
        ),
        (
            &bob,
            Deposit {
                account: bob_current,
                amount: "60.00",
                note: "Refund, Railway Ltd",
            },
        ),
        (
            &bob,
            Transfer {
                from: bob_current,
                to: bob_savings,
                amount: "200.00",
                reference: "Holiday fund",
            },
        ),
        (
            &alice,
            Withdrawal {
                account: alice_current,
                amount: "34.99",
                note: "Phone bill",
            },
        ),
    ];
    for (number, (customer, step)) in steps.iter().enumerate() {
        let key = format!("demo-{number}");
        let (service, path, body, expected) = match step {
            Deposit {
                account,
                amount,
                note,
            } => (
                Service::Accounts,
                format!("/accounts/{account}/deposits"),
                json!({"amount": amount, "note": note}),
                201,
            ),
            Withdrawal {
                account,
                amount,
                note,
            } => (
                Service::Accounts,
                format!("/accounts/{account}/withdrawals"),
                json!({"amount": amount, "note": note}),
                201,
            ),
            Transfer {
                from,
                to,
                amount,
                reference,
            } => (
                Service::Transactions,
                "/transfers".to_owned(),
                json!({"from_account_id": from, "to_account_id": to, "amount": amount, "reference": reference}),
                202,
            ),
        };
        let answer = customer
            .send(client, service, Method::POST, path, Some(&key), Some(&body))
            .await?;
        anyhow::ensure!(
            answer.status == expected,
            "demo step {number} of {}: {}",
            customer.username,
            answer.describe()
        );
    }
    Ok(())
}
