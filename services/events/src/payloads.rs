//! The payload of each event type, with the key it is written under.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Amount, DomainEvent};

pub fn user_key(username: &str) -> String {
    format!("user-{username}")
}

pub fn account_key(account_id: i64) -> String {
    format!("acc-{account_id}")
}

pub fn transfer_key(transaction_id: i64) -> String {
    format!("trans-{transaction_id}")
}

pub fn creation_key(request_id: Uuid) -> String {
    format!("creation-{request_id}")
}

/// A user signed up. The hash lets the users service rebuild; nothing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCreated {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
}

impl DomainEvent for UserCreated {
    const TYPE: &'static str = "UserCreated";
    fn key(&self) -> String {
        user_key(&self.username)
    }
}

/// A user asked for an account; the accounts service answers with `AccountCreated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountCreationRequest {
    pub request_id: Uuid,
    pub username: String,
}

impl DomainEvent for AccountCreationRequest {
    const TYPE: &'static str = "AccountCreationRequest";
    fn key(&self) -> String {
        creation_key(self.request_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountCreated {
    pub account_id: i64,
    pub request_id: Uuid,
    pub username: String,
}

impl DomainEvent for AccountCreated {
    const TYPE: &'static str = "AccountCreated";
    fn key(&self) -> String {
        account_key(self.account_id)
    }
}

/// Money into an account: a deposit (`transaction_id` null) or a transfer's credit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmedCredit {
    pub account_id: i64,
    pub amount: Amount,
    pub note: String,
    pub transaction_id: Option<i64>,
}

impl DomainEvent for ConfirmedCredit {
    const TYPE: &'static str = "ConfirmedCredit";
    fn key(&self) -> String {
        account_key(self.account_id)
    }
}

/// Money out of an account: a withdrawal (`transaction_id` null) or a transfer's debit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmedDebit {
    pub account_id: i64,
    pub amount: Amount,
    pub note: String,
    pub transaction_id: Option<i64>,
}

impl DomainEvent for ConfirmedDebit {
    const TYPE: &'static str = "ConfirmedDebit";
    fn key(&self) -> String {
        account_key(self.account_id)
    }
}

/// A transfer was asked for; the accounts service accepts or rejects it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTransaction {
    pub transaction_id: i64,
    pub from_account_id: i64,
    pub to_account_id: i64,
    pub amount: Amount,
    pub reference: String,
    pub username: String,
}

impl DomainEvent for PendingTransaction {
    const TYPE: &'static str = "PendingTransaction";
    fn key(&self) -> String {
        transfer_key(self.transaction_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedTransaction {
    pub transaction_id: i64,
}

impl DomainEvent for AcceptedTransaction {
    const TYPE: &'static str = "AcceptedTransaction";
    fn key(&self) -> String {
        transfer_key(self.transaction_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedTransaction {
    pub transaction_id: i64,
    pub reason: String,
}

impl DomainEvent for RejectedTransaction {
    const TYPE: &'static str = "RejectedTransaction";
    fn key(&self) -> String {
        transfer_key(self.transaction_id)
    }
}

/// The reasons a transfer is rejected, as `RejectedTransaction.reason` says them.
pub mod rejection {
    pub const INSUFFICIENT_FUNDS: &str = "insufficient funds";
    pub const UNKNOWN_ACCOUNT: &str = "unknown account";
    pub const SAME_ACCOUNT: &str = "same account";
}
