//! Staff input, checked and turned into the reporting service's query
//! strings: times as people type them, account numbers, amounts, ids.
//! Each bad value gets an error naming its field, and nothing is asked.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::{error::AppError, money::parse_amount, pages::encode_query_value, staff::browser};

/// Reads a time typed by staff, in UTC: RFC 3339, or `2026-11-30 09:15`,
/// with or without seconds, with a space or a `T`; a bare date means its
/// midnight.
pub fn parse_time(text: &str, field: &str) -> Result<Option<DateTime<Utc>>, AppError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(time.with_timezone(&Utc)));
    }
    let spaced = text.replacen('T', " ", 1);
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(time) = NaiveDateTime::parse_from_str(&spaced, format) {
            return Ok(Some(time.and_utc()));
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(midnight) = date.and_hms_opt(0, 0, 0)
    {
        return Ok(Some(midnight.and_utc()));
    }
    Err(AppError::invalid(
        field,
        format!("{field}: give a UTC time such as 2026-11-30 09:15:00"),
    ))
}

/// Reads a moment to look at the bank "as of": like [`parse_time`], but a
/// time typed to the second (as the console shows times) means the end of
/// that second, so an event shown at 09:15:02 is part of "as of 09:15:02".
pub fn parse_moment(text: &str, field: &str) -> Result<Option<DateTime<Utc>>, AppError> {
    let time = parse_time(text, field)?;
    let whole_second = !text.contains('.')
        && time.is_some_and(|t| t.timestamp_subsec_nanos() == 0)
        && text.trim().matches(':').count() >= 2;
    Ok(time.map(|t| {
        if whole_second {
            t + chrono::TimeDelta::microseconds(999_999)
        } else {
            t
        }
    }))
}

/// A whole number at least `min` (an account, a position).
pub fn parse_whole(text: &str, field: &str, min: i64) -> Result<Option<i64>, AppError> {
    match text.trim() {
        "" => Ok(None),
        text => text
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= min)
            .map(Some)
            .ok_or_else(|| AppError::invalid(field, format!("{field}: give a whole number"))),
    }
}

/// The reporting service's `/events` query for the browser's filter and
/// paging, `limit` rows.
pub fn events_query(filter: &browser::EventFilter, limit: u32) -> Result<String, AppError> {
    let mut query = filters_query(filter)?;
    let before = parse_whole(&filter.before, "before", 1)?;
    let after = parse_whole(&filter.after, "after", 0)?;
    let at = parse_moment(&filter.at, "seek time")?;
    let position = parse_whole(&filter.position, "seek position", 0)?;
    let anchors = [
        before.is_some(),
        after.is_some(),
        at.is_some(),
        position.is_some(),
    ];
    if anchors.iter().filter(|given| **given).count() > 1 {
        return Err(AppError::invalid(
            "seek",
            "seek to a time or to a position, not both",
        ));
    }
    if let Some(before) = before {
        query.push(("before", before.to_string()));
    }
    if let Some(after) = after {
        query.push(("after", after.to_string()));
    }
    if let Some(at) = at {
        query.push(("at", at.to_rfc3339()));
    }
    if let Some(position) = position {
        let from = position
            .checked_add(1)
            .ok_or_else(|| AppError::invalid("seek position", "there is no such position"))?;
        query.push(("before", from.to_string()));
    }
    query.push(("limit", limit.to_string()));
    Ok(encode(&query))
}

/// The filters alone (no paging), checked, as name/value pairs.
pub fn filters_query(
    filter: &browser::EventFilter,
) -> Result<Vec<(&'static str, String)>, AppError> {
    let mut query = Vec::new();
    if let Some(unknown) = filter
        .types
        .iter()
        .find(|t| !browser::EVENT_TYPES.contains(&t.as_str()))
    {
        return Err(AppError::invalid(
            "type",
            format!("there is no event type {unknown}"),
        ));
    }
    if !filter.types.is_empty() {
        query.push(("types", filter.types.join(",")));
    }
    let from = parse_time(&filter.from, "from")?;
    let to = parse_time(&filter.to, "until")?;
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        return Err(AppError::invalid("to", "until must be after from"));
    }
    if let Some(from) = from {
        query.push(("from", from.to_rfc3339()));
    }
    if let Some(to) = to {
        query.push(("to", to.to_rfc3339()));
    }
    let key = filter.key.trim();
    if !key.is_empty() {
        query.push(("key", key.to_owned()));
    }
    let correlation = filter.correlation.trim();
    if !correlation.is_empty() {
        let id = uuid::Uuid::parse_str(correlation)
            .map_err(|_| AppError::invalid("correlation", "correlation id: give a UUID"))?;
        query.push(("correlation", id.to_string()));
    }
    if let Some(account) = parse_whole(&filter.account, "account", 1)? {
        query.push(("account", account.to_string()));
    }
    let amount = |text: &str, field: &str| -> Result<Option<String>, AppError> {
        match text.trim() {
            "" => Ok(None),
            text => parse_amount(text)
                .map(|value| Some(value.to_string()))
                .map_err(|message| AppError::invalid(field, format!("{field}: {message}"))),
        }
    };
    let min = amount(&filter.min_amount, "amount from")?;
    let max = amount(&filter.max_amount, "amount up to")?;
    if let Some(min) = min {
        query.push(("min_amount", min));
    }
    if let Some(max) = max {
        query.push(("max_amount", max));
    }
    let text = filter.q.trim();
    if text.chars().count() > 200 {
        return Err(AppError::invalid(
            "q",
            "search text: at most 200 characters",
        ));
    }
    if !text.is_empty() {
        query.push(("q", text.to_owned()));
    }
    Ok(query)
}

/// Name/value pairs as a query string.
pub fn encode(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", encode_query_value(value)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_as_people_type_them_in_utc() {
        let expect = "2026-11-30T09:15:00+00:00";
        for typed in [
            "2026-11-30 09:15",
            "2026-11-30T09:15",
            "2026-11-30 09:15:00",
            "2026-11-30T09:15:00Z",
            "2026-11-30T10:15:00+01:00",
        ] {
            let time = parse_time(typed, "at").unwrap().unwrap();
            assert_eq!(time.to_rfc3339(), expect, "{typed}");
        }
        assert!(parse_time("", "at").unwrap().is_none());
        assert!(parse_time("yesterday", "at").is_err());
    }

    #[test]
    fn a_moment_typed_to_the_second_takes_in_the_whole_second() {
        let moment = parse_moment("2026-11-30 09:15:02", "at").unwrap().unwrap();
        assert_eq!(moment.to_rfc3339(), "2026-11-30T09:15:02.999999+00:00");
        let exact = parse_moment("2026-11-30T09:15:02.250Z", "at")
            .unwrap()
            .unwrap();
        assert_eq!(exact.to_rfc3339(), "2026-11-30T09:15:02.250+00:00");
        let minute = parse_moment("2026-11-30 09:15", "at").unwrap().unwrap();
        assert_eq!(minute.to_rfc3339(), "2026-11-30T09:15:00+00:00");
        let biggest = browser::EventFilter {
            position: i64::MAX.to_string(),
            ..Default::default()
        };
        assert!(events_query(&biggest, 50).is_err());
    }

    #[test]
    fn bad_filters_name_their_field() {
        let filter = browser::EventFilter {
            account: "seven".into(),
            ..Default::default()
        };
        assert_eq!(
            events_query(&filter, 50).unwrap_err().for_field("account"),
            Some("account: give a whole number".into())
        );
        let both = browser::EventFilter {
            at: "2026-11-30".into(),
            position: "12".into(),
            ..Default::default()
        };
        assert!(events_query(&both, 50).is_err());
        let unknown = browser::EventFilter {
            types: vec!["UserCreated".into()],
            ..Default::default()
        };
        assert!(events_query(&unknown, 50).is_err());
    }

    #[test]
    fn the_filter_offers_exactly_the_types_the_reporting_service_keeps() {
        assert_eq!(browser::EVENT_TYPES, reporting::EVENT_TYPES);
    }

    #[test]
    fn seeking_a_position_starts_the_page_at_it() {
        let filter = browser::EventFilter {
            position: "41".into(),
            types: vec!["ConfirmedCredit".into()],
            ..Default::default()
        };
        assert_eq!(
            events_query(&filter, 50).unwrap(),
            "types=ConfirmedCredit&before=42&limit=50"
        );
    }
}
