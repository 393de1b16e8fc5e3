//! Every event a service said it stored: the key and value of the event
//! its answer names (an account's `AccountCreated` at value 0, the
//! deposit's or withdrawal's entry, a transfer's `PendingTransaction`).
//! The log must hold each one, whatever crashed since.

use std::{io::Write, sync::Mutex};

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub event_type: &'static str,
    pub key: String,
    pub value: i64,
    /// The request's idempotency key.
    pub request: String,
}

#[derive(Debug, Default)]
pub struct Receipts {
    kept: Mutex<Vec<Receipt>>,
}

impl Receipts {
    pub fn keep(&self, receipt: Receipt) {
        self.kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(receipt);
    }

    pub fn all(&self) -> Vec<Receipt> {
        self.kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// One JSON object per line.
    pub fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        for receipt in self.all() {
            serde_json::to_writer(&mut *out, &receipt)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}
