//! Reports as the console and the API share them (SPEC §8, "reports";
//! docs/agent-guide.md): reading `from`, `to`, `tz` and `group` from a
//! request, building the report from what the store counted
//! (`domain::report` does the arithmetic), naming its rows (agents,
//! mailboxes, days), and writing it as JSON, as CSV (one per table) and as
//! SVG charts.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::chart::{self, COLOURS, Series, Unit};
use super::error::WebError;
use super::files::csv_field;
use crate::domain::report::{
    AGE_BANDS, BacklogRow, Grouping, Key, Period, Report, Row, Times, build, day_name,
};
use crate::store::now_millis;

/// What a report is asked for with (every field optional: the last 30
/// days, by day, in UTC).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReportQuery {
    /// First day, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last day (included), `YYYY-MM-DD`.
    pub to: Option<String>,
    /// The reader's offset from UTC, `+02:00`.
    pub tz: Option<String>,
    /// `day`, `agent`, `category` or `mailbox`.
    pub group: Option<String>,
    /// The API's `csv` (with `table`).
    pub format: Option<String>,
    /// Which table a CSV holds: `summary` (default) or `backlog`.
    pub table: Option<String>,
}

/// One of a report's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Summary,
    Backlog,
}

impl ReportQuery {
    /// The table a CSV was asked for.
    pub fn table(&self) -> Result<Table, WebError> {
        match self.table.as_deref().map(str::trim) {
            None | Some("") | Some("summary") => Ok(Table::Summary),
            Some("backlog") => Ok(Table::Backlog),
            Some(other) => Err(WebError::BadRequest(format!(
                "table `{}` is not one: summary or backlog",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }
    /// The query string that asks for the same report (for links).
    pub fn to_query(&self, report: &Report) -> String {
        format!(
            "from={}&to={}&group={}&tz={}",
            day_name(report.period.first_day),
            day_name(report.period.last_day),
            report.grouping.as_str(),
            report.period.zone().replace('+', "%2B")
        )
    }
}

/// A report with its rows named.
#[derive(Debug, Clone)]
pub struct Named {
    pub report: Report,
    /// A stable name per key (a date, an agent's address, a mailbox's
    /// name, a category); `None` for "nobody" keys.
    keys: HashMap<Key, Option<String>>,
    /// What a page shows per key.
    labels: HashMap<Key, String>,
}

impl Named {
    /// A row's stable name.
    pub fn key(&self, key: &Key) -> Option<String> {
        self.keys.get(key).cloned().flatten()
    }
    /// A row's label.
    pub fn label(&self, key: &Key) -> String {
        self.labels.get(key).cloned().unwrap_or_default()
    }
}

/// Builds the report `q` asks for.
pub async fn load(state: &AppState, q: &ReportQuery) -> Result<Named, WebError> {
    let now = now_millis();
    let bad = |e: crate::domain::ParseError| WebError::BadRequest(e.to_string());
    let period =
        Period::parse(q.from.as_deref(), q.to.as_deref(), q.tz.as_deref(), now).map_err(bad)?;
    let grouping = match q.group.as_deref().map(str::trim) {
        None | Some("") => Grouping::Day,
        Some(g) => Grouping::parse(g).map_err(bad)?,
    };
    let started = std::time::Instant::now();
    let counts = state.store.report_counts(&period, grouping, now).await?;
    let counted = started.elapsed();
    let named = name(state, build(period, grouping, &counts, now)).await?;
    tracing::debug!(
        counted_ms = counted.as_millis() as u64,
        built_ms = (started.elapsed() - counted).as_millis() as u64,
        grouping = grouping.as_str(),
        days = period.last_day - period.first_day + 1,
        "report built"
    );
    Ok(named)
}

fn report_keys(report: &Report) -> Vec<Key> {
    report
        .rows
        .iter()
        .map(|r| r.key.clone())
        .chain(report.backlog.iter().map(|b| b.key.clone()))
        .collect()
}

/// Names every key and orders rows other than days by their label, the
/// "nobody" rows (unassigned, the portal) last.
async fn name(state: &AppState, mut report: Report) -> Result<Named, WebError> {
    let keys = report_keys(&report);
    let (mut names, mut labels) = (HashMap::new(), HashMap::new());
    let needs_agents = keys.iter().any(|k| matches!(k, Key::Agent(Some(_))));
    let needs_mailboxes = keys.iter().any(|k| matches!(k, Key::Mailbox(Some(_))));
    let agents: HashMap<i64, crate::store::User> = if needs_agents {
        state
            .store
            .users()
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect()
    } else {
        HashMap::new()
    };
    let mailboxes: HashMap<i64, String> = if needs_mailboxes {
        state
            .store
            .mailboxes()
            .await?
            .into_iter()
            .map(|m| (m.id, m.name))
            .collect()
    } else {
        HashMap::new()
    };
    for key in keys {
        let (stable, label) = match &key {
            Key::Day(d) => (Some(day_name(*d)), day_name(*d)),
            Key::Agent(None) => (None, "Unassigned".to_string()),
            Key::Agent(Some(id)) => match agents.get(id) {
                Some(u) if !u.name.trim().is_empty() => {
                    (Some(u.email.to_string()), u.name.trim().to_string())
                }
                Some(u) => (Some(u.email.to_string()), u.email.to_string()),
                None => (Some(format!("user {id}")), format!("Removed user {id}")),
            },
            Key::Category(c) if c.is_empty() => (None, "No category".to_string()),
            Key::Category(c) => (Some(c.clone()), c.clone()),
            Key::Mailbox(None) => (None, "Portal and API".to_string()),
            Key::Mailbox(Some(id)) => match mailboxes.get(id) {
                Some(n) => (Some(n.clone()), n.clone()),
                None => (
                    Some(format!("mailbox {id}")),
                    format!("Removed mailbox {id}"),
                ),
            },
            Key::All => (None, "All".to_string()),
        };
        names.insert(key.clone(), stable);
        labels.insert(key, label);
    }
    if report.grouping != Grouping::Day {
        let order = |k: &Key| {
            (
                names.get(k).is_some_and(Option::is_none),
                labels.get(k).map(|l| l.to_lowercase()),
            )
        };
        report.rows.sort_by_key(|r| order(&r.key));
        report.backlog.sort_by_key(|b| order(&b.key));
    }
    Ok(Named {
        report,
        keys: names,
        labels,
    })
}

/// A duration as people read it: `45 s`, `12 min`, `3 h 05 min`, `2 d 4 h`.
pub fn duration_words(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3_600 => format!("{} min", s / 60),
        s if s < 48 * 3_600 => format!("{} h {:02} min", s / 3_600, (s % 3_600) / 60),
        s => format!("{} d {} h", s / 86_400, (s % 86_400) / 3_600),
    }
}

fn pct_words(p: Option<f64>) -> String {
    p.map_or_else(|| "–".into(), |p| format!("{p:.0}%"))
}

fn times_json(t: &Times) -> Value {
    json!({ "count": t.count, "median_ms": t.median_ms, "p90_ms": t.p90_ms })
}

fn row_json(named: &Named, r: &Row) -> Value {
    json!({
        "key": named.key(&r.key),
        "label": named.label(&r.key),
        "opened": r.opened,
        "closed": r.closed,
        "replies": r.replies,
        "first_response": times_json(&r.first_response),
        "resolution": times_json(&r.resolution),
        "sla": { "measured": r.sla_measured, "met": r.sla_met, "met_pct": r.sla_met_pct() },
        "satisfaction": {
            "good": r.rated_good,
            "bad": r.rated_bad,
            "good_pct": r.satisfaction_pct(),
        },
    })
}

/// The report as the API answers it.
pub fn to_json(named: &Named) -> Value {
    let r = &named.report;
    let mut total = row_json(named, &r.total);
    if let Some(t) = total.as_object_mut() {
        t.remove("key");
        t.remove("label");
    }
    json!({
        "from": day_name(r.period.first_day),
        "to": day_name(r.period.last_day),
        "tz": r.period.zone(),
        "group": r.grouping.as_str(),
        "rows": r.rows.iter().map(|row| row_json(named, row)).collect::<Vec<_>>(),
        "total": total,
        "backlog": {
            "at": crate::domain::rfc3339(r.backlog_at),
            "bands": AGE_BANDS.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
            "rows": r.backlog.iter().map(|b| json!({
                "key": named.key(&b.key),
                "label": named.label(&b.key),
                "counts": b.bands,
                "total": b.total(),
            })).collect::<Vec<_>>(),
        },
    })
}

/// The rows of a page's summary table (all text, as the template shows it).
pub fn summary_rows(named: &Named) -> Vec<Value> {
    let words = |r: &Row, label: String| {
        let t = |t: &Times| {
            (
                t.median_ms
                    .map(duration_words)
                    .unwrap_or_else(|| "–".into()),
                t.p90_ms.map(duration_words).unwrap_or_else(|| "–".into()),
            )
        };
        let (fr_med, fr_p90) = t(&r.first_response);
        let (res_med, res_p90) = t(&r.resolution);
        json!({
            "label": label,
            "opened": r.opened,
            "closed": r.closed,
            "replies": r.replies,
            "fr_median": fr_med, "fr_p90": fr_p90,
            "res_median": res_med, "res_p90": res_p90,
            "sla": pct_words(r.sla_met_pct()),
            "sla_of": r.sla_measured,
            "satisfaction": pct_words(r.satisfaction_pct()),
            "rated": r.rated_good + r.rated_bad,
        })
    };
    let r = &named.report;
    r.rows
        .iter()
        .map(|row| words(row, named.label(&row.key)))
        .chain(std::iter::once(words(&r.total, "Total".into())))
        .collect()
}

/// The rows of a page's backlog table.
pub fn backlog_rows(named: &Named) -> Vec<Value> {
    named
        .report
        .backlog
        .iter()
        .map(|b: &BacklogRow| json!({ "label": named.label(&b.key), "counts": b.bands, "total": b.total() }))
        .collect()
}

/// The report's charts, as SVG markup.
pub fn charts(named: &Named) -> Vec<String> {
    let r = &named.report;
    let columns: Vec<String> = r.rows.iter().map(|row| named.label(&row.key)).collect();
    let series = |name: &str, colour: usize, f: &dyn Fn(&Row) -> Option<f64>| Series {
        name: name.into(),
        colour: COLOURS[colour],
        values: r.rows.iter().map(f).collect(),
    };
    let ms = |v: Option<i64>| v.map(|v| v as f64);
    let times = |title: &str, of: &dyn Fn(&Row) -> &Times| {
        chart::bars(
            title,
            Unit::Duration,
            &columns,
            &[
                series("Median", 0, &|row| ms(of(row).median_ms)),
                series("90th percentile", 2, &|row| ms(of(row).p90_ms)),
            ],
        )
    };
    let mut out = vec![
        chart::bars(
            "Tickets opened and closed",
            Unit::Count,
            &columns,
            &[
                series("Opened", 0, &|row| Some(row.opened as f64)),
                series("Closed", 1, &|row| Some(row.closed as f64)),
            ],
        ),
        chart::bars(
            "Replies sent",
            Unit::Count,
            &columns,
            &[series("Replies", 0, &|row| Some(row.replies as f64))],
        ),
        times("First response time", &|row| &row.first_response),
        times("Resolution time", &|row| &row.resolution),
        chart::bars(
            "SLA met and satisfaction",
            Unit::Percent,
            &columns,
            &[
                series("SLA met", 1, &|row| row.sla_met_pct()),
                series("Rated good", 3, &|row| row.satisfaction_pct()),
            ],
        ),
    ];
    let bands: Vec<String> = AGE_BANDS.iter().map(|(n, _)| (*n).to_string()).collect();
    let backlog: Vec<Series> = r
        .backlog
        .iter()
        .take(COLOURS.len())
        .enumerate()
        .map(|(i, b)| Series {
            name: named.label(&b.key),
            colour: COLOURS[i],
            values: b.bands.iter().map(|n| Some(*n as f64)).collect(),
        })
        .collect();
    let backlog = if r.backlog.len() > COLOURS.len() {
        // Too many rows to tell apart: the whole backlog in one series.
        let mut all = [0i64; AGE_BANDS.len()];
        for b in &r.backlog {
            for (a, n) in all.iter_mut().zip(b.bands) {
                *a += n;
            }
        }
        vec![Series {
            name: "All".into(),
            colour: COLOURS[0],
            values: all.iter().map(|n| Some(*n as f64)).collect(),
        }]
    } else {
        backlog
    };
    out.push(chart::bars("Backlog by age", Unit::Count, &bands, &backlog));
    out
}

/// One of the report's tables as CSV (a BOM first, so spreadsheets read
/// UTF-8); durations in minutes.
pub fn to_csv(named: &Named, table: Table) -> Vec<u8> {
    let mut out = b"\xEF\xBB\xBF".to_vec();
    let mut line = |fields: &[String]| {
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            csv_field(&mut out, f);
        }
        out.extend_from_slice(b"\r\n");
    };
    let r = &named.report;
    let group = r.grouping.as_str().to_string();
    let minutes =
        |v: Option<i64>| v.map_or_else(String::new, |ms| format!("{:.1}", ms as f64 / 60_000.0));
    let pct = |v: Option<f64>| v.map_or_else(String::new, |p| format!("{p:.1}"));
    match table {
        Table::Summary => {
            line(&[
                group,
                "opened".into(),
                "closed".into(),
                "replies".into(),
                "first_responses".into(),
                "first_response_median_minutes".into(),
                "first_response_p90_minutes".into(),
                "resolved".into(),
                "resolution_median_minutes".into(),
                "resolution_p90_minutes".into(),
                "sla_measured".into(),
                "sla_met".into(),
                "sla_met_pct".into(),
                "rated_good".into(),
                "rated_bad".into(),
                "good_pct".into(),
            ]);
            let rows = r
                .rows
                .iter()
                .map(|row| (named.label(&row.key), row))
                .chain(std::iter::once(("Total".to_string(), &r.total)));
            for (label, row) in rows {
                line(&[
                    label,
                    row.opened.to_string(),
                    row.closed.to_string(),
                    row.replies.to_string(),
                    row.first_response.count.to_string(),
                    minutes(row.first_response.median_ms),
                    minutes(row.first_response.p90_ms),
                    row.resolution.count.to_string(),
                    minutes(row.resolution.median_ms),
                    minutes(row.resolution.p90_ms),
                    row.sla_measured.to_string(),
                    row.sla_met.to_string(),
                    pct(row.sla_met_pct()),
                    row.rated_good.to_string(),
                    row.rated_bad.to_string(),
                    pct(row.satisfaction_pct()),
                ]);
            }
        }
        Table::Backlog => {
            let mut head = vec![if r.grouping == Grouping::Day {
                "backlog".to_string()
            } else {
                group
            }];
            head.extend(AGE_BANDS.iter().map(|(n, _)| (*n).to_string()));
            head.push("total".into());
            line(&head);
            for b in &r.backlog {
                let mut fields = vec![named.label(&b.key)];
                fields.extend(b.bands.iter().map(i64::to_string));
                fields.push(b.total().to_string());
                line(&fields);
            }
        }
    }
    out
}

/// A CSV download's file name.
pub fn csv_name(named: &Named, table: Table) -> String {
    let r = &named.report;
    format!(
        "report-{}-{}-{}-by-{}.csv",
        match table {
            Table::Summary => "summary",
            Table::Backlog => "backlog",
        },
        day_name(r.period.first_day),
        day_name(r.period.last_day),
        r.grouping.as_str()
    )
}

/// A CSV as a download.
pub fn csv_response(body: Vec<u8>, name: &str) -> axum::response::Response {
    let mut r = axum::response::IntoResponse::into_response(body);
    let h = r.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_words(0), "0 s");
        assert_eq!(duration_words(59_000), "59 s");
        assert_eq!(duration_words(12 * 60_000 + 5_000), "12 min");
        assert_eq!(duration_words(3 * 3_600_000 + 5 * 60_000), "3 h 05 min");
        assert_eq!(duration_words(52 * 3_600_000), "2 d 4 h");
        assert_eq!(duration_words(-5), "0 s");
    }
}
