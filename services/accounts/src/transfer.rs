//! The rule that accepts or rejects a transfer.

use events::{Amount, rejection};
use rust_decimal::Decimal;

/// What the decision needs to know of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountState {
    pub balance: Decimal,
    /// The value of the account's last event: its debit or credit will be `version + 1`.
    pub version: i64,
}

impl AccountState {
    /// The state after one movement of `by` (negative: a debit).
    pub fn moved(self, by: Decimal) -> Self {
        Self {
            balance: self.balance + by,
            version: self.version + 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept {
        from: AccountState,
        to: AccountState,
    },
    Reject(&'static str),
}

/// `from` and `to` are `None` when the account does not exist.
pub fn decide(
    from_id: i64,
    to_id: i64,
    amount: Amount,
    from: Option<AccountState>,
    to: Option<AccountState>,
) -> Verdict {
    if from_id == to_id {
        return Verdict::Reject(rejection::SAME_ACCOUNT);
    }
    let (Some(from), Some(to)) = (from, to) else {
        return Verdict::Reject(rejection::UNKNOWN_ACCOUNT);
    };
    if from.balance < amount.value() {
        return Verdict::Reject(rejection::INSUFFICIENT_FUNDS);
    }
    Verdict::Accept { from, to }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(balance: i64) -> Option<AccountState> {
        Some(AccountState {
            balance: Decimal::new(balance * 100, 2),
            version: 3,
        })
    }

    fn amount(text: &str) -> Amount {
        text.parse().unwrap()
    }

    #[test]
    fn accepts_what_the_balance_covers_exactly() {
        assert!(matches!(
            decide(1, 2, amount("50.00"), account(50), account(0)),
            Verdict::Accept { .. }
        ));
    }

    #[test]
    fn rejects_with_the_reason() {
        assert_eq!(
            decide(1, 2, amount("50.01"), account(50), account(0)),
            Verdict::Reject("insufficient funds")
        );
        assert_eq!(
            decide(1, 2, amount("1"), None, account(0)),
            Verdict::Reject("unknown account")
        );
        assert_eq!(
            decide(1, 2, amount("1"), account(5), None),
            Verdict::Reject("unknown account")
        );
        assert_eq!(
            decide(1, 1, amount("1"), account(5), account(5)),
            Verdict::Reject("same account")
        );
    }
}
