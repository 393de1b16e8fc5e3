//! The services' answers as the web server reads them (their crates' docs
//! describe each), and the paths it asks them on.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub account_id: i64,
    pub balance: Decimal,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
pub struct AccountPage {
    pub accounts: Vec<Account>,
}

/// A person's account requests: only how many there are is read.
#[derive(Debug, Deserialize)]
pub struct AccountRequestPage {
    pub accounts: Vec<serde::de::IgnoredAny>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatementEntry {
    pub recorded_at: DateTime<Utc>,
    pub description: String,
    pub kind: String,
    pub amount: Decimal,
    pub balance: Decimal,
    pub transaction_id: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct StatementPage {
    pub entries: Vec<StatementEntry>,
    pub next_before: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Transfer {
    pub transaction_id: i64,
    pub from_account_id: i64,
    pub to_account_id: i64,
    pub amount: Decimal,
    pub reference: String,
    pub status: String,
    pub reason: Option<String>,
    pub requested_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
pub struct TransferPage {
    pub transfers: Vec<Transfer>,
    pub next_before: Option<i64>,
}

/// The accounts service's statement path for one page.
pub fn statement_path(
    account_id: i64,
    from: Option<&str>,
    to: Option<&str>,
    before: Option<i64>,
    limit: u32,
) -> String {
    let mut path = format!("/accounts/{account_id}/statement?limit={limit}");
    // Dates are checked (YYYY-MM-DD) before they get here.
    if let Some(from) = from {
        path.push_str(&format!("&from={from}"));
    }
    if let Some(to) = to {
        path.push_str(&format!("&to={to}"));
    }
    if let Some(before) = before {
        path.push_str(&format!("&before={before}"));
    }
    path
}

/// A form's date (`YYYY-MM-DD`), empty for none.
pub fn checked_date(text: Option<String>, name: &str) -> Result<Option<String>, String> {
    match text.filter(|t| !t.trim().is_empty()) {
        None => Ok(None),
        Some(text) => chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map(|date| Some(date.to_string()))
            .map_err(|_| format!("{name}: enter a date such as 2026-11-28")),
    }
}
