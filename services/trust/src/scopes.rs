//! The default scope table: what each of Ledgerline's programs may do on
//! the bus. Only the accounts service moves money; the one exception is
//! Nectar's cashback credit (see [`NECTAR`]). Only the
//! users service reads `UserCreated` (it carries password hashes); the web
//! server only observes money, account, transfer and points events; the
//! reporting service
//! and staff tooling read everything but secrets, and only staff tooling
//! may use the bus's staff endpoints.

use bus::credentials::{ClientEntry, token_digest};
use events::{
    AcceptedTransaction, AccountCreated, AccountCreationRequest, ConfirmedCredit, ConfirmedDebit,
    DomainEvent, NectarCredit, NectarDebit, PendingTransaction, RejectedTransaction, UserCreated,
};

/// One program's rights on the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientScope {
    pub name: &'static str,
    pub client_types: &'static [&'static str],
    pub publish: &'static [&'static str],
    pub read: &'static [&'static str],
    pub staff: bool,
}

impl ClientScope {
    /// The credentials file's entry for this scope and `token`.
    pub fn entry(&self, token: &str) -> ClientEntry {
        let list = |names: &[&str]| names.iter().map(|name| (*name).to_owned()).collect();
        ClientEntry {
            name: self.name.to_owned(),
            token_sha256: token_digest(token),
            client_types: list(self.client_types),
            publish: list(self.publish),
            read: list(self.read),
            staff: self.staff,
        }
    }
}

pub const USERS: ClientScope = ClientScope {
    name: "users",
    client_types: &["users"],
    publish: &[UserCreated::TYPE, AccountCreationRequest::TYPE],
    read: &[
        UserCreated::TYPE,
        AccountCreationRequest::TYPE,
        AccountCreated::TYPE,
    ],
    staff: false,
};

pub const ACCOUNTS: ClientScope = ClientScope {
    name: "accounts",
    client_types: &["accounts"],
    publish: &[
        AccountCreated::TYPE,
        ConfirmedCredit::TYPE,
        ConfirmedDebit::TYPE,
        AcceptedTransaction::TYPE,
        RejectedTransaction::TYPE,
    ],
    read: &[
        AccountCreated::TYPE,
        ConfirmedCredit::TYPE,
        ConfirmedDebit::TYPE,
        AccountCreationRequest::TYPE,
        PendingTransaction::TYPE,
    ],
    staff: false,
};

pub const TRANSACTIONS: ClientScope = ClientScope {
    name: "transactions",
    client_types: &["transactions"],
    publish: &[PendingTransaction::TYPE],
    read: &[
        AccountCreated::TYPE,
        PendingTransaction::TYPE,
        AcceptedTransaction::TYPE,
        RejectedTransaction::TYPE,
    ],
    staff: false,
};

/// The Nectar loyalty script (`services/nectar/nectar.lua`): it reacts to
/// transfers' debits, keeps points, and pays them out as cashback.
///
/// A redemption publishes its `NectarDebit` (pinned to the points it was
/// decided on) and the `ConfirmedCredit` of the cash in one atomic
/// message, so Nectar may publish that one money event. Asking the
/// accounts service to pay instead would trust Nectar no less (accounts
/// cannot know whether the points exist, so it would pay whatever Nectar
/// debited) and would split one change into two, with a moment where the
/// points are gone and the cash not yet there. Nectar may not publish
/// `ConfirmedDebit`: it can add to an account, never take from one.
pub const NECTAR: ClientScope = ClientScope {
    name: "nectar",
    client_types: &["nectar"],
    publish: &[NectarCredit::TYPE, NectarDebit::TYPE, ConfirmedCredit::TYPE],
    read: &[
        AccountCreated::TYPE,
        ConfirmedDebit::TYPE,
        NectarCredit::TYPE,
        NectarDebit::TYPE,
    ],
    staff: false,
};

/// Every banking event but the secret-bearing `UserCreated`.
const BANKING: &[&str] = events::BANKING_TYPES;

/// The web server: observes balances, transfers and points to push them live.
pub const WEB: ClientScope = ClientScope {
    name: "web",
    client_types: &["web"],
    publish: &[],
    read: &[
        AccountCreated::TYPE,
        ConfirmedCredit::TYPE,
        ConfirmedDebit::TYPE,
        PendingTransaction::TYPE,
        AcceptedTransaction::TYPE,
        RejectedTransaction::TYPE,
        NectarCredit::TYPE,
        NectarDebit::TYPE,
    ],
    staff: false,
};

/// The reporting service: the staff console's tables, from every banking
/// event but the one that carries password hashes. It publishes nothing.
pub const REPORTING: ClientScope = ClientScope {
    name: "reporting",
    client_types: &["reporting"],
    publish: &[],
    read: BANKING,
    staff: false,
};

/// Operations staff's tools: parked events, replays and skips.
pub const STAFF: ClientScope = ClientScope {
    name: "staff",
    client_types: &[],
    publish: &[],
    read: BANKING,
    staff: true,
};

pub const DEFAULT: &[ClientScope] = &[USERS, ACCOUNTS, TRANSACTIONS, NECTAR, WEB, REPORTING, STAFF];

/// The scope of the program `name`, if the table has it.
pub fn scope(name: &str) -> Option<&'static ClientScope> {
    DEFAULT.iter().find(|scope| scope.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_accounts_moves_money_but_for_cashback_and_only_users_reads_secrets() {
        for scope in DEFAULT {
            if scope.name != "accounts" {
                assert!(
                    !scope.publish.contains(&ConfirmedDebit::TYPE),
                    "{} may take money",
                    scope.name
                );
            }
            if !["accounts", "nectar"].contains(&scope.name) {
                assert!(
                    !scope.publish.contains(&ConfirmedCredit::TYPE),
                    "{} may pay money",
                    scope.name
                );
            }
            if scope.name != "users" {
                assert!(
                    !scope.read.contains(&UserCreated::TYPE),
                    "{} may read password hashes",
                    scope.name
                );
            }
        }
        assert!(WEB.publish.is_empty());
        assert!(REPORTING.publish.is_empty());
        let only_staff_tooling_has_the_staff_right = DEFAULT
            .iter()
            .filter(|scope| scope.staff)
            .map(|scope| scope.name)
            .collect::<Vec<_>>();
        assert_eq!(only_staff_tooling_has_the_staff_right, ["staff"]);
    }

    #[test]
    fn every_scope_makes_a_valid_credentials_entry() {
        let entries: Vec<ClientEntry> = DEFAULT
            .iter()
            .map(|scope| scope.entry(&crate::secret::new_token()))
            .collect();
        bus::credentials::Credentials::from_entries(entries).expect("valid");
    }
}
