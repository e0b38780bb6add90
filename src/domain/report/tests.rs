//! Unit tests of periods, zones, percentiles, bands and building a report.

use super::*;

const H: i64 = 3_600_000;
/// 2026-11-01T00:00:00Z.
const NOV1: i64 = 1_793_491_200_000;

fn period(from: &str, to: &str) -> Period {
    Period::parse(Some(from), Some(to), None, NOV1).unwrap()
}

#[test]
fn periods_are_whole_days_in_the_readers_zone() {
    let p = period("2026-11-01", "2026-11-30");
    assert_eq!(p.start(), NOV1);
    assert_eq!(p.end(), NOV1 + 30 * DAY_MS);
    assert_eq!(day_name(p.first_day), "2026-11-01");
    assert_eq!(day_name(p.last_day), "2026-11-30");
    let east = Period::parse(Some("2026-11-01"), Some("2026-11-01"), Some("+02:00"), 0).unwrap();
    assert_eq!(east.start(), NOV1 - 2 * H);
    assert_eq!(east.zone(), "+02:00");
    // 23:30 UTC on 1 November is 2 November in Berlin's winter... at +02:00.
    assert_eq!(day_name(east.day_of(NOV1 + 23 * H)), "2026-11-02");
    let west = Period::parse(None, None, Some("-0530"), NOV1 + H).unwrap();
    assert_eq!(west.zone(), "-05:30");
    assert_eq!(day_name(west.last_day), "2026-10-31");
    assert_eq!(west.last_day - west.first_day + 1, DEFAULT_DAYS);
    assert_eq!(
        Period::parse(None, None, Some("Z"), 0).unwrap().offset_ms,
        0
    );
    // A time stands for its day, in the report's zone.
    let timed = Period::parse(
        Some("2026-11-01T23:30:00Z"),
        Some("2026-11-03T08:00:00+09:00"),
        Some("+01:00"),
        0,
    )
    .unwrap();
    assert_eq!(day_name(timed.first_day), "2026-11-02");
    assert_eq!(day_name(timed.last_day), "2026-11-03");
}

#[test]
fn bad_periods_are_refused_with_what_would_do() {
    for (from, to, tz) in [
        ("2026-13-01", "2026-12-01", ""),
        ("yesterday", "2026-12-01", ""),
        ("2026-12-02", "2026-12-01", ""),
        ("2020-01-01", "2026-12-01", ""),
        ("2026-11-01", "2026-12-01", "Europe/Paris"),
        ("2026-11-01", "2026-12-01", "+25:00"),
        ("2026-11-01", "2026-12-01", "+1"),
    ] {
        let e = Period::parse(Some(from), Some(to), Some(tz), NOV1).unwrap_err();
        assert!(!e.expected.is_empty(), "{from} {to} {tz}");
    }
    assert!(Grouping::parse("week").is_err());
    assert_eq!(Grouping::parse("agent").unwrap(), Grouping::Agent);
}

#[test]
fn nearest_rank_percentiles_are_real_values() {
    assert_eq!(nearest_rank(&[], 50), None);
    assert_eq!(nearest_rank(&[7], 90), Some(7));
    let v: Vec<i64> = (1..=10).collect();
    assert_eq!(nearest_rank(&v, 50), Some(5));
    assert_eq!(nearest_rank(&v, 90), Some(9));
    let mut w = vec![40, 10, 30, 20];
    assert_eq!(
        Times::of(&mut w),
        Times {
            count: 4,
            median_ms: Some(20),
            p90_ms: Some(40)
        }
    );
}

#[test]
fn band_bounds_agree_with_age_bands() {
    let at = NOV1;
    let bounds = band_bounds(at);
    for age in [
        0,
        H,
        DAY_MS - 1,
        DAY_MS,
        2 * DAY_MS,
        7 * DAY_MS,
        29 * DAY_MS,
        31 * DAY_MS,
    ] {
        let created = at - age;
        // Band i holds a ticket opened after bounds[i] but not after bounds[i - 1].
        let by_bounds = bounds
            .iter()
            .position(|b| created > *b)
            .unwrap_or(bounds.len());
        assert_eq!(by_bounds, age_band(age), "age {age}");
    }
}

#[test]
fn ages_fall_in_bands() {
    assert_eq!(age_band(0), 0);
    assert_eq!(age_band(DAY_MS - 1), 0);
    assert_eq!(age_band(DAY_MS), 1);
    assert_eq!(age_band(5 * DAY_MS), 2);
    assert_eq!(age_band(29 * DAY_MS), 3);
    assert_eq!(age_band(400 * DAY_MS), 4);
}

fn clock(created_at: i64, at: i64, paused_ms: i64) -> Clock {
    Clock {
        created_at,
        at,
        paused_ms,
    }
}

#[test]
fn a_report_by_day_has_every_day_and_exact_percentiles() {
    let p = period("2026-11-01", "2026-11-03");
    let (d1, d2, d3) = (
        Key::Day(p.first_day),
        Key::Day(p.first_day + 1),
        Key::Day(p.first_day + 2),
    );
    let counts = Counts {
        opened: vec![(d1.clone(), 2), (d3.clone(), 1)],
        // Answered after 3 h (1 h paused before the reply).
        first_responses: vec![(d1.clone(), vec![clock(NOV1 + H, NOV1 + 5 * H, H)])],
        // Resolved after 33 h less 21 h paused, and after 11 days.
        resolutions: vec![(
            d2.clone(),
            vec![
                clock(NOV1 + H, NOV1 + 34 * H, 21 * H),
                clock(NOV1 - 10 * DAY_MS, NOV1 + DAY_MS, 0),
            ],
        )],
        sla: vec![(d2.clone(), 2, 1)],
        replies: vec![(d1.clone(), 2), (d3.clone(), 1)],
        ratings: vec![(d2.clone(), true, 1), (d2.clone(), false, 1)],
        backlog: vec![(Key::All, 1, 1), (Key::All, 3, 1)],
    };
    let r = build(p, Grouping::Day, &counts, NOV1 + 30 * DAY_MS);
    assert_eq!(r.rows.len(), 3);
    let [one, two, three] = [&r.rows[0], &r.rows[1], &r.rows[2]];
    assert_eq!((one.opened, one.closed, one.replies), (2, 0, 2));
    assert_eq!(one.first_response.median_ms, Some(3 * H));
    assert_eq!((two.opened, two.closed, two.replies), (0, 2, 0));
    assert_eq!(two.resolution.count, 2);
    assert_eq!(two.resolution.median_ms, Some(12 * H));
    assert_eq!(two.resolution.p90_ms, Some(11 * DAY_MS));
    assert_eq!((two.sla_measured, two.sla_met), (2, 1));
    assert_eq!(two.sla_met_pct(), Some(50.0));
    assert_eq!((two.rated_good, two.rated_bad), (1, 1));
    assert_eq!((three.opened, three.replies), (1, 1));
    assert_eq!(three.satisfaction_pct(), None);
    assert_eq!((r.total.opened, r.total.closed, r.total.replies), (3, 2, 3));
    assert_eq!(r.total.resolution.count, 2);
    assert_eq!(r.total.first_response.p90_ms, Some(3 * H));
    // The backlog at the period's end.
    assert_eq!(r.backlog_at, p.end());
    assert_eq!(r.backlog.len(), 1);
    assert_eq!(r.backlog[0].key, Key::All);
    assert_eq!(r.backlog[0].bands, [0, 1, 0, 1, 0]);
}

#[test]
fn a_report_by_agent_has_a_row_per_key() {
    let p = period("2026-11-01", "2026-11-30");
    let counts = Counts {
        opened: vec![(Key::Agent(Some(7)), 1), (Key::Agent(None), 1)],
        replies: vec![(Key::Agent(Some(3)), 4)],
        backlog: vec![(Key::Agent(Some(7)), 1, 1)],
        ..Counts::default()
    };
    let by_agent = build(p, Grouping::Agent, &counts, NOV1 + 2 * DAY_MS);
    let keys: Vec<&Key> = by_agent.rows.iter().map(|r| &r.key).collect();
    assert_eq!(
        keys,
        [
            &Key::Agent(None),
            &Key::Agent(Some(3)),
            &Key::Agent(Some(7))
        ]
    );
    assert_eq!(by_agent.rows[1].replies, 4);
    assert_eq!(by_agent.rows[2].opened, 1);
    // A period running today counts its backlog now.
    assert_eq!(by_agent.backlog_at, NOV1 + 2 * DAY_MS);
    assert_eq!(by_agent.backlog[0].key, Key::Agent(Some(7)));
    assert_eq!(by_agent.backlog[0].bands, [0, 1, 0, 0, 0]);
    assert_eq!(by_agent.backlog[0].total(), 1);
    let empty = build(p, Grouping::Category, &Counts::default(), NOV1);
    assert!(empty.rows.is_empty() && empty.backlog.is_empty());
}

#[test]
fn a_clock_never_counts_below_zero() {
    assert_eq!(clock(10, 5, 0).counted_ms(), 0);
    assert_eq!(clock(0, H, 2 * H).counted_ms(), 0);
    assert_eq!(clock(0, 3 * H, H).counted_ms(), 2 * H);
}

#[test]
fn an_empty_period_has_zero_rows_and_no_figures() {
    let p = period("2026-11-01", "2026-11-02");
    let r = build(p, Grouping::Day, &Counts::default(), NOV1);
    assert_eq!(r.rows.len(), 2);
    assert!(
        r.rows
            .iter()
            .all(|r| r.opened == 0 && r.first_response.median_ms.is_none())
    );
    assert_eq!(r.total.sla_met_pct(), None);
    assert_eq!(r.backlog[0].total(), 0);
}
