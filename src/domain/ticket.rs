//! What a ticket is made of: its reference, status, priority and channel.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use super::ParseError;

/// A ticket's public reference, `PREFIX-N` (`TKT-1042`). `N` comes from a
/// per-install sequence that never repeats, never from a backend's row id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TicketRef {
    prefix: String,
    number: i64,
}

impl TicketRef {
    /// Builds a reference from an already validated prefix and a number.
    pub fn new(prefix: &str, number: i64) -> Self {
        TicketRef {
            prefix: prefix.to_ascii_uppercase(),
            number,
        }
    }
    /// The sequence number.
    pub fn number(&self) -> i64 {
        self.number
    }
    /// The prefix, upper case.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// Checks a prefix as configured: 1–10 ASCII letters.
    pub fn valid_prefix(prefix: &str) -> bool {
        (1..=10).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_alphabetic())
    }
}

impl fmt::Display for TicketRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.prefix, self.number)
    }
}

impl FromStr for TicketRef {
    type Err = ParseError;
    /// Accepts any case (`tkt-7`); the prefix is not checked against the
    /// configured one here, the lookup does that.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseError::new("ticket reference", s, "PREFIX-NUMBER, like TKT-1042");
        let (prefix, number) = s.trim().rsplit_once('-').ok_or_else(err)?;
        if !TicketRef::valid_prefix(prefix)
            || number.is_empty()
            || !number.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let number: i64 = number.parse().map_err(|_| err())?;
        if number < 1 {
            return Err(err());
        }
        Ok(TicketRef::new(prefix, number))
    }
}

/// Declares a closed set of names that parse from and print to snake_case.
macro_rules! name_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? } $(aliases { $($alias:literal => $target:ident),* })?) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "&'static str")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The stable name used in the database, the API and URLs.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    $($($alias => Ok($name::$target),)*)?
                    _ => Err(ParseError::new($what, s, [$($text),+].join(", "))),
                }
            }
        }
        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, Self::Error> { s.parse() }
        }
        impl From<$name> for &'static str {
            fn from(v: $name) -> &'static str { v.as_str() }
        }
    };
}

name_enum!(
    /// The six statuses of SPEC §3.
    Status, "status" {
        /// New or reopened, awaiting the team.
        Open = "open",
        /// An agent is on it.
        InProgress = "in_progress",
        /// The team replied and waits for the requester ("Waiting for you").
        Pending = "pending",
        /// Paused for an external reason.
        OnHold = "on_hold",
        /// Answered, awaiting confirmation.
        Resolved = "resolved",
        /// Final; only a reply within the reopen window reopens it.
        Closed = "closed",
    }
);

impl Status {
    /// Whether the SLA clocks stop while a ticket is in this status.
    pub fn pauses_sla(self) -> bool {
        matches!(self, Status::Pending | Status::OnHold)
    }
    /// How the console and the system messages name the status.
    pub fn label(self) -> &'static str {
        match self {
            Status::Open => "Open",
            Status::InProgress => "In progress",
            Status::Pending => "Pending",
            Status::OnHold => "On hold",
            Status::Resolved => "Resolved",
            Status::Closed => "Closed",
        }
    }

    /// How a requester sees this status.
    pub fn requester_label(self) -> &'static str {
        match self {
            Status::Open => "Open",
            Status::InProgress => "In progress",
            Status::Pending => "Waiting for you",
            Status::OnHold => "On hold",
            Status::Resolved => "Resolved",
            Status::Closed => "Closed",
        }
    }
}

name_enum!(
    /// How urgent a ticket is; `medium` is accepted as `normal` on input.
    Priority, "priority" {
        Low = "low",
        Normal = "normal",
        High = "high",
        Urgent = "urgent",
    }
    aliases { "medium" => Normal }
);

name_enum!(
    /// Where a ticket came from.
    Channel, "channel" {
        Email = "email",
        Web = "web",
        Phone = "phone",
        Chat = "chat",
        Internal = "internal",
    }
);

/// The categories a fresh install offers (configurable).
pub const DEFAULT_CATEGORIES: [&str; 7] = [
    "General",
    "Billing",
    "Technical",
    "Account",
    "Feature Request",
    "Bug Report",
    "Other",
];

/// Cleans a tag as typed: trimmed, lower case, inner whitespace as `-`,
/// at most 40 characters. `None` when nothing is left.
pub fn normalise_tag(raw: &str) -> Option<String> {
    let tag: String = raw
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-")
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_control() && *c != ',')
        .take(40)
        .collect();
    (!tag.is_empty()).then_some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip_and_reject_junk() {
        let r: TicketRef = "tkt-1042".parse().unwrap();
        assert_eq!(r.to_string(), "TKT-1042");
        assert_eq!(r.number(), 1042);
        for bad in [
            "",
            "TKT",
            "TKT-",
            "-5",
            "TKT-0",
            "TKT-x1",
            "T K-1",
            "TKT-99999999999999999999",
            "ABCDEFGHIJK-1",
        ] {
            assert!(bad.parse::<TicketRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn statuses_and_priorities_parse_by_name() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), *s);
        }
        assert_eq!("medium".parse::<Priority>().unwrap(), Priority::Normal);
        assert_eq!("URGENT".parse::<Priority>().unwrap(), Priority::Urgent);
        let e = "soon".parse::<Priority>().unwrap_err();
        assert!(e.expected.contains("urgent"), "{e}");
        assert!(Status::Pending.pauses_sla() && Status::OnHold.pauses_sla());
        assert!(!Status::Open.pauses_sla());
    }

    #[test]
    fn tags_are_normalised() {
        assert_eq!(
            normalise_tag("  VIP  Customer "),
            Some("vip-customer".into())
        );
        assert_eq!(normalise_tag(" , "), None);
        assert_eq!(normalise_tag(&"x".repeat(100)).unwrap().len(), 40);
    }
}
