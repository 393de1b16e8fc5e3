//! A transfer as the API shows it, to whoever looks.

use chrono::{DateTime, Utc};
use events::PendingTransaction;
use serde::Serialize;
use superclient::ActingUser;

use crate::store::TransferRow;

#[derive(Debug, Clone, Serialize)]
pub struct TransferView {
    pub transaction_id: i64,
    pub from_account_id: i64,
    pub to_account_id: i64,
    pub amount: String,
    pub reference: String,
    /// Who asked for it: shown to that user and staff only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub requested_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// Whether `acting` may see who asked for a transfer.
fn sees_sender(acting: &ActingUser, sender: &str) -> bool {
    acting.staff || acting.username == sender
}

impl TransferView {
    pub fn of(row: TransferRow, acting: &ActingUser) -> Self {
        Self {
            username: sees_sender(acting, &row.username).then_some(row.username),
            transaction_id: row.transaction_id,
            from_account_id: row.from_account_id,
            to_account_id: row.to_account_id,
            amount: events::format_money(row.amount),
            reference: row.reference,
            status: row.status,
            reason: row.reason,
            requested_at: row.requested_at,
            decided_at: row.decided_at,
        }
    }

    /// A transfer just asked for, as its event says.
    pub fn asked(pending: PendingTransaction, at: DateTime<Utc>) -> Self {
        Self {
            transaction_id: pending.transaction_id,
            from_account_id: pending.from_account_id,
            to_account_id: pending.to_account_id,
            amount: pending.amount.to_string(),
            reference: pending.reference,
            username: Some(pending.username),
            status: "pending".into(),
            reason: None,
            requested_at: at,
            decided_at: None,
        }
    }
}
