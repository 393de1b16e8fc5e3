//! The loyalty events, published by the Nectar script
//! (`services/nectar/nectar.lua`): points earned and points redeemed, per
//! account, on the key `nectar-{account_id}`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::DomainEvent;

pub fn nectar_key(account_id: i64) -> String {
    format!("nectar-{account_id}")
}

/// Points earned by an accepted transfer out of the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NectarCredit {
    pub account_id: i64,
    pub points: i64,
    pub transaction_id: i64,
}

impl DomainEvent for NectarCredit {
    const TYPE: &'static str = "NectarCredit";
    fn key(&self) -> String {
        nectar_key(self.account_id)
    }
}

/// Points redeemed as cashback (published with the `ConfirmedCredit` of
/// the cash, in one message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NectarDebit {
    pub account_id: i64,
    pub points: i64,
    pub redemption_id: Uuid,
}

impl DomainEvent for NectarDebit {
    const TYPE: &'static str = "NectarDebit";
    fn key(&self) -> String {
        nectar_key(self.account_id)
    }
}
