//! What a run makes and how fast: parsed from the command line, checked
//! before anything is sent.

use std::{fmt, str::FromStr, time::Duration};

use rust_decimal::{Decimal, prelude::ToPrimitive};

/// An inclusive range of sums of money, `"10.00..500.00"`, drawn from in
/// whole pennies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmountRange {
    pub low_pennies: i64,
    pub high_pennies: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionError {
    #[error(
        "an amount range is LOW..HIGH with two positive sums of money, LOW at most HIGH (\"10.00..500.00\"): {0:?}"
    )]
    AmountRange(String),
    #[error(
        "a mix is three whole weights for deposits, withdrawals and transfers, not all zero (\"1,1,2\"): {0:?}"
    )]
    Mix(String),
    #[error(
        "a rate is a number of operations per second from 0.001 to 1000000, or \"unlimited\": {0:?}"
    )]
    Rate(String),
}

impl FromStr for AmountRange {
    type Err = OptionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || OptionError::AmountRange(text.to_owned());
        let (low, high) = text.split_once("..").ok_or_else(bad)?;
        let pennies = |sum: &str| -> Option<i64> {
            let amount: events::Amount = sum.trim().parse().ok()?;
            (amount.value() * Decimal::ONE_HUNDRED).to_i64()
        };
        let (low_pennies, high_pennies) = (
            pennies(low).ok_or_else(bad)?,
            pennies(high).ok_or_else(bad)?,
        );
        if low_pennies > high_pennies {
            return Err(bad());
        }
        Ok(Self {
            low_pennies,
            high_pennies,
        })
    }
}

impl fmt::Display for AmountRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let money = |pennies: i64| events::format_money(Decimal::new(pennies, 2));
        write!(
            f,
            "{}..{}",
            money(self.low_pennies),
            money(self.high_pennies)
        )
    }
}

/// How often each kind of operation is drawn, as weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub deposits: u32,
    pub withdrawals: u32,
    pub transfers: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            deposits: 1,
            withdrawals: 1,
            transfers: 2,
        }
    }
}

impl FromStr for Mix {
    type Err = OptionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let weights: Vec<u32> = text
            .split(',')
            .map(|weight| weight.trim().parse())
            .collect::<Result<_, _>>()
            .map_err(|_| OptionError::Mix(text.to_owned()))?;
        match weights[..] {
            [deposits, withdrawals, transfers] if deposits + withdrawals + transfers > 0 => {
                Ok(Self {
                    deposits,
                    withdrawals,
                    transfers,
                })
            }
            _ => Err(OptionError::Mix(text.to_owned())),
        }
    }
}

/// Operations per second: a limit, or none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    Unlimited,
    PerSecond(f64),
}

impl FromStr for Rate {
    type Err = OptionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "unlimited" {
            return Ok(Self::Unlimited);
        }
        match text.parse::<f64>() {
            // Bounded so that the interval between starts is a real timer's.
            Ok(rate) if (0.001..=1_000_000.0).contains(&rate) => Ok(Self::PerSecond(rate)),
            _ => Err(OptionError::Rate(text.to_owned())),
        }
    }
}

/// The population: how many of what.
#[derive(Debug, Clone)]
pub struct Shape {
    pub users: usize,
    pub accounts_per_user: usize,
    pub operations_per_account: usize,
    pub opening_deposit: AmountRange,
    pub amount: AmountRange,
    pub mix: Mix,
}

/// How hard it is pushed.
#[derive(Debug, Clone)]
pub struct Pace {
    /// Requests in flight at once.
    pub concurrency: usize,
    pub rate: Rate,
    /// No operation is started after this long.
    pub duration: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_ranges_are_two_sums_in_order() {
        assert_eq!(
            "10.00..500.5".parse(),
            Ok(AmountRange {
                low_pennies: 1000,
                high_pennies: 50050
            })
        );
        for bad in [
            "", "10", "5..1", "0..3", "-1..3", "1.001..2", "a..b", "1..2..3",
        ] {
            assert!(bad.parse::<AmountRange>().is_err(), "{bad}");
        }
        assert_eq!(
            "1.5..20".parse::<AmountRange>().unwrap().to_string(),
            "1.50..20.00"
        );
    }

    #[test]
    fn mixes_and_rates_are_checked() {
        assert_eq!(
            "0,0,1".parse(),
            Ok(Mix {
                deposits: 0,
                withdrawals: 0,
                transfers: 1
            })
        );
        for bad in ["0,0,0", "1,2", "1,2,3,4", "1,-1,2", "x"] {
            assert!(bad.parse::<Mix>().is_err(), "{bad}");
        }
        assert_eq!("unlimited".parse(), Ok(Rate::Unlimited));
        assert_eq!("250".parse(), Ok(Rate::PerSecond(250.0)));
        for bad in ["0", "-3", "NaN", "inf", "fast", "1e-300", "1e12"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }
}
