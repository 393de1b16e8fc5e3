//! Money: exact decimals with two places, carried in JSON as strings
//! (`"30.00"`), never floats.

use std::{fmt, str::FromStr};

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// The largest amount one deposit, withdrawal or transfer may move: far
/// above any real payment, far below where sums of them could overflow.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 2); // 10,000,000.00

/// A positive amount of money with at most two decimals, at most [`MAX_AMOUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(Decimal);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("the amount {0:?} is not a decimal number such as \"30.00\"")]
    NotANumber(String),
    #[error("the amount must be greater than zero")]
    NotPositive,
    #[error("the amount may have at most two decimal places")]
    TooPrecise,
    #[error("the amount may be at most 10000000.00")]
    TooLarge,
}

impl Amount {
    /// Checks a decimal; the result always has exactly two decimal places.
    pub fn new(value: Decimal) -> Result<Self, AmountError> {
        if value <= Decimal::ZERO {
            return Err(AmountError::NotPositive);
        }
        if value.normalize().scale() > 2 {
            return Err(AmountError::TooPrecise);
        }
        if value > MAX_AMOUNT {
            return Err(AmountError::TooLarge);
        }
        let mut value = value;
        value.rescale(2);
        Ok(Self(value))
    }

    pub fn value(self) -> Decimal {
        self.0
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    /// Plain decimal notation only: no exponent, no sign other than `-`, no
    /// spaces, no thousands separators.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let plain = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == '-');
        let value = plain
            .then(|| Decimal::from_str_exact(text).ok())
            .flatten()
            .ok_or_else(|| AmountError::NotANumber(text.chars().take(40).collect()))?;
        Self::new(value)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// A balance (or any sum) as the APIs show it: two decimals, as a string.
pub fn format_money(value: Decimal) -> String {
    let mut value = value;
    value.rescale(2);
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_amounts_and_gives_two_decimals() {
        assert_eq!("30".parse::<Amount>().unwrap().to_string(), "30.00");
        assert_eq!("0.5".parse::<Amount>().unwrap().to_string(), "0.50");
        assert_eq!(
            "10000000.00".parse::<Amount>().unwrap().to_string(),
            "10000000.00"
        );
    }

    #[test]
    fn refuses_what_is_not_money() {
        for (text, error) in [
            ("0", AmountError::NotPositive),
            ("-1.00", AmountError::NotPositive),
            ("1.001", AmountError::TooPrecise),
            ("10000000.01", AmountError::TooLarge),
        ] {
            assert_eq!(text.parse::<Amount>(), Err(error), "{text}");
        }
        for text in ["", "1e3", " 1", "1,00", "abc", "+1", "NaN"] {
            assert!(
                matches!(text.parse::<Amount>(), Err(AmountError::NotANumber(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn travels_as_a_string() {
        let amount: Amount = serde_json::from_str("\"12.3\"").unwrap();
        assert_eq!(serde_json::to_string(&amount).unwrap(), "\"12.30\"");
        assert!(
            serde_json::from_str::<Amount>("12.3").is_err(),
            "a JSON number is refused"
        );
    }

    #[test]
    fn formats_balances() {
        assert_eq!(format_money(Decimal::ZERO), "0.00");
        assert_eq!(format_money(Decimal::new(2000, 2)), "20.00");
    }
}
