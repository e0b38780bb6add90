//! The queue: its rows, filters and sort orders, and the list, page, stream
//! and count queries over them (full-text search per backend).

use super::*;

/// One row of the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketSummary {
    pub id: i64,
    pub reference: TicketRef,
    pub subject: String,
    pub status: Status,
    pub priority: Priority,
    pub category: String,
    pub channel: Channel,
    pub requester_email: String,
    pub requester_name: String,
    pub assignee_email: Option<String>,
    pub message_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub sla_state: SlaState,
    /// A message newer than the viewer's read mark (lists for a viewer only).
    pub unread: bool,
}

/// Whose tickets a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AssigneeFilter {
    #[default]
    Anyone,
    Unassigned,
    User(i64),
}

/// The queue's filters; empty vectors and `None` mean "no filter".
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Vec<Status>,
    pub priority: Vec<Priority>,
    /// Any of these categories (empty: any).
    pub category: Vec<String>,
    /// Any of these channels (empty: any).
    pub channel: Vec<Channel>,
    pub assignee: AssigneeFilter,
    /// Tickets carrying any of these tags (empty: any).
    pub tag: Vec<String>,
    pub sla: Vec<SlaState>,
    pub requester_id: Option<i64>,
    /// Free text: subject, reference, requester name or address, message text.
    pub q: Option<String>,
    pub created_from: Option<i64>,
    pub created_to: Option<i64>,
    pub updated_from: Option<i64>,
    pub updated_to: Option<i64>,
}

/// Sort orders of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    Updated,
    Created,
    Subject,
    Status,
    Priority,
    MessageCount,
    Sla,
}

impl SortKey {
    /// Parses `updated`, `-created`, … (a leading `-` means descending; the
    /// default direction of dates and counts is newest/most first).
    pub fn parse(s: &str) -> Option<(SortKey, bool)> {
        let (desc_flag, name) = match s.strip_prefix('-') {
            Some(rest) => (Some(true), rest),
            None => (
                s.strip_prefix('+').map(|_| false),
                s.trim_start_matches('+'),
            ),
        };
        let key = match name {
            "updated" | "last_updated" => SortKey::Updated,
            "created" => SortKey::Created,
            "subject" => SortKey::Subject,
            "status" => SortKey::Status,
            "priority" => SortKey::Priority,
            "message_count" | "messages" => SortKey::MessageCount,
            "sla" => SortKey::Sla,
            _ => return None,
        };
        let default_desc = !matches!(key, SortKey::Subject | SortKey::Status);
        Some((key, desc_flag.unwrap_or(default_desc)))
    }

    fn column(self) -> &'static str {
        match self {
            SortKey::Updated => "t.updated_at",
            SortKey::Created => "t.created_at",
            SortKey::Subject => "LOWER(t.subject)",
            SortKey::Status => {
                "CASE t.status WHEN 'open' THEN 0 WHEN 'in_progress' THEN 1 WHEN 'pending' THEN 2 \
                                WHEN 'on_hold' THEN 3 WHEN 'resolved' THEN 4 ELSE 5 END"
            }
            SortKey::Priority => {
                "CASE t.priority WHEN 'low' THEN 0 WHEN 'normal' THEN 1 WHEN 'high' THEN 2 ELSE 3 END"
            }
            SortKey::MessageCount => "t.message_count",
            SortKey::Sla => {
                "CASE t.sla_state WHEN 'none' THEN 0 WHEN 'ok' THEN 1 WHEN 'warning' THEN 2 ELSE 3 END"
            }
        }
    }
}

fn summary_from(row: &AnyRow, prefix: &str) -> Result<TicketSummary> {
    let first: String = col(row, "r_first")?;
    let last: String = col(row, "r_last")?;
    let sla: String = col(row, "sla_state")?;
    Ok(TicketSummary {
        id: col(row, "id")?,
        reference: TicketRef::new(prefix, col(row, "number")?),
        subject: col(row, "subject")?,
        status: parsed(row, "status")?,
        priority: parsed(row, "priority")?,
        category: col(row, "category")?,
        channel: parsed(row, "channel")?,
        requester_email: col(row, "r_email")?,
        requester_name: format!("{first} {last}").trim().to_string(),
        assignee_email: opt(row, "u_email")?,
        message_count: col(row, "message_count")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
        sla_state: SlaState::parse(&sla)
            .ok_or_else(|| StoreError::Corrupt(format!("sla_state `{sla}`")))?,
        // Set by `queue_page` for a viewer.
        unread: false,
    })
}

const QUEUE_FROM: &str = " FROM tickets t JOIN requesters r ON r.id = t.requester_id LEFT JOIN users u ON u.id = t.assignee_id";

/// The queue's SELECT … ORDER BY for a filter, without LIMIT.
fn summary_query(
    filter: &TicketFilter,
    sort: (SortKey, bool),
    prefix: &str,
    backend: Backend,
) -> Sql {
    let mut list = Sql::default();
    list.push(
        "SELECT t.id, t.number, t.subject, t.status, t.priority, t.category, t.channel, t.message_count, \
         t.created_at, t.updated_at, t.sla_state, r.email AS r_email, r.first_name AS r_first, \
         r.last_name AS r_last, u.email AS u_email",
    );
    list.push(QUEUE_FROM);
    filter.push_where(&mut list, prefix, backend);
    let (key, desc) = sort;
    let dir = if desc { "DESC" } else { "ASC" };
    list.push(&format!(" ORDER BY {} {dir}, t.id {dir}", key.column()));
    list
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_pattern(q: &str) -> String {
    let mut s = String::with_capacity(q.len() + 2);
    s.push('%');
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

impl TicketFilter {
    /// Appends ` WHERE …` for this filter.
    ///
    /// Long because it writes one `AND` clause per filter the queue offers.
    fn push_where(&self, sql: &mut Sql, prefix: &str, backend: Backend) {
        sql.push(" WHERE t.merged_into_id IS NULL");
        let any_of = |sql: &mut Sql, column: &str, values: Vec<&str>| {
            if values.is_empty() {
                return;
            }
            sql.push(&format!(" AND {column} IN ("));
            for (i, v) in values.into_iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind(Param::Text(v.to_string()));
            }
            sql.push(")");
        };
        any_of(
            sql,
            "t.status",
            self.status.iter().map(|s| s.as_str()).collect(),
        );
        any_of(
            sql,
            "t.priority",
            self.priority.iter().map(|s| s.as_str()).collect(),
        );
        any_of(
            sql,
            "t.sla_state",
            self.sla.iter().map(|s| s.as_str()).collect(),
        );
        any_of(
            sql,
            "t.category",
            self.category.iter().map(String::as_str).collect(),
        );
        any_of(
            sql,
            "t.channel",
            self.channel.iter().map(|c| c.as_str()).collect(),
        );
        match self.assignee {
            AssigneeFilter::Anyone => {}
            AssigneeFilter::Unassigned => {
                sql.push(" AND t.assignee_id IS NULL");
            }
            AssigneeFilter::User(id) => {
                sql.push(" AND t.assignee_id = ").bind(Param::Int(id));
            }
        }
        if !self.tag.is_empty() {
            sql.push(" AND EXISTS (SELECT 1 FROM ticket_tags g WHERE g.ticket_id = t.id");
            any_of(sql, "g.tag", self.tag.iter().map(String::as_str).collect());
            sql.push(")");
        }
        if let Some(id) = self.requester_id {
            sql.push(" AND (t.requester_id = ")
                .bind(Param::Int(id))
                .push(" OR EXISTS (SELECT 1 FROM participants p WHERE p.ticket_id = t.id AND p.requester_id = ")
                .bind(Param::Int(id))
                .push("))");
        }
        for (column, op, value) in [
            ("t.created_at", ">=", self.created_from),
            ("t.created_at", "<", self.created_to),
            ("t.updated_at", ">=", self.updated_from),
            ("t.updated_at", "<", self.updated_to),
        ] {
            if let Some(v) = value {
                sql.push(&format!(" AND {column} {op} "))
                    .bind(Param::Int(v));
            }
        }
        if let Some(q) = self.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            // The reference; else every word, as a prefix, in the ticket's
            // subject and messages or in its requester's address and name.
            sql.push(" AND (");
            if let Ok(r) = q.parse::<TicketRef>()
                && r.prefix() == prefix
            {
                sql.push("t.number = ")
                    .bind(Param::Int(r.number()))
                    .push(" OR ");
            }
            let words = search_words(q);
            if words.is_empty() {
                // Only signs ("%", "#"): no word to look up, so the subject
                // is searched for them literally.
                sql.push("LOWER(t.subject) LIKE ")
                    .bind(Param::Text(like_pattern(q)))
                    .push(" ESCAPE '\\'");
            } else {
                match backend {
                    Backend::Sqlite => {
                        let query: Vec<String> =
                            words.iter().map(|w| format!("\"{w}\"*")).collect();
                        // With other filters, `+` steers SQLite to read their
                        // index and test each row against the matches, rather
                        // than look up every matching ticket (a common word
                        // matches most of them).
                        let hint = if self.narrows() { "+" } else { "" };
                        sql.push(&format!(
                            "{hint}t.id IN (SELECT rowid FROM ticket_search WHERE ticket_search MATCH "
                        ))
                        .bind(Param::Text(query.join(" ")))
                        .push(")");
                    }
                    Backend::Postgres => {
                        let query: Vec<String> = words.iter().map(|w| format!("{w}:*")).collect();
                        sql.push("t.id IN (SELECT ticket_id FROM ticket_search WHERE search @@ to_tsquery('simple', ")
                            .bind(Param::Text(query.join(" & ")))
                            .push("))");
                    }
                }
            }
            sql.push(")");
        }
    }
}

impl TicketFilter {
    /// Whether an indexed filter besides the search narrows the list.
    fn narrows(&self) -> bool {
        !self.status.is_empty()
            || !self.priority.is_empty()
            || !self.sla.is_empty()
            || !self.category.is_empty()
            || !self.channel.is_empty()
            || self.assignee != AssigneeFilter::Anyone
            || self.requester_id.is_some()
    }
}

/// The words of a search, as the full-text indexes know them: letters and
/// digits only (nothing of the query syntax gets through), lower-cased, at
/// most 8 of at most 40 characters.
fn search_words(q: &str) -> Vec<String> {
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase().chars().take(40).collect())
        .take(8)
        .collect()
}

impl Store {
    /// One page of the queue and the total matching the filter.
    pub async fn list_tickets(
        &self,
        filter: &TicketFilter,
        sort: (SortKey, bool),
        page: u32,
        per_page: u32,
    ) -> Result<(i64, Vec<TicketSummary>)> {
        self.queue_page(filter, sort, page, per_page, None).await
    }

    /// One page of the queue as `viewer` (a read-mark name such as
    /// `user:3`) sees it, with unread dots, and the total matching.
    pub async fn queue_page(
        &self,
        filter: &TicketFilter,
        sort: (SortKey, bool),
        page: u32,
        per_page: u32,
        viewer: Option<&str>,
    ) -> Result<(i64, Vec<TicketSummary>)> {
        let mut count = Sql::default();
        // Filters read only the ticket row: no joins to count.
        count.push("SELECT COUNT(*) FROM tickets t");
        filter.push_where(&mut count, &self.prefix, self.backend);
        let per_page = per_page.clamp(1, 500);
        let mut list = summary_query(filter, sort, &self.prefix, self.backend);
        list.push(" LIMIT ")
            .bind(Param::Int(per_page.into()))
            .push(" OFFSET ")
            .bind(Param::Int(i64::from(page.max(1) - 1) * i64::from(per_page)));
        // The count and the page at once, on two connections: a search costs
        // the slower of the two rather than both.
        let (counted, rows) = tokio::try_join!(
            count.query().fetch_one(&self.pool),
            list.query().fetch_all(&self.pool)
        )?;
        let total: i64 = counted.try_get(0)?;
        let mut conn = self.pool.acquire().await?;
        let mut tickets: Vec<TicketSummary> = rows
            .iter()
            .map(|r| summary_from(r, &self.prefix))
            .collect::<Result<_>>()?;
        if let Some(viewer) = viewer
            && !tickets.is_empty()
        {
            // For the page only (in the list query it would run for every
            // matching row before the sort).
            let mut sql = Sql::default();
            sql.push(
                "SELECT t.id FROM tickets t WHERE (SELECT MAX(m.id) FROM messages m WHERE m.ticket_id = t.id) > \
                 COALESCE((SELECT rm.last_message_id FROM read_marks rm WHERE rm.ticket_id = t.id AND rm.viewer = ",
            )
            .bind(Param::Text(viewer.to_string()))
            .push("), 0) AND t.id IN ")
            .bind_list(tickets.iter().map(|t| Param::Int(t.id)));
            let unread: Vec<i64> = sql
                .query()
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| r.try_get::<i64, _>(0))
                .collect::<std::result::Result<_, _>>()?;
            for t in &mut tickets {
                t.unread = unread.contains(&t.id);
            }
        }
        Ok((total, tickets))
    }

    /// Every ticket matching the filter, in order, sent one by one to `out`
    /// (as `Ok`) as the database yields them (exports: memory stays flat
    /// however many there are). Stops early, without error, when the
    /// receiver is gone; a failure is returned for the caller to report.
    pub async fn stream_tickets<E>(
        &self,
        filter: &TicketFilter,
        sort: (SortKey, bool),
        out: &tokio::sync::mpsc::Sender<std::result::Result<TicketSummary, E>>,
    ) -> Result<()> {
        use futures::TryStreamExt;
        let list = summary_query(filter, sort, &self.prefix, self.backend);
        let mut conn = self.pool.acquire().await?;
        let query = list.query();
        let mut rows = query.fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            if out
                .send(Ok(summary_from(&row, &self.prefix)?))
                .await
                .is_err()
            {
                break;
            }
        }
        Ok(())
    }

    /// Ids of the tickets matching the filter, at most `limit` (bulk work
    /// on "all matching").
    pub async fn ticket_ids_matching(&self, filter: &TicketFilter, limit: i64) -> Result<Vec<i64>> {
        let mut sql = Sql::default();
        sql.push("SELECT t.id").push(QUEUE_FROM);
        filter.push_where(&mut sql, &self.prefix, self.backend);
        sql.push(" ORDER BY t.id LIMIT ").bind(Param::Int(limit));
        let rows = sql.query().fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get::<i64, _>(0)?)).collect()
    }

    /// How many tickets (not merged away) have each status.
    pub async fn status_counts(&self) -> Result<Vec<(Status, i64)>> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM tickets WHERE merged_into_id IS NULL GROUP BY status",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut counts: Vec<(Status, i64)> = Status::ALL.iter().map(|s| (*s, 0)).collect();
        for row in &rows {
            let status: Status = parsed(row, "status")?;
            let n: i64 = col(row, "n")?;
            if let Some(c) = counts.iter_mut().find(|(s, _)| *s == status) {
                c.1 = n;
            }
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(like_pattern("ABC"), "%abc%");
    }

    #[test]
    fn search_words_carry_no_query_syntax() {
        assert_eq!(
            search_words("Printer \"on\" FIRE* OR NEAR(x)"),
            ["printer", "on", "fire", "or", "near", "x"]
        );
        assert_eq!(search_words("Zoë's café"), ["zoë", "s", "café"]);
        assert!(search_words("%_-\"*").is_empty());
        assert_eq!(search_words(&"a ".repeat(100)).len(), 8);
        assert_eq!(search_words(&"x".repeat(500))[0].len(), 40);
    }

    #[test]
    fn sort_keys_parse_with_direction() {
        assert_eq!(SortKey::parse("updated"), Some((SortKey::Updated, true)));
        assert_eq!(SortKey::parse("-subject"), Some((SortKey::Subject, true)));
        assert_eq!(SortKey::parse("subject"), Some((SortKey::Subject, false)));
        assert_eq!(SortKey::parse("+created"), Some((SortKey::Created, false)));
        assert_eq!(SortKey::parse("bogus"), None);
    }
}
