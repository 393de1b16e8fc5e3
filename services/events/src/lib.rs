//! The banking events of `ARCHITECTURE.md`, exactly as they travel on the
//! bus, and the money type they carry.
//!
//! - [`money`]: [`Amount`] (a positive sum with two decimals) and the
//!   formatting of balances.
//! - [`payloads`]: one struct per event type, with its consistency key.
//! - [`loyalty`]: the Nectar script's events.

pub mod loyalty;
pub mod money;
pub mod payloads;

pub use loyalty::*;
pub use money::{Amount, AmountError, format_money};
pub use payloads::*;

/// An event payload: its type name on the bus and the key it is written under.
pub trait DomainEvent: serde::Serialize + serde::de::DeserializeOwned {
    const TYPE: &'static str;

    /// The consistency key (`acc-7`, `trans-3`, …).
    fn key(&self) -> String;

    /// Reads the payload of a stored event.
    fn decode(data: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(data)
    }
}

/// Every banking event but `UserCreated`, which carries password hashes:
/// what the reporting service applies, what staff tooling may read, and
/// what the load tool checks.
pub const BANKING_TYPES: &[&str] = &[
    AccountCreationRequest::TYPE,
    AccountCreated::TYPE,
    ConfirmedCredit::TYPE,
    ConfirmedDebit::TYPE,
    PendingTransaction::TYPE,
    AcceptedTransaction::TYPE,
    RejectedTransaction::TYPE,
];
