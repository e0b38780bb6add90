//! The arithmetic of reports (SPEC §8, "reports"; docs/agent-guide.md): a
//! period of whole days in the reader's time zone, the key a figure is
//! grouped by, and the figures themselves — tickets opened and closed,
//! replies sent, first-response and resolution times (median and 90th
//! percentile, SLA pauses left out), SLA met, backlog by age and
//! satisfaction — computed from plain facts the store reads. No I/O.

use std::collections::BTreeMap;

use super::sla::counted_ms;
use super::{Millis, ParseError};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The longest period a report covers: three years, so that a report by day
/// stays a page and an answer stays small.
pub const MAX_DAYS: i64 = 1_096;

/// The period a report covers when none is asked for: the last 30 days.
pub const DEFAULT_DAYS: i64 = 30;

/// What a report's rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Grouping {
    /// One row a day, every day of the period.
    #[default]
    Day,
    /// One row per agent: the ticket's assignee, the reply's author.
    Agent,
    Category,
    Mailbox,
}

impl Grouping {
    /// Every grouping, in the order a form offers them.
    pub const ALL: [Grouping; 4] = [
        Grouping::Day,
        Grouping::Agent,
        Grouping::Category,
        Grouping::Mailbox,
    ];
    /// The stable name (`group=` of the API).
    pub fn as_str(self) -> &'static str {
        match self {
            Grouping::Day => "day",
            Grouping::Agent => "agent",
            Grouping::Category => "category",
            Grouping::Mailbox => "mailbox",
        }
    }
    /// The name a page shows.
    pub fn label(self) -> &'static str {
        match self {
            Grouping::Day => "Day",
            Grouping::Agent => "Agent",
            Grouping::Category => "Category",
            Grouping::Mailbox => "Mailbox",
        }
    }
    /// Parses a stable name.
    pub fn parse(s: &str) -> Result<Grouping, ParseError> {
        Grouping::ALL
            .into_iter()
            .find(|g| g.as_str() == s.trim())
            .ok_or_else(|| ParseError::new("group", s, "one of day, agent, category, mailbox"))
    }
}

/// A report's period: whole days from `first_day` to `last_day` (both
/// included), days counted in a time zone `offset_ms` east of UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// Days since 1970-01-01 in the report's zone.
    pub first_day: i64,
    pub last_day: i64,
    /// The zone's offset from UTC, ms (east positive).
    pub offset_ms: i64,
}

impl Period {
    /// The period `from`..=`to` (`YYYY-MM-DD`, either left out: the last 30
    /// days to today) in zone `tz` (`+02:00`, `-0530`, `Z`, `UTC`; left out:
    /// UTC), as asked of a report. Refused: a date that is not one, `to`
    /// before `from`, more than [`MAX_DAYS`].
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        tz: Option<&str>,
        now: Millis,
    ) -> Result<Period, ParseError> {
        let offset_ms = match tz.map(str::trim).filter(|s| !s.is_empty()) {
            Some(tz) => parse_offset(tz)?,
            None => 0,
        };
        let today = (now.saturating_add(offset_ms)).div_euclid(DAY_MS);
        let day = |s: Option<&str>| -> Result<Option<i64>, ParseError> {
            match s.map(str::trim).filter(|s| !s.is_empty()) {
                Some(s) => parse_day(s, offset_ms).map(Some),
                None => Ok(None),
            }
        };
        let (from, to) = (day(from)?, day(to)?);
        let last_day = to.unwrap_or(today);
        let first_day = from.unwrap_or(last_day - (DEFAULT_DAYS - 1));
        if last_day < first_day {
            return Err(ParseError::new(
                "period",
                &format!("{} to {}", day_name(first_day), day_name(last_day)),
                "an end on or after the start",
            ));
        }
        if last_day - first_day + 1 > MAX_DAYS {
            return Err(ParseError::new(
                "period",
                &format!("{} to {}", day_name(first_day), day_name(last_day)),
                format!("at most {MAX_DAYS} days (about three years)"),
            ));
        }
        Ok(Period {
            first_day,
            last_day,
            offset_ms,
        })
    }
    /// The first instant of the period, ms since the epoch (UTC).
    pub fn start(&self) -> Millis {
        self.first_day * DAY_MS - self.offset_ms
    }
    /// The first instant after the period.
    pub fn end(&self) -> Millis {
        (self.last_day + 1) * DAY_MS - self.offset_ms
    }
    /// Whether `at` falls in the period.
    pub fn contains(&self, at: Millis) -> bool {
        (self.start()..self.end()).contains(&at)
    }
    /// The day (in the report's zone) `at` falls on.
    pub fn day_of(&self, at: Millis) -> i64 {
        at.saturating_add(self.offset_ms).div_euclid(DAY_MS)
    }
    /// The zone as `+HH:MM`.
    pub fn zone(&self) -> String {
        let sign = if self.offset_ms < 0 { '-' } else { '+' };
        let minutes = self.offset_ms.abs() / 60_000;
        format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
    }
}

/// A day number as `YYYY-MM-DD`.
pub fn day_name(day: i64) -> String {
    i32::try_from(day + UNIX_EPOCH_JULIAN)
        .ok()
        .and_then(|j| time::Date::from_julian_day(j).ok())
        .map_or_else(
            || day.to_string(),
            |d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
        )
}

/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN: i64 = 2_440_588;

/// A day as `YYYY-MM-DD`, or the day (in the zone `offset_ms` east of
/// UTC) an RFC 3339 time falls on.
fn parse_day(s: &str, offset_ms: i64) -> Result<i64, ParseError> {
    let bad = || {
        ParseError::new(
            "date",
            s,
            "a date as YYYY-MM-DD (or an RFC 3339 time: its day)",
        )
    };
    let format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = time::Date::parse(s, &format) {
        return Ok(i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN);
    }
    let at = super::parse_time(s).map_err(|_| bad())?;
    Ok(at.saturating_add(offset_ms).div_euclid(DAY_MS))
}

fn parse_offset(s: &str) -> Result<i64, ParseError> {
    let bad = || {
        ParseError::new(
            "time zone",
            s,
            "an offset from UTC such as +02:00 or -05:30",
        )
    };
    if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") {
        return Ok(0);
    }
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !(digits.len() == 2 || digits.len() == 4) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let hours: i64 = digits[..2].parse().map_err(|_| bad())?;
    let minutes: i64 = if digits.len() == 4 {
        digits[2..].parse().map_err(|_| bad())?
    } else {
        0
    };
    if hours > 14 || minutes > 59 {
        return Err(bad());
    }
    Ok(sign * (hours * 60 + minutes) * 60_000)
}

/// What a row of a report stands for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// A day number (see [`day_name`]).
    Day(i64),
    /// An agent's user id; `None`: unassigned (or a reply by a removed user).
    Agent(Option<i64>),
    Category(String),
    /// A mailbox id; `None`: the portal and the API.
    Mailbox(Option<i64>),
    /// Every row together (the backlog of a report by day).
    All,
}

/// One clock a report measures: from a ticket's opening to `at` (its
/// first reply, its resolution), with the time it was paused by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub created_at: Millis,
    pub at: Millis,
    pub paused_ms: i64,
}

impl Clock {
    /// The time counted: SLA pauses left out.
    pub fn counted_ms(&self) -> i64 {
        counted_ms(self.created_at, self.at, self.paused_ms)
    }
}

/// Median and 90th percentile of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Times {
    /// How many durations.
    pub count: usize,
    pub median_ms: Option<i64>,
    pub p90_ms: Option<i64>,
}

impl Times {
    /// The figures of `values` (sorted here): nearest-rank percentiles, so
    /// each figure is a duration that really happened.
    pub fn of(values: &mut [i64]) -> Times {
        values.sort_unstable();
        Times {
            count: values.len(),
            median_ms: nearest_rank(values, 50),
            p90_ms: nearest_rank(values, 90),
        }
    }
}

/// The `pct`th percentile of sorted `values` by nearest rank.
pub fn nearest_rank(sorted: &[i64], pct: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// One row of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub key: Key,
    /// Tickets opened in the period.
    pub opened: i64,
    /// Tickets resolved or closed in the period (and not reopened since).
    pub closed: i64,
    /// Public replies the team sent.
    pub replies: i64,
    /// From opening to the first agent reply, for first replies in the period.
    pub first_response: Times,
    /// From opening to resolution, for tickets closed in the period.
    pub resolution: Times,
    /// Closed tickets an SLA target applied to.
    pub sla_measured: i64,
    /// Of those, the ones that never breached.
    pub sla_met: i64,
    pub rated_good: i64,
    pub rated_bad: i64,
}

impl Row {
    fn new(key: Key) -> Row {
        Row {
            key,
            opened: 0,
            closed: 0,
            replies: 0,
            first_response: Times::default(),
            resolution: Times::default(),
            sla_measured: 0,
            sla_met: 0,
            rated_good: 0,
            rated_bad: 0,
        }
    }
    /// SLA met, percent of the measured tickets.
    pub fn sla_met_pct(&self) -> Option<f64> {
        percent(self.sla_met, self.sla_measured)
    }
    /// Good ratings, percent of all ratings.
    pub fn satisfaction_pct(&self) -> Option<f64> {
        percent(self.rated_good, self.rated_good + self.rated_bad)
    }
}

fn percent(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

/// The age bands of the backlog.
pub const AGE_BANDS: [(&str, i64); 5] = [
    ("Under 1 day", DAY_MS),
    ("1–3 days", 3 * DAY_MS),
    ("3–7 days", 7 * DAY_MS),
    ("7–30 days", 30 * DAY_MS),
    ("Over 30 days", i64::MAX),
];

/// The oldest opening time (exclusive) of each band but the last, for a
/// backlog counted `at`: a ticket opened after `bounds[i]` is in band `i` or
/// younger. The store counts with these; [`age_band`] says the same of one age.
pub fn band_bounds(at: Millis) -> [Millis; AGE_BANDS.len() - 1] {
    let mut bounds = [0; AGE_BANDS.len() - 1];
    for (b, (_, below)) in bounds.iter_mut().zip(AGE_BANDS) {
        *b = at.saturating_sub(below);
    }
    bounds
}

/// The band of an age.
pub fn age_band(age_ms: i64) -> usize {
    AGE_BANDS
        .iter()
        .position(|(_, below)| age_ms < *below)
        .unwrap_or(AGE_BANDS.len() - 1)
}

/// Unresolved tickets of one row by age.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BacklogRow {
    pub key: Key,
    /// Counts per [`AGE_BANDS`] band.
    pub bands: [i64; AGE_BANDS.len()],
}

impl BacklogRow {
    /// Every band together.
    pub fn total(&self) -> i64 {
        self.bands.iter().sum()
    }
}

/// A whole report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub period: Period,
    pub grouping: Grouping,
    /// Rows in key order; a report by day has one for every day.
    pub rows: Vec<Row>,
    /// Every row together (its times over every duration, not of the rows).
    pub total: Row,
    /// The backlog when the period ended (or now, for a period running
    /// today): one row for a report by day, else one per key.
    pub backlog: Vec<BacklogRow>,
    /// When the backlog was counted.
    pub backlog_at: Millis,
}

/// The moment a period's backlog is counted at: its end, or `now` if sooner.
pub fn backlog_at(period: &Period, now: Millis) -> Millis {
    period.end().min(now)
}

/// A row being counted, with its first-response and resolution durations.
type Acc = (Row, Vec<i64>, Vec<i64>);

fn row(rows: &mut BTreeMap<Key, Acc>, key: Key) -> &mut Acc {
    rows.entry(key.clone())
        .or_insert_with(|| (Row::new(key), Vec::new(), Vec::new()))
}

/// What the store read for a report, each by the key of its grouping
/// (merged tickets left out): the day an event fell on in the report's
/// zone, the ticket's assignee (a reply's author), category or mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counts {
    /// Tickets opened in the period.
    pub opened: Vec<(Key, i64)>,
    /// First agent replies in the period.
    pub first_responses: Vec<(Key, Vec<Clock>)>,
    /// Resolutions in the period (tickets resolved or closed then, and not
    /// reopened since).
    pub resolutions: Vec<(Key, Vec<Clock>)>,
    /// Of those, how many an SLA target applied to, and how many of them
    /// never breached.
    pub sla: Vec<(Key, i64, i64)>,
    /// The team's public replies in the period, by key.
    pub replies: Vec<(Key, i64)>,
    /// Ratings given in the period, by key and whether they were good.
    pub ratings: Vec<(Key, bool, i64)>,
    /// Tickets unresolved at [`backlog_at`], by key ([`Key::All`] for a
    /// report by day) and age band.
    pub backlog: Vec<(Key, usize, i64)>,
}

/// Builds a report from what the store read.
pub fn build(period: Period, grouping: Grouping, counts: &Counts, now: Millis) -> Report {
    let mut rows: BTreeMap<Key, Acc> = BTreeMap::new();
    if grouping == Grouping::Day {
        for day in period.first_day..=period.last_day {
            rows.insert(
                Key::Day(day),
                (Row::new(Key::Day(day)), Vec::new(), Vec::new()),
            );
        }
    }
    for (key, n) in &counts.opened {
        row(&mut rows, key.clone()).0.opened += n;
    }
    for (key, clocks) in &counts.first_responses {
        row(&mut rows, key.clone())
            .1
            .extend(clocks.iter().map(Clock::counted_ms));
    }
    for (key, clocks) in &counts.resolutions {
        let r = row(&mut rows, key.clone());
        r.0.closed += clocks.len() as i64;
        r.2.extend(clocks.iter().map(Clock::counted_ms));
    }
    for (key, measured, met) in &counts.sla {
        let r = &mut row(&mut rows, key.clone()).0;
        r.sla_measured += measured;
        r.sla_met += met;
    }
    for (key, n) in &counts.replies {
        row(&mut rows, key.clone()).0.replies += n;
    }
    for (key, good, n) in &counts.ratings {
        let row = &mut row(&mut rows, key.clone()).0;
        if *good {
            row.rated_good += n;
        } else {
            row.rated_bad += n;
        }
    }
    let mut total = Row::new(Key::All);
    let (mut all_first, mut all_resolution) = (Vec::new(), Vec::new());
    let rows: Vec<Row> = rows
        .into_values()
        .map(|(mut r, mut first, mut resolution)| {
            total.opened += r.opened;
            total.closed += r.closed;
            total.replies += r.replies;
            total.sla_measured += r.sla_measured;
            total.sla_met += r.sla_met;
            total.rated_good += r.rated_good;
            total.rated_bad += r.rated_bad;
            all_first.extend_from_slice(&first);
            all_resolution.extend_from_slice(&resolution);
            r.first_response = Times::of(&mut first);
            r.resolution = Times::of(&mut resolution);
            r
        })
        .collect();
    total.first_response = Times::of(&mut all_first);
    total.resolution = Times::of(&mut all_resolution);
    let at = backlog_at(&period, now);
    let mut backlog: BTreeMap<Key, BacklogRow> = BTreeMap::new();
    for (key, band, n) in &counts.backlog {
        let key = match grouping {
            Grouping::Day => Key::All,
            _ => key.clone(),
        };
        let band = (*band).min(AGE_BANDS.len() - 1);
        backlog
            .entry(key.clone())
            .or_insert_with(|| BacklogRow {
                key,
                bands: [0; AGE_BANDS.len()],
            })
            .bands[band] += n;
    }
    if grouping == Grouping::Day && backlog.is_empty() {
        backlog.insert(
            Key::All,
            BacklogRow {
                key: Key::All,
                bands: [0; AGE_BANDS.len()],
            },
        );
    }
    Report {
        period,
        grouping,
        rows,
        total,
        backlog: backlog.into_values().collect(),
        backlog_at: at,
    }
}

#[cfg(test)]
mod tests;
