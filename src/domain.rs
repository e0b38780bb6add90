//! The ticket model and every pure decision about it: no I/O, no clock, no
//! database. Callers pass `now` in; tests are tables beside the code.

pub mod canned;
pub mod customer;
pub mod duration;
pub mod mention;
pub mod message;
pub mod notify;
pub mod people;
pub mod report;
pub mod rules;
pub mod sla;
pub mod ticket;

pub use duration::Span;
pub use message::{AuthorKind, MessageKind};
pub use people::{Actor, Capability, EmailAddress, Role};
pub use rules::{Event, RuleSettings, Transition};
pub use sla::{SlaState, SlaTargets};
pub use ticket::{Channel, Priority, Status, TicketRef};

/// Milliseconds since the Unix epoch, UTC. The one representation of time the
/// store and the pure rules share; it orders, subtracts and never needs a zone.
pub type Millis = i64;

/// An unparseable value met at a boundary (config, HTTP, CLI, mail).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} `{value}` is not valid: {expected}")]
pub struct ParseError {
    /// What was being parsed ("status", "email address", ...).
    pub what: &'static str,
    /// The offending input, cut to a readable length.
    pub value: String,
    /// What would have been accepted.
    pub expected: String,
}

impl ParseError {
    pub(crate) fn new(what: &'static str, value: &str, expected: impl Into<String>) -> Self {
        let value: String = value.chars().take(80).collect();
        ParseError {
            what,
            value,
            expected: expected.into(),
        }
    }
}

/// `ms` as an RFC 3339 UTC timestamp (`2026-11-23T21:55:37.120Z`).
pub fn rfc3339(ms: Millis) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// `ms` as people read a date: `8 December 2026`, with the time when it is
/// not midnight (`8 December 2026, 14:30 UTC`).
pub fn date_words(ms: Millis) -> String {
    match time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) {
        Ok(t) => {
            let day = format!("{} {} {}", t.day(), t.month(), t.year());
            if (t.hour(), t.minute()) == (0, 0) {
                day
            } else {
                format!("{day}, {:02}:{:02} UTC", t.hour(), t.minute())
            }
        }
        Err(_) => rfc3339(ms),
    }
}

/// Parses an RFC 3339 timestamp or a plain date (`2026-12-01`, midnight UTC) into ms.
pub fn parse_time(s: &str) -> Result<Millis, ParseError> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    let parsed = time::OffsetDateTime::parse(s, &Rfc3339).ok().or_else(|| {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(s, format)
            .ok()
            .map(|d| d.midnight().assume_utc())
    });
    parsed
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
        .ok_or_else(|| {
            ParseError::new(
                "time",
                s,
                "an RFC 3339 time like 2026-12-01T09:00:00Z, or a date like 2026-12-01",
            )
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_in_words() {
        let ms = super::parse_time("2026-12-08").unwrap();
        assert_eq!(super::date_words(ms), "8 December 2026");
        let ms = super::parse_time("2026-12-08T14:30:00Z").unwrap();
        assert_eq!(super::date_words(ms), "8 December 2026, 14:30 UTC");
    }

    #[test]
    fn times_round_trip() {
        let ms = super::parse_time("2026-11-23T21:55:37.120Z").unwrap();
        assert_eq!(super::rfc3339(ms), "2026-11-23T21:55:37.12Z");
        assert_eq!(super::parse_time("1970-01-02").unwrap(), 86_400_000);
        assert!(super::parse_time("tomorrow").is_err());
    }
}
