//! `Span`: a human duration as written in the config file ("30s", "7d", "0").

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::ParseError;

/// A non-negative duration written as a number with a unit: `s`, `m`, `h`,
/// `d` or `w` (`90m`, `7d`), or a bare `0`. Zero means "never" where a
/// setting says so (e.g. `auto_close_after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub Duration);

impl Span {
    /// A span of whole seconds.
    pub const fn secs(s: u64) -> Self {
        Span(Duration::from_secs(s))
    }
    /// A span of whole days.
    pub const fn days(d: u64) -> Self {
        Span(Duration::from_secs(d * 86_400))
    }
    /// Milliseconds, saturating: what the store and the rules compare against.
    pub fn as_millis(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
    /// Whether this is the zero span ("never" for switch-like settings).
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

const UNITS: [(&str, u64); 5] = [
    ("w", 604_800),
    ("d", 86_400),
    ("h", 3_600),
    ("m", 60),
    ("s", 1),
];

impl FromStr for Span {
    type Err = ParseError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || {
            ParseError::new(
                "duration",
                input,
                "a number with a unit s, m, h, d or w, like `30s` or `7d`",
            )
        };
        let s = input.trim();
        if s == "0" {
            return Ok(Span::default());
        }
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (digits, unit) = s.split_at(split);
        let n: u64 = digits.parse().map_err(|_| err())?;
        let factor = UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, f)| *f)
            .ok_or_else(err)?;
        n.checked_mul(factor).map(Span::secs).ok_or_else(err)
    }
}

impl Span {
    /// In words for people: "1 week", "3 days", "90 minutes" (the largest
    /// unit that divides it, as in the configuration).
    pub fn words(&self) -> String {
        let secs = self.0.as_secs();
        if secs == 0 {
            return "no time".into();
        }
        let (unit, factor) = [
            ("week", 7 * 86_400),
            ("day", 86_400),
            ("hour", 3_600),
            ("minute", 60),
            ("second", 1),
        ]
        .into_iter()
        .find(|(_, f)| secs.is_multiple_of(*f))
        .unwrap_or(("second", 1));
        let n = secs / factor;
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        if secs == 0 {
            return f.write_str("0");
        }
        let (unit, factor) = UNITS
            .iter()
            .find(|(_, f)| secs.is_multiple_of(*f))
            .copied()
            .unwrap_or(("s", 1));
        write!(f, "{}{unit}", secs / factor)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(0) => Ok(Span::default()),
            Raw::Int(n) => Err(serde::de::Error::custom(format!(
                "duration `{n}` has no unit: write it like `{n}s` or `{n}d`"
            ))),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_words() {
        assert_eq!(Span::secs(7 * 86_400).words(), "1 week");
        assert_eq!(Span::secs(3 * 86_400).words(), "3 days");
        assert_eq!(Span::secs(5400).words(), "90 minutes");
        assert_eq!(Span::secs(1).words(), "1 second");
        assert_eq!(Span::secs(0).words(), "no time");
    }

    #[test]
    fn parses_every_unit_and_zero() {
        let cases = [
            ("0", 0),
            ("30s", 30),
            ("5m", 300),
            ("2h", 7200),
            ("7d", 604_800),
            ("1w", 604_800),
        ];
        for (text, secs) in cases {
            assert_eq!(text.parse::<Span>().unwrap(), Span::secs(secs), "{text}");
        }
    }

    #[test]
    fn rejects_garbage_with_the_value_named() {
        for bad in [
            "",
            "7",
            "d",
            "7x",
            "-1d",
            "1.5h",
            "99999999999999999999w",
            "7 d",
        ] {
            let e = bad.parse::<Span>().unwrap_err();
            assert_eq!(e.what, "duration", "{bad}");
        }
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!(Span::days(7).to_string(), "1w");
        assert_eq!(Span::days(3).to_string(), "3d");
        assert_eq!(Span::secs(90).to_string(), "90s");
        assert_eq!(Span::secs(0).to_string(), "0");
    }
}
