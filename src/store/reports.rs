//! What reports read (`domain::report` does the arithmetic), each grouped
//! by the report's key in the database so that a year of tickets comes
//! back as a few rows: tickets opened, the clocks of first replies and
//! resolutions (opening time, event time and paused time of each, joined
//! into one text per key: the percentiles need every value, not a row
//! each), SLA met, the team's replies, ratings and the backlog by age.
//! Every query is a range over an index (migration 0025): tickets by
//! opening, first reply and resolution time, the team's replies by time.

use sqlx::any::AnyRow;

use super::{Backend, Result, Store, StoreError, col, opt};
use crate::domain::report::{
    AGE_BANDS, Clock, Counts, DAY_MS, Grouping, Key, Period, backlog_at, band_bounds,
};

/// The statuses of a ticket not yet resolved, as migration 0025's partial
/// index `tickets_unresolved` names them (a query must say the same to use it).
const UNRESOLVED: &str = "'open', 'in_progress', 'pending', 'on_hold'";

/// The column a grouping other than by day keys on, for tickets as `t`.
fn ticket_key_column(grouping: Grouping) -> &'static str {
    match grouping {
        // The day is the event's, computed per query; the backlog of a
        // report by day is one row.
        Grouping::Day => "0",
        Grouping::Agent => "t.assignee_id",
        Grouping::Category => "t.category",
        Grouping::Mailbox => "t.mailbox_id",
    }
}

/// The key in column `k` of a counted row.
fn key_of(row: &AnyRow, grouping: Grouping) -> Result<Key> {
    Ok(match grouping {
        Grouping::Day => Key::Day(col(row, "k")?),
        Grouping::Agent => Key::Agent(opt(row, "k")?),
        Grouping::Category => Key::Category(col(row, "k")?),
        Grouping::Mailbox => Key::Mailbox(opt(row, "k")?),
    })
}

/// The day of column `at` in a zone `offset_ms` east of UTC, as SQL (times
/// are after 1970, so integer division floors; the offset is a number the
/// period parsed, never text from the request).
fn day_of(at: &str, offset_ms: i64) -> String {
    format!("(({at} + {offset_ms}) / {DAY_MS})")
}

/// Reads `a:b:c,a:b:c` (what [`Store::clocks`] joins) into clocks.
fn parse_clocks(joined: &str) -> Result<Vec<Clock>> {
    let bad = || {
        StoreError::Corrupt(format!(
            "report clocks `{}`",
            joined.chars().take(60).collect::<String>()
        ))
    };
    joined
        .split(',')
        .filter(|c| !c.is_empty())
        .map(|c| {
            let mut parts = c.split(':').map(|n| n.trim().parse::<i64>());
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(Ok(created_at)), Some(Ok(at)), Some(Ok(paused_ms)), None) => Ok(Clock {
                    created_at,
                    at,
                    paused_ms,
                }),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// `(key, n)` of rows counted as `k` and `n`.
fn counted(rows: &[AnyRow], grouping: Grouping) -> Result<Vec<(Key, i64)>> {
    rows.iter()
        .map(|row| Ok((key_of(row, grouping)?, col(row, "n")?)))
        .collect()
}

impl Store {
    /// Runs a report's `sql` with its bounds, each bound a number.
    async fn ranged(&self, sql: String, binds: &[i64]) -> Result<Vec<AnyRow>> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            query = query.bind(*b);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// The key column of a ticket event at column `at` (for a report by day).
    fn event_key(grouping: Grouping, at: &str, offset_ms: i64) -> String {
        match grouping {
            Grouping::Day => day_of(at, offset_ms),
            g => ticket_key_column(g).to_string(),
        }
    }

    /// The clocks of tickets whose column `at` falls in the period, by key,
    /// with `paused` their paused time then.
    async fn clocks(
        &self,
        period: &Period,
        grouping: Grouping,
        at: &str,
        paused: &str,
        only: &str,
    ) -> Result<Vec<(Key, Vec<Clock>)>> {
        let key = Self::event_key(grouping, &format!("t.{at}"), period.offset_ms);
        let item = format!("t.created_at || ':' || t.{at} || ':' || {paused}");
        let joined = match self.backend {
            Backend::Sqlite => format!("group_concat({item}, ',')"),
            Backend::Postgres => format!("string_agg({item}, ',')"),
        };
        let sql = format!(
            "SELECT {key} AS k, {joined} AS clocks FROM tickets t \
             WHERE t.merged_into_id IS NULL AND {only}t.{at} >= $1 AND t.{at} < $2 GROUP BY 1"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(period.start())
            .bind(period.end())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let clocks: Option<String> = opt(row, "clocks")?;
                Ok((
                    key_of(row, grouping)?,
                    parse_clocks(clocks.as_deref().unwrap_or(""))?,
                ))
            })
            .collect()
    }

    /// Everything a report of `period` grouped by `grouping` counts; the
    /// backlog as [`backlog_at`] says.
    ///
    /// Long because it holds the report's seven range queries side by side, so their
    /// bounds can be read together.
    pub async fn report_counts(
        &self,
        period: &Period,
        grouping: Grouping,
        now: i64,
    ) -> Result<Counts> {
        let (start, end, offset) = (period.start(), period.end(), period.offset_ms);
        let resolved = "t.status IN ('resolved', 'closed') AND ";
        // Tickets opened.
        let key = Self::event_key(grouping, "t.created_at", offset);
        let sql = format!(
            "SELECT {key} AS k, COUNT(*) AS n FROM tickets t WHERE t.merged_into_id IS NULL \
             AND t.created_at >= $1 AND t.created_at < $2 GROUP BY 1"
        );
        let opened = counted(&self.ranged(sql, &[start, end]).await?, grouping)?;
        // First replies (their clock stopped there: the pauses before it)
        // and resolutions (every pause: a resolved ticket is not paused).
        let first_responses = self
            .clocks(
                period,
                grouping,
                "first_response_at",
                "COALESCE(t.sla_first_response_paused_ms, 0)",
                "",
            )
            .await?;
        let resolutions = self
            .clocks(period, grouping, "resolved_at", "t.sla_paused_ms", resolved)
            .await?;
        // SLA met among the resolutions.
        let key = Self::event_key(grouping, "t.resolved_at", offset);
        let sql = format!(
            "SELECT {key} AS k, \
             SUM(CASE WHEN t.sla_state <> 'none' THEN 1 ELSE 0 END) AS measured, \
             SUM(CASE WHEN t.sla_state IN ('ok', 'warning') THEN 1 ELSE 0 END) AS met \
             FROM tickets t WHERE t.merged_into_id IS NULL AND {resolved}\
             t.resolved_at >= $1 AND t.resolved_at < $2 GROUP BY 1"
        );
        let sla = self
            .ranged(sql, &[start, end])
            .await?
            .iter()
            .map(|row| {
                Ok((
                    key_of(row, grouping)?,
                    opt::<i64>(row, "measured")?.unwrap_or(0),
                    opt::<i64>(row, "met")?.unwrap_or(0),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        // Replies: by their day, their author, or their ticket's place.
        let (key, join) = match grouping {
            Grouping::Day => (day_of("m.created_at", offset), ""),
            Grouping::Agent => ("m.author_user_id".to_string(), ""),
            g => (
                ticket_key_column(g).to_string(),
                " JOIN tickets t ON t.id = m.ticket_id",
            ),
        };
        let sql = format!(
            "SELECT {key} AS k, COUNT(*) AS n FROM messages m{join} \
             WHERE m.kind = 'reply' AND m.author_kind = 'agent' \
             AND m.created_at >= $1 AND m.created_at < $2 GROUP BY 1"
        );
        let replies = counted(&self.ranged(sql, &[start, end]).await?, grouping)?;
        // Ratings: by their day or their ticket's place.
        let key = match grouping {
            Grouping::Day => day_of("r.created_at", offset),
            g => ticket_key_column(g).to_string(),
        };
        let sql = format!(
            "SELECT {key} AS k, r.rating AS rating, COUNT(*) AS n FROM ratings r \
             JOIN tickets t ON t.id = r.ticket_id \
             WHERE r.created_at >= $1 AND r.created_at < $2 GROUP BY 1, 2"
        );
        let ratings = self
            .ranged(sql, &[start, end])
            .await?
            .iter()
            .map(|row| {
                let rating: String = col(row, "rating")?;
                Ok((key_of(row, grouping)?, rating == "good", col(row, "n")?))
            })
            .collect::<Result<Vec<_>>>()?;
        // The backlog: tickets opened before the moment and not resolved by
        // then, by age band.
        let at = backlog_at(period, now);
        let bounds = band_bounds(at);
        let mut band = String::from("CASE");
        for (i, bound) in bounds.iter().enumerate() {
            band.push_str(&format!(" WHEN t.created_at > {bound} THEN {i}"));
        }
        band.push_str(&format!(" ELSE {} END", AGE_BANDS.len() - 1));
        let band = format!("CAST({band} AS BIGINT)");
        let (key, backlog_grouping) = match grouping {
            Grouping::Day => ("0".to_string(), None),
            g => (ticket_key_column(g).to_string(), Some(g)),
        };
        // Two ranges over indexes: the unresolved (a partial index, as
        // big as the backlog) and those resolved since the moment.
        let sql = format!(
            "SELECT k, band, COUNT(*) AS n FROM (\
             SELECT {key} AS k, {band} AS band FROM tickets t WHERE t.status IN ({UNRESOLVED}) \
             AND t.merged_into_id IS NULL AND t.created_at < $1 \
             UNION ALL SELECT {key} AS k, {band} AS band FROM tickets t WHERE {resolved}\
             t.resolved_at >= $1 AND t.merged_into_id IS NULL AND t.created_at < $1) b GROUP BY k, band"
        );
        let backlog = self
            .ranged(sql, &[at])
            .await?
            .iter()
            .map(|row| {
                let key = match backlog_grouping {
                    Some(g) => key_of(row, g)?,
                    None => Key::All,
                };
                let band: i64 = col(row, "band")?;
                Ok((key, usize::try_from(band).unwrap_or(0), col(row, "n")?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Counts {
            opened,
            first_responses,
            resolutions,
            sla,
            replies,
            ratings,
            backlog,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;

    #[test]
    fn unresolved_names_every_status_before_resolution() {
        let named: Vec<String> = Status::ALL
            .iter()
            .filter(|s| !matches!(s, Status::Resolved | Status::Closed))
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        assert_eq!(UNRESOLVED, named.join(", "));
        for backend in ["sqlite", "postgres"] {
            let migration = std::fs::read_to_string(format!(
                "{}/migrations/{backend}/0025_reports.sql",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            assert!(migration.contains(&format!("WHERE status IN ({UNRESOLVED})")));
        }
    }

    #[test]
    fn clocks_are_read_back_or_refused() {
        assert_eq!(
            parse_clocks("1:5:2,10:20:0").unwrap(),
            vec![
                Clock {
                    created_at: 1,
                    at: 5,
                    paused_ms: 2
                },
                Clock {
                    created_at: 10,
                    at: 20,
                    paused_ms: 0
                },
            ]
        );
        assert!(parse_clocks("").unwrap().is_empty());
        assert!(parse_clocks("1:2").is_err());
        assert!(parse_clocks("1:2:x").is_err());
        assert!(parse_clocks("1:2:3:4").is_err());
    }
}
