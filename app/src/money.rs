//! Money as people read and type it: pounds with two decimals. Checked in
//! the browser for a quick answer and again on the server (and once more
//! by the services), with the same words everywhere.

use rust_decimal::Decimal;

/// The most one deposit, withdrawal or transfer may move (the services'
/// limit too).
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 2);

/// Reads an amount typed into a form: digits with an optional point and
/// at most two decimals; a leading `£` and thousands commas are allowed.
pub fn parse_amount(text: &str) -> Result<Decimal, String> {
    let cleaned: String = text
        .trim()
        .trim_start_matches('£')
        .chars()
        .filter(|c| *c != ',')
        .collect();
    if cleaned.is_empty() {
        return Err("enter an amount greater than £0".to_owned());
    }
    let well_formed = cleaned.chars().all(|c| c.is_ascii_digit() || c == '.')
        && cleaned.chars().filter(|c| *c == '.').count() <= 1
        && cleaned.chars().any(|c| c.is_ascii_digit());
    let value = well_formed
        .then(|| Decimal::from_str_exact(&cleaned).ok())
        .flatten()
        .ok_or_else(|| "enter an amount in pounds, such as 25.00".to_owned())?;
    if value <= Decimal::ZERO {
        return Err("enter an amount greater than £0".to_owned());
    }
    if value.normalize().scale() > 2 {
        return Err("at most 2 decimal places".to_owned());
    }
    if value > MAX_AMOUNT {
        return Err("at most £10,000,000.00 at once".to_owned());
    }
    let mut value = value;
    value.rescale(2);
    Ok(value)
}

/// `£1,234.50`; negative amounts as `-£1,234.50`.
pub fn pounds(value: Decimal) -> String {
    let mut value = value;
    value.rescale(2);
    let text = value.abs().to_string();
    let (whole, pence) = text.split_once('.').unwrap_or((&text, "00"));
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if value.is_sign_negative() && !value.is_zero() {
        "-"
    } else {
        ""
    };
    format!("{sign}£{grouped}.{pence}")
}

/// A statement amount with its direction: `+£30.00` or `-£30.00`.
pub fn signed_pounds(value: Decimal, credit: bool) -> String {
    let sign = if credit { "+" } else { "-" };
    format!("{sign}{}", pounds(value.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_people_type() {
        for (typed, amount) in [
            ("25", "25.00"),
            ("0.5", "0.50"),
            ("£1,250.75", "1250.75"),
            (" 12.3 ", "12.30"),
        ] {
            assert_eq!(parse_amount(typed).unwrap().to_string(), amount, "{typed}");
        }
    }

    #[test]
    fn refuses_with_the_words_the_forms_show() {
        for (typed, message) in [
            ("", "enter an amount greater than £0"),
            ("0", "enter an amount greater than £0"),
            ("0.00", "enter an amount greater than £0"),
            ("1.005", "at most 2 decimal places"),
            ("-5", "enter an amount in pounds, such as 25.00"),
            ("1e3", "enter an amount in pounds, such as 25.00"),
            ("1.2.3", "enter an amount in pounds, such as 25.00"),
            (".", "enter an amount in pounds, such as 25.00"),
            ("10000000.01", "at most £10,000,000.00 at once"),
        ] {
            assert_eq!(parse_amount(typed).unwrap_err(), message, "{typed:?}");
        }
    }

    #[test]
    fn shows_pounds_with_thousands_and_pence() {
        let amount = |text: &str| text.parse::<Decimal>().unwrap();
        assert_eq!(pounds(amount("0")), "£0.00");
        assert_eq!(pounds(amount("12.5")), "£12.50");
        assert_eq!(pounds(amount("1234567.89")), "£1,234,567.89");
        assert_eq!(pounds(amount("-100")), "-£100.00");
        assert_eq!(signed_pounds(amount("30"), true), "+£30.00");
        assert_eq!(signed_pounds(amount("30"), false), "-£30.00");
    }
}
