//! A run's customers and operations, all drawn from one seed: the same
//! seed and shape make the same run, with the same idempotency keys, so a
//! run sent again (after a crash of the tool, say) changes nothing twice.

use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use rust_decimal::Decimal;

use crate::options::{AmountRange, Shape};

/// One account of the run: the customer's index and the account's place
/// among theirs (0 is the one opened at sign-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountRef {
    pub customer: usize,
    pub slot: usize,
}

#[derive(Debug, Clone)]
pub struct PlannedCustomer {
    pub username: String,
    pub display_name: String,
    pub password: String,
    /// One opening deposit per account, in slot order.
    pub opening_deposits: Vec<Decimal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Deposit,
    Withdrawal,
    Transfer { to: AccountRef },
}

#[derive(Debug, Clone)]
pub struct Operation {
    /// Its place in the run; its idempotency key is made from it.
    pub number: usize,
    pub account: AccountRef,
    pub kind: Kind,
    pub amount: Decimal,
}

#[derive(Debug, Clone)]
pub struct Plan {
    /// Names every customer and idempotency key of the run.
    pub run: String,
    pub customers: Vec<PlannedCustomer>,
    /// In the order they are started: shuffled, so that no account is
    /// worked on by every request in flight at once.
    pub operations: Vec<Operation>,
}

impl Plan {
    /// The plan for `shape`, drawn from `seed`; customers are named after `run`.
    pub fn draw(run: &str, shape: &Shape, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let customers: Vec<PlannedCustomer> = (0..shape.users)
            .map(|customer| PlannedCustomer {
                username: format!("{run}_{customer}"),
                display_name: format!("Load customer {customer} of run {run}"),
                password: format!("populate {run} {customer} {:016x}", rng.random::<u64>()),
                opening_deposits: (0..shape.accounts_per_user)
                    .map(|_| amount(&mut rng, shape.opening_deposit))
                    .collect(),
            })
            .collect();
        let accounts: Vec<AccountRef> = (0..shape.users)
            .flat_map(|customer| {
                (0..shape.accounts_per_user).map(move |slot| AccountRef { customer, slot })
            })
            .collect();
        let mix = shape.mix;
        let total_weight = mix.deposits + mix.withdrawals + mix.transfers;
        let mut operations = Vec::with_capacity(accounts.len() * shape.operations_per_account);
        for &account in &accounts {
            for _ in 0..shape.operations_per_account {
                let draw = rng.random_range(0..total_weight);
                let kind = if draw < mix.deposits {
                    Kind::Deposit
                } else if draw < mix.deposits + mix.withdrawals || accounts.len() < 2 {
                    Kind::Withdrawal
                } else {
                    // Any other account of the run, this customer's or another's.
                    let mut to = account;
                    while to == account {
                        to = accounts[rng.random_range(0..accounts.len())];
                    }
                    Kind::Transfer { to }
                };
                operations.push(Operation {
                    number: 0,
                    account,
                    kind,
                    amount: amount(&mut rng, shape.amount),
                });
            }
        }
        operations.shuffle(&mut rng);
        for (number, operation) in operations.iter_mut().enumerate() {
            operation.number = number;
        }
        Self {
            run: run.to_owned(),
            customers,
            operations,
        }
    }

    pub fn accounts_per_customer(&self) -> usize {
        self.customers
            .first()
            .map_or(0, |customer| customer.opening_deposits.len())
    }
}

/// A random run name: a letter, then 7 of a-z and 0-9 (usernames allow
/// a-z, 0-9 and `_`, up to 32 characters).
pub fn new_run_name() -> String {
    let mut rng = rand::rng();
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut name = String::from("p");
    for _ in 0..7 {
        name.push(char::from(alphabet[rng.random_range(0..alphabet.len())]));
    }
    name
}

fn amount(rng: &mut StdRng, range: AmountRange) -> Decimal {
    Decimal::new(rng.random_range(range.low_pennies..=range.high_pennies), 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Mix;

    fn shape() -> Shape {
        Shape {
            users: 5,
            accounts_per_user: 2,
            operations_per_account: 7,
            opening_deposit: "100..200".parse().unwrap(),
            amount: "0.01..50".parse().unwrap(),
            mix: Mix::default(),
        }
    }

    #[test]
    fn one_seed_draws_one_plan() {
        let (a, b) = (Plan::draw("r", &shape(), 7), Plan::draw("r", &shape(), 7));
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        let c = Plan::draw("r", &shape(), 8);
        assert_ne!(format!("{a:?}"), format!("{c:?}"));
    }

    #[test]
    fn every_account_gets_its_operations_within_the_ranges() {
        let plan = Plan::draw("r", &shape(), 1);
        assert_eq!(plan.operations.len(), 5 * 2 * 7);
        for (number, operation) in plan.operations.iter().enumerate() {
            assert_eq!(operation.number, number);
            assert!(
                operation.amount >= Decimal::new(1, 2) && operation.amount <= Decimal::new(50, 0)
            );
            if let Kind::Transfer { to } = operation.kind {
                assert_ne!(to, operation.account);
            }
        }
        for customer in &plan.customers {
            assert!(customer.username.len() <= 32);
            for deposit in &customer.opening_deposits {
                assert!(*deposit >= Decimal::new(100, 0) && *deposit <= Decimal::new(200, 0));
            }
        }
        let name = new_run_name();
        assert!(
            name.len() == 8
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
    }
}
