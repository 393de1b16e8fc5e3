//! Query parameters, checked: each bad one is a 400 that names it and
//! says what it should be. An empty parameter (`?key=`, as a form sends
//! an empty field) counts as absent.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use superclient::ApiError;
use uuid::Uuid;

use crate::EVENT_TYPES;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// The parameter's text, unless it is absent or empty.
fn given(text: Option<&str>) -> Option<&str> {
    text.filter(|text| !text.is_empty())
}

/// A page size: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when not given.
pub fn limit(text: Option<&str>) -> Result<i64, ApiError> {
    match given(text) {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| {
                ApiError::invalid(format!("limit is a whole number from 1 to {MAX_LIMIT}"))
            }),
    }
}

pub fn whole(name: &str, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    given(text)
        .map(|text| {
            text.parse::<i64>()
                .map_err(|_| ApiError::invalid(format!("{name} is a whole number")))
        })
        .transpose()
}

/// An RFC 3339 time (`2025-03-01T12:00:00Z`; a `+` in an offset must be
/// sent as `%2B` in a query string).
pub fn time(name: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    given(text)
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|time| time.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::invalid(format!(
                        "{name} is an RFC 3339 time, like 2025-03-01T12:00:00Z"
                    ))
                })
        })
        .transpose()
}

/// A time that must be given.
pub fn required_time(name: &str, text: Option<&str>) -> Result<DateTime<Utc>, ApiError> {
    time(name, text)?.ok_or_else(|| {
        ApiError::invalid(format!(
            "{name} is required: an RFC 3339 time, like 2025-03-01T12:00:00Z"
        ))
    })
}

/// An amount of money: a decimal number with at most two decimals.
pub fn money(name: &str, text: Option<&str>) -> Result<Option<Decimal>, ApiError> {
    given(text)
        .map(|text| {
            text.parse::<Decimal>()
                .ok()
                .filter(|amount| amount.scale() <= 2)
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "{name} is an amount with at most two decimals, like 12.50"
                    ))
                })
        })
        .transpose()
}

pub fn uuid(name: &str, text: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    given(text)
        .map(|text| {
            Uuid::parse_str(text).map_err(|_| ApiError::invalid(format!("{name} is a UUID")))
        })
        .transpose()
}

/// Text (a key, a search), at most 200 characters.
pub fn text(name: &str, text: Option<&str>) -> Result<Option<String>, ApiError> {
    given(text)
        .map(|text| {
            if text.chars().count() > 200 {
                Err(ApiError::invalid(format!(
                    "{name} is at most 200 characters"
                )))
            } else {
                Ok(text.to_owned())
            }
        })
        .transpose()
}

/// A comma-separated list of event types this service knows.
pub fn event_types(text: Option<&str>) -> Result<Vec<String>, ApiError> {
    let Some(text) = given(text) else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            if EVENT_TYPES.contains(&name) {
                Ok(name.to_owned())
            } else {
                Err(ApiError::invalid(format!(
                    "types: {name} is not an event type here; the types are {}",
                    EVENT_TYPES.join(", ")
                )))
            }
        })
        .collect()
}

/// `from` must come before `to`.
pub fn ordered(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), ApiError> {
    if from < to {
        Ok(())
    } else {
        Err(ApiError::invalid("from must be before to"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked_precisely() {
        assert_eq!(limit(None).unwrap(), 50);
        assert_eq!(limit(Some("")).unwrap(), 50);
        assert!(limit(Some("0")).is_err());
        assert!(limit(Some("201")).is_err());
        assert_eq!(limit(Some("200")).unwrap(), 200);
        assert!(time("at", Some("yesterday")).is_err());
        assert!(
            time("at", Some("2025-03-01T12:00:00+01:00"))
                .unwrap()
                .is_some()
        );
        assert!(money("min_amount", Some("1.234")).is_err());
        assert_eq!(
            money("min_amount", Some("1.5")).unwrap(),
            Some(Decimal::new(15, 1))
        );
        assert!(event_types(Some("ConfirmedCredit,UserCreated")).is_err());
        assert_eq!(
            event_types(Some("ConfirmedCredit, ConfirmedDebit")).unwrap(),
            vec!["ConfirmedCredit", "ConfirmedDebit"]
        );
    }
}
