//! Timestamps on the wire: RFC 3339, UTC, microseconds (`…40.123456Z`).

use chrono::{DateTime, SecondsFormat, Utc};

pub fn format_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A query's `since`: `"*"` (from the beginning) or an RFC 3339 time.
pub fn parse_since(since: &str) -> Result<Option<DateTime<Utc>>, String> {
    if since == "*" {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(since)
        .map(|at| Some(at.with_timezone(&Utc)))
        .map_err(|error| format!("since must be \"*\" or an RFC 3339 time: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_six_fraction_digits() {
        let at = DateTime::parse_from_rfc3339("2026-11-28T09:15:40.1234Z")
            .unwrap()
            .to_utc();
        assert_eq!(format_timestamp(at), "2026-11-28T09:15:40.123400Z");
    }

    #[test]
    fn since_accepts_star_and_offsets() {
        assert_eq!(parse_since("*"), Ok(None));
        let at = parse_since("2026-11-28T10:00:00+01:00").unwrap().unwrap();
        assert_eq!(format_timestamp(at), "2026-11-28T09:00:00.000000Z");
        assert!(parse_since("yesterday").is_err());
    }
}
