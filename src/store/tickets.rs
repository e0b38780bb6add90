//! Tickets, their messages, tags, participants, and the queue's list query.

use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::users::{Requester, User};
use super::{Backend, Marks, Param, Result, Sql, Store, StoreError, Tx, col, opt, parsed};
use crate::domain::sla::Pause;
use crate::domain::{
    AuthorKind, Channel, MessageKind, Priority, Role, SlaState, Status, TicketRef,
};

/// A ticket with everything the rules and the API need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: i64,
    pub reference: TicketRef,
    pub subject: String,
    pub status: Status,
    pub priority: Priority,
    pub category: String,
    pub channel: Channel,
    pub requester: Requester,
    pub assignee: Option<User>,
    pub mailbox_id: Option<i64>,
    pub due_at: Option<i64>,
    /// Related reference: (kind, id), e.g. ("order", "A-77").
    pub related: Option<(String, String)>,
    /// The earlier ticket this one continues (a reply after the reopen window).
    pub linked_ticket_id: Option<i64>,
    /// Set on a ticket merged into another.
    pub merged_into_id: Option<i64>,
    pub message_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_message_at: i64,
    pub first_response_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub pause: Pause,
    pub sla_state: SlaState,
    /// When the SLA state next changes if nothing happens.
    pub sla_due_at: Option<i64>,
    pub tags: Vec<String>,
}

impl Ticket {
    /// What the status rules need to know of this ticket.
    pub fn rule_state(&self) -> crate::domain::rules::TicketState {
        crate::domain::rules::TicketState {
            status: self.status,
            resolved_at: self.resolved_at,
            closed_at: self.closed_at,
        }
    }
}

/// What a new ticket starts with.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub subject: String,
    pub priority: Priority,
    pub category: String,
    pub channel: Channel,
    pub requester_id: i64,
    pub assignee_id: Option<i64>,
    pub mailbox_id: Option<i64>,
    pub related: Option<(String, String)>,
    pub linked_ticket_id: Option<i64>,
    /// The SLA state at creation and when it next changes.
    pub sla_state: SlaState,
    pub sla_due_at: Option<i64>,
    /// The loop guard's key for the words of the mail that opened it.
    pub content_key: Option<String>,
    pub now: i64,
}

/// A message to append to a thread.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub ticket_id: i64,
    pub kind: MessageKind,
    pub author_kind: AuthorKind,
    pub author_user_id: Option<i64>,
    pub author_requester_id: Option<i64>,
    /// The text shown in the thread (for mail: the new text of a reply).
    pub body_text: String,
    /// The whole original text where it differs from `body_text`.
    pub full_text: Option<String>,
    /// Sanitised HTML, if the message had any.
    pub body_html: Option<String>,
    /// The mail's Message-ID (sent or received).
    pub mail_message_id: Option<String>,
    pub inbound_id: Option<i64>,
    /// For mail: whether its sender was verified, and why (SPEC §5.11).
    pub verification: Option<String>,
    /// For mail: how it was read, when that needs saying (HTML not rendered).
    pub notice: Option<String>,
    pub now: i64,
}

/// Messages a transaction holds back, with the ids it took for them, and
/// the attachment rows that name them (see [`Tx::defer_messages`]).
#[derive(Debug, Default)]
pub(crate) struct HeldMessages {
    /// Ids taken from the sequence, not yet used, the next one last.
    ids: Vec<i64>,
    /// The last id given out (SQLite's next follows it).
    last_id: Option<i64>,
    pub(crate) rows: Vec<(i64, NewMessage)>,
    pub(crate) attachments: Vec<HeldAttachment>,
}

/// An attachment row held back with its message (its bytes are written at once).
#[derive(Debug)]
pub(crate) struct HeldAttachment {
    message_id: i64,
    filename: String,
    content_type: String,
    size: i64,
    content_id: Option<String>,
    inline: bool,
    sha256: String,
}

impl NewMessage {
    /// A system message recording something that happened.
    pub fn system(ticket_id: i64, text: impl Into<String>, now: i64) -> Self {
        NewMessage {
            ticket_id,
            kind: MessageKind::System,
            author_kind: AuthorKind::System,
            author_user_id: None,
            author_requester_id: None,
            body_text: text.into(),
            full_text: None,
            body_html: None,
            mail_message_id: None,
            inbound_id: None,
            verification: None,
            notice: None,
            now,
        }
    }
}

/// A message as stored, with its author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: i64,
    pub ticket_id: i64,
    pub kind: MessageKind,
    pub author_kind: AuthorKind,
    pub author_email: Option<String>,
    pub author_name: Option<String>,
    /// For staff authors: their role.
    pub author_role: Option<Role>,
    pub body_text: String,
    pub full_text: Option<String>,
    pub body_html: Option<String>,
    pub mail_message_id: Option<String>,
    /// For mail: whether its sender was verified, and why (SPEC §5.11).
    pub verification: Option<String>,
    /// For mail: how it was read, when that needs saying.
    pub notice: Option<String>,
    pub created_at: i64,
}

impl StoredMessage {
    /// The sender's verification as `{"state", "reason"}` for pages and the API.
    pub fn verification_json(&self) -> Option<serde_json::Value> {
        let v = self.verification.as_deref()?;
        let (state, reason) = v.split_once(": ").unwrap_or((v, ""));
        Some(serde_json::json!({ "state": state, "reason": reason }))
    }
}

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

const TICKET_COLUMNS: &str = "t.id, t.number, t.subject, t.status, t.priority, t.category, t.channel, \
    t.requester_id, t.assignee_id, t.mailbox_id, t.due_at, t.related_kind, t.related_id, t.linked_ticket_id, \
    t.merged_into_id, t.message_count, t.created_at, t.updated_at, t.last_message_at, t.first_response_at, \
    t.resolved_at, t.closed_at, t.sla_paused_ms, t.sla_paused_since, t.sla_state, t.sla_due_at, \
    r.email AS r_email, r.first_name AS r_first, r.last_name AS r_last, r.undeliverable_at AS r_undeliverable, \
    u.email AS u_email, u.name AS u_name, u.role AS u_role, u.active AS u_active";
const TICKET_FROM: &str = "FROM tickets t JOIN requesters r ON r.id = t.requester_id LEFT JOIN users u ON u.id = t.assignee_id";

fn ticket_from(row: &AnyRow, prefix: &str) -> Result<Ticket> {
    let assignee = match opt::<i64>(row, "assignee_id")? {
        Some(id) => Some(User {
            id,
            email: parsed(row, "u_email")?,
            name: col(row, "u_name")?,
            role: parsed(row, "u_role")?,
            active: col::<i64>(row, "u_active")? != 0,
        }),
        None => None,
    };
    let related = match (
        opt::<String>(row, "related_kind")?,
        opt::<String>(row, "related_id")?,
    ) {
        (Some(k), Some(i)) => Some((k, i)),
        _ => None,
    };
    let sla: String = col(row, "sla_state")?;
    Ok(Ticket {
        id: col(row, "id")?,
        reference: TicketRef::new(prefix, col(row, "number")?),
        subject: col(row, "subject")?,
        status: parsed(row, "status")?,
        priority: parsed(row, "priority")?,
        category: col(row, "category")?,
        channel: parsed(row, "channel")?,
        requester: Requester {
            id: col(row, "requester_id")?,
            email: parsed(row, "r_email")?,
            first_name: col(row, "r_first")?,
            last_name: col(row, "r_last")?,
            undeliverable_at: opt(row, "r_undeliverable")?,
        },
        assignee,
        mailbox_id: opt(row, "mailbox_id")?,
        due_at: opt(row, "due_at")?,
        related,
        linked_ticket_id: opt(row, "linked_ticket_id")?,
        merged_into_id: opt(row, "merged_into_id")?,
        message_count: col(row, "message_count")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
        last_message_at: col(row, "last_message_at")?,
        first_response_at: opt(row, "first_response_at")?,
        resolved_at: opt(row, "resolved_at")?,
        closed_at: opt(row, "closed_at")?,
        pause: Pause {
            total_ms: col(row, "sla_paused_ms")?,
            since: opt(row, "sla_paused_since")?,
        },
        sla_state: SlaState::parse(&sla)
            .ok_or_else(|| StoreError::Corrupt(format!("sla_state `{sla}`")))?,
        sla_due_at: opt(row, "sla_due_at")?,
        tags: Vec::new(),
    })
}

/// A ticket's mutable columns (tags aside) with their values, in the order
/// `save_ticket` compares them.
fn mutable_columns(t: &Ticket) -> [(&'static str, Param); 19] {
    let (kind, rid) = t.related.clone().unzip();
    [
        ("subject", Param::Text(t.subject.clone())),
        ("status", Param::Text(t.status.as_str().into())),
        ("priority", Param::Text(t.priority.as_str().into())),
        ("category", Param::Text(t.category.clone())),
        (
            "assignee_id",
            Param::IntOrNull(t.assignee.as_ref().map(|u| u.id)),
        ),
        ("due_at", Param::IntOrNull(t.due_at)),
        ("related_kind", Param::TextOrNull(kind)),
        ("related_id", Param::TextOrNull(rid)),
        ("linked_ticket_id", Param::IntOrNull(t.linked_ticket_id)),
        ("merged_into_id", Param::IntOrNull(t.merged_into_id)),
        ("updated_at", Param::Int(t.updated_at)),
        ("first_response_at", Param::IntOrNull(t.first_response_at)),
        ("resolved_at", Param::IntOrNull(t.resolved_at)),
        ("closed_at", Param::IntOrNull(t.closed_at)),
        ("sla_paused_ms", Param::Int(t.pause.total_ms)),
        ("sla_paused_since", Param::IntOrNull(t.pause.since)),
        ("sla_state", Param::Text(t.sla_state.as_str().into())),
        ("sla_due_at", Param::IntOrNull(t.sla_due_at)),
        ("requester_id", Param::Int(t.requester.id)),
    ]
}

/// Loads a ticket with its tags in one statement; `lock` takes its row
/// lock for the rest of the transaction on PostgreSQL (SQLite's write
/// transactions are serialised already).
async fn load_ticket(
    conn: &mut AnyConnection,
    backend: Backend,
    prefix: &str,
    by: &str,
    value: i64,
    lock: bool,
) -> Result<Option<Ticket>> {
    // Tags hold no control characters (`normalise_tag`): a newline separates them.
    let (tags, lock) = match backend {
        Backend::Sqlite => (
            "(SELECT group_concat(tag, char(10)) FROM (SELECT tag FROM ticket_tags WHERE ticket_id = t.id ORDER BY tag))",
            "",
        ),
        Backend::Postgres => (
            "(SELECT string_agg(tag, chr(10) ORDER BY tag) FROM ticket_tags WHERE ticket_id = t.id)",
            if lock { " FOR UPDATE OF t" } else { "" },
        ),
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TICKET_COLUMNS}, {tags} AS tag_list {TICKET_FROM} WHERE t.{by} = $1{lock}"
    )))
    .bind(value)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut ticket = ticket_from(&row, prefix)?;
    ticket.tags = opt::<String>(&row, "tag_list")?
        .map(|list| list.split('\n').map(str::to_string).collect())
        .unwrap_or_default();
    Ok(Some(ticket))
}

fn message_from(row: &AnyRow) -> Result<StoredMessage> {
    let role = opt::<String>(row, "u_role")?
        .map(|r| r.parse::<Role>())
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let (email, name) = match (
        opt::<String>(row, "u_email")?,
        opt::<String>(row, "r_email")?,
    ) {
        (Some(e), _) => (Some(e), opt::<String>(row, "u_name")?),
        (None, Some(e)) => {
            let name = format!(
                "{} {}",
                col::<String>(row, "r_first")?,
                col::<String>(row, "r_last")?
            );
            (
                Some(e),
                Some(name.trim().to_string()).filter(|n| !n.is_empty()),
            )
        }
        (None, None) => (None, None),
    };
    Ok(StoredMessage {
        id: col(row, "id")?,
        ticket_id: col(row, "ticket_id")?,
        kind: MessageKind::from_stored(&col::<String>(row, "kind")?),
        author_kind: AuthorKind::from_stored(&col::<String>(row, "author_kind")?),
        author_email: email,
        author_name: name,
        author_role: role,
        body_text: col(row, "body_text")?,
        full_text: opt(row, "full_text")?,
        body_html: opt(row, "body_html")?,
        mail_message_id: opt(row, "mail_message_id")?,
        verification: opt(row, "verification")?,
        notice: opt(row, "notice")?,
        created_at: col(row, "created_at")?,
    })
}

/// Binds a [`NewMessage`]'s columns in the order of `messages`' INSERTs
/// (ticket_id … created_at), on a query or a scalar query alike.
macro_rules! bind_message {
    ($query:expr, $m:expr) => {{
        let m: &NewMessage = $m;
        $query
            .bind(m.ticket_id)
            .bind(m.kind.as_str())
            .bind(m.author_kind.as_str())
            .bind(m.author_user_id)
            .bind(m.author_requester_id)
            .bind(m.body_text.as_str())
            .bind(m.full_text.as_deref())
            .bind(m.body_html.as_deref())
            .bind(m.mail_message_id.as_deref())
            .bind(m.inbound_id)
            .bind(m.verification.as_deref())
            .bind(m.notice.as_deref())
            .bind(m.now)
    }};
}

/// The id of the next held message: PostgreSQL's from the messages'
/// sequence, 64 taken at a time; SQLite's (one writer) the next after the
/// highest AUTOINCREMENT gave, or after the last one given here.
async fn next_message_id(
    conn: &mut AnyConnection,
    backend: Backend,
    held: &mut HeldMessages,
) -> Result<i64> {
    let id = match (backend, held.last_id) {
        (Backend::Sqlite, Some(last)) => last + 1,
        (Backend::Sqlite, None) => {
            sqlx::query_scalar::<_, i64>(
                "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0)",
            )
            .fetch_one(&mut *conn)
            .await?
                + 1
        }
        (Backend::Postgres, _) => {
            if held.ids.is_empty() {
                held.ids = sqlx::query_scalar(
                    "SELECT nextval('messages_id_seq') FROM generate_series(1, 64) ORDER BY 1 DESC",
                )
                .fetch_all(&mut *conn)
                .await?;
            }
            held.ids.pop().ok_or(sqlx::Error::RowNotFound)?
        }
    };
    held.last_id = Some(id);
    Ok(id)
}

/// Writes attachment rows, several to a statement.
async fn insert_attachments(
    conn: &mut AnyConnection,
    backend: Backend,
    rows: &[HeldAttachment],
) -> Result<()> {
    for chunk in super::power_of_two_chunks(rows, 64) {
        let text = format!(
            "INSERT INTO attachments (message_id, filename, content_type, size, content_id, inline, sha256) VALUES {}",
            Marks::new(backend).rows(chunk.len(), 7)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(text));
        for a in chunk {
            q = q
                .bind(a.message_id)
                .bind(a.filename.as_str())
                .bind(a.content_type.as_str())
                .bind(a.size)
                .bind(a.content_id.as_deref())
                .bind(i64::from(a.inline))
                .bind(a.sha256.as_str());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn load_messages(
    conn: &mut AnyConnection,
    ticket_id: i64,
    with_notes: bool,
) -> Result<Vec<StoredMessage>> {
    let notes = if with_notes {
        ""
    } else {
        " AND m.kind <> 'note'"
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT m.id, m.ticket_id, m.kind, m.author_kind, m.body_text, m.full_text, m.body_html, m.mail_message_id, \
         m.verification, m.notice, m.created_at, u.email AS u_email, u.name AS u_name, u.role AS u_role, r.email AS r_email, \
         r.first_name AS r_first, r.last_name AS r_last \
         FROM messages m LEFT JOIN users u ON u.id = m.author_user_id \
         LEFT JOIN requesters r ON r.id = m.author_requester_id \
         WHERE m.ticket_id = $1{notes} ORDER BY m.id"
    )))
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(message_from).collect()
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
    /// The ticket with this reference (`None` if unknown or of another prefix).
    pub async fn ticket_by_ref(&self, reference: &TicketRef) -> Result<Option<Ticket>> {
        if reference.prefix() != &*self.prefix {
            return Ok(None);
        }
        let mut conn = self.pool.acquire().await?;
        load_ticket(
            &mut conn,
            self.backend,
            &self.prefix,
            "number",
            reference.number(),
            false,
        )
        .await
    }

    /// As [`Store::ticket_by_ref`] without reading the tags (one query, for
    /// pages that do not show them); `tags` is empty.
    pub async fn ticket_by_ref_untagged(&self, reference: &TicketRef) -> Result<Option<Ticket>> {
        if reference.prefix() != &*self.prefix {
            return Ok(None);
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TICKET_COLUMNS} {TICKET_FROM} WHERE t.number = $1"
        )))
        .bind(reference.number())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| ticket_from(&r, &self.prefix)).transpose()
    }

    /// The ticket with this row id.
    pub async fn ticket(&self, id: i64) -> Result<Option<Ticket>> {
        let mut conn = self.pool.acquire().await?;
        load_ticket(&mut conn, self.backend, &self.prefix, "id", id, false).await
    }

    /// A ticket's thread, oldest first; notes only when asked for.
    pub async fn messages(&self, ticket_id: i64, with_notes: bool) -> Result<Vec<StoredMessage>> {
        let mut conn = self.pool.acquire().await?;
        load_messages(&mut conn, ticket_id, with_notes).await
    }

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

    /// File names of a message's attachments, in order.
    pub async fn attachment_names(&self, message_id: i64) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar(
                "SELECT filename FROM attachments WHERE message_id = $1 ORDER BY id",
            )
            .bind(message_id)
            .fetch_all(&self.pool)
            .await?,
        )
    }

    /// Ids of resolved tickets resolved at or before `cutoff`, oldest first.
    pub async fn auto_close_due(&self, cutoff: i64, limit: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM tickets WHERE status = 'resolved' AND resolved_at <= $1 ORDER BY resolved_at LIMIT $2",
        )
        .bind(cutoff)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The earliest `resolved_at` among resolved tickets.
    pub async fn earliest_resolved_at(&self) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT MIN(resolved_at) FROM tickets WHERE status = 'resolved'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Ids of tickets whose SLA state is due to change at or before `now`.
    pub async fn sla_due(&self, now: i64, limit: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM tickets WHERE sla_due_at <= $1 ORDER BY sla_due_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The earliest SLA change time of any ticket.
    pub async fn earliest_sla_due_at(&self) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT MIN(sla_due_at) FROM tickets")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Ids of every ticket not closed (for a full SLA recomputation after
    /// the targets changed).
    pub async fn open_ticket_ids(&self) -> Result<Vec<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM tickets WHERE status <> 'closed' ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

impl Tx {
    /// Inserts a ticket under the next reference number, which never
    /// repeats, even after deletes; returns its id and number. The number
    /// is drawn inside the INSERT: from a sequence on PostgreSQL (no lock
    /// held until commit), from the `ticket_ref` counter on SQLite (read
    /// under the write lock the INSERT takes; a trigger, migration 0014,
    /// moves the counter on). One round trip, and the same statement text
    /// for every ticket, so it is prepared once per connection.
    pub async fn insert_ticket(&mut self, t: &NewTicket) -> Result<(i64, i64)> {
        let number_sql = match self.backend {
            Backend::Postgres => "nextval('ticket_ref_seq')",
            Backend::Sqlite => "(SELECT value + 1 FROM counters WHERE name = 'ticket_ref')",
        };
        let (kind, id) = t.related.clone().unzip();
        let or_fail = self.backend.or_fail();
        let insert = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT {or_fail}INTO tickets (number, subject, status, priority, category, channel, requester_id, assignee_id, \
             mailbox_id, related_kind, related_id, linked_ticket_id, created_at, updated_at, last_message_at, \
             sla_state, sla_due_at, content_key) \
             VALUES ({number_sql}, $1, 'open', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $11, $12, $13, $14) RETURNING id, number"
        )))
        .bind(t.subject.as_str())
        .bind(t.priority.as_str())
        .bind(t.category.as_str())
        .bind(t.channel.as_str())
        .bind(t.requester_id)
        .bind(t.assignee_id)
        .bind(t.mailbox_id)
        .bind(kind)
        .bind(id)
        .bind(t.linked_ticket_id)
        .bind(t.now)
        .bind(t.sla_state.as_str())
        .bind(t.sla_due_at)
        .bind(t.content_key.as_deref());
        let inserted: (i64, i64) = insert.fetch_one(&mut *self.conn).await?;
        self.participants.insert((inserted.0, t.requester_id));
        self.search_behind = self.backend == Backend::Sqlite;
        Ok(inserted)
    }

    /// The ticket with this row id, inside the transaction.
    pub async fn ticket(&mut self, id: i64) -> Result<Option<Ticket>> {
        let prefix = self.prefix.clone();
        load_ticket(&mut self.conn, self.backend, &prefix, "id", id, false).await
    }

    /// Locks a ticket's row for the rest of the transaction (PostgreSQL) and
    /// loads it. SQLite transactions are already serialised.
    pub async fn ticket_for_update(&mut self, id: i64) -> Result<Option<Ticket>> {
        let prefix = self.prefix.clone();
        load_ticket(&mut self.conn, self.backend, &prefix, "id", id, true).await
    }

    /// Writes back the mutable fields of a ticket (tags excepted) that
    /// differ from `before`, the ticket as it was loaded: one statement, or
    /// none if nothing changed. Writing only what changed spares the
    /// indexes of the columns that did not (a reply's save went 92 → 27 µs
    /// of SQLite's time with 15 indexes on `tickets`).
    pub async fn save_ticket(&mut self, before: &Ticket, t: &Ticket) -> Result<()> {
        let old = mutable_columns(before);
        let mut sql = Sql::default();
        sql.push("UPDATE tickets SET ");
        let mut changed = 0;
        for ((name, new), (_, old)) in mutable_columns(t).into_iter().zip(old) {
            if new != old {
                if changed > 0 {
                    sql.push(", ");
                }
                sql.push(name).push(" = ").bind(new);
                changed += 1;
            }
        }
        if changed == 0 {
            return Ok(());
        }
        sql.push(" WHERE id = ").bind(Param::Int(t.id));
        sql.query().execute(&mut *self.conn).await?;
        Ok(())
    }

    /// Appends a message; the database's triggers (migrations 0009, 0010)
    /// count it on its ticket, stamp the ticket's update and record its
    /// Message-ID. On SQLite its text reaches the full-text search at the
    /// commit. Held back, when the transaction holds messages
    /// ([`Tx::defer_messages`]), with its id already taken.
    pub async fn insert_message(&mut self, m: NewMessage) -> Result<i64> {
        self.search_behind |= self.backend == Backend::Sqlite && m.kind != MessageKind::System;
        if let Some(held) = &mut self.messages {
            let id = next_message_id(&mut self.conn, self.backend, held).await?;
            held.rows.push((id, m));
            Ok(id)
        } else {
            self.insert_message_now(&m).await
        }
    }

    /// Writes one message at once, returning its id.
    async fn insert_message_now(&mut self, m: &NewMessage) -> Result<i64> {
        let or_fail = self.backend.or_fail();
        let query = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "INSERT {or_fail}INTO messages (ticket_id, kind, author_kind, author_user_id, author_requester_id, body_text, \
             full_text, body_html, mail_message_id, inbound_id, verification, notice, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        )));
        Ok(bind_message!(query, m).fetch_one(&mut *self.conn).await?)
    }

    /// From here on, holds the messages this transaction appends and writes
    /// them in multi-row statements when something needs them: at the
    /// commit, at a savepoint, or before a statement that reads messages or
    /// names one. On PostgreSQL each message's INSERT was a round trip and
    /// ran the statement triggers of 0010 (the ticket's counters, the
    /// Message-ID, the search vector) for one row; held, a batch of mails
    /// runs them once per statement, with ids taken from the messages'
    /// sequence beforehand, 64 at a time. On SQLite it spares a statement
    /// (a hand-off to its worker thread) per message; the ids follow the
    /// highest AUTOINCREMENT gave, which no other writer can move meanwhile.
    pub fn defer_messages(&mut self) {
        self.messages.get_or_insert_with(HeldMessages::default);
    }

    /// Writes the messages held back so far (see [`Tx::defer_messages`]).
    /// An error here is the error of one of their INSERTs.
    pub async fn flush_messages(&mut self) -> Result<()> {
        let Some(held) = &mut self.messages else {
            return Ok(());
        };
        let rows = std::mem::take(&mut held.rows);
        let or_fail = self.backend.or_fail();
        for chunk in super::power_of_two_chunks(&rows, 256) {
            let text = format!(
                "INSERT {or_fail}INTO messages (id, ticket_id, kind, author_kind, author_user_id, author_requester_id, \
                 body_text, full_text, body_html, mail_message_id, inbound_id, verification, notice, created_at) VALUES {}",
                Marks::new(self.backend).rows(chunk.len(), 14)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(text));
            for (id, m) in chunk {
                q = bind_message!(q.bind(*id), m);
            }
            q.execute(&mut *self.conn).await?;
        }
        let attachments = std::mem::take(&mut held.attachments);
        insert_attachments(&mut self.conn, self.backend, &attachments).await
    }

    /// The ticket a Message-ID belongs to, and whether postdesk sent it.
    pub async fn ticket_of_mail_id(&mut self, message_id: &str) -> Result<Option<(i64, bool)>> {
        self.flush_messages().await?;
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT ticket_id, direction FROM mail_ids WHERE message_id = $1")
                .bind(message_id)
                .fetch_optional(&mut *self.conn)
                .await?;
        Ok(row.map(|(id, direction)| (id, direction == "out")))
    }

    /// The tickets of several Message-IDs at once (one round trip).
    pub async fn tickets_of_mail_ids(&mut self, ids: &[&str]) -> Result<Vec<(String, i64)>> {
        Ok(self
            .mail_ids_known(ids)
            .await?
            .into_iter()
            .map(|(id, ticket, _)| (id, ticket))
            .collect())
    }

    /// The known ones of several Message-IDs (the first 100): each with its
    /// ticket and whether postdesk sent it. One round trip.
    pub async fn mail_ids_known(&mut self, ids: &[&str]) -> Result<Vec<(String, i64, bool)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Held messages record their Message-IDs (a trigger) when written.
        self.flush_messages().await?;
        let mut sql = Sql::for_backend(self.backend);
        sql.push("SELECT message_id, ticket_id, direction FROM mail_ids WHERE message_id IN ")
            .bind_list(
                ids.iter()
                    .take(100)
                    .map(|id| Param::Text((*id).to_string())),
            );
        let rows = sql.query().fetch_all(&mut *self.conn).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>(0)?,
                    r.try_get::<i64, _>(1)?,
                    r.try_get::<String, _>(2)? == "out",
                ))
            })
            .collect()
    }

    /// Remembers Message-IDs a mail referred to as belonging to its ticket
    /// (one statement), so that later replies naming only an ancestor that
    /// never reached postdesk still find the conversation. Known ids keep
    /// their ticket.
    pub async fn record_referenced_ids(
        &mut self,
        ids: &[&str],
        ticket_id: i64,
        now: i64,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut sql = Sql::for_backend(self.backend);
        sql.push("INSERT ")
            .push(self.backend.or_fail())
            .push("INTO mail_ids (message_id, ticket_id, direction, created_at) VALUES ");
        for (i, id) in ids.iter().take(50).enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind(Param::Text((*id).to_string()))
                .push(", ")
                .bind(Param::Int(ticket_id))
                .push(", 'ref', ")
                .bind(Param::Int(now))
                .push(")");
        }
        sql.push(" ON CONFLICT (message_id) DO NOTHING");
        sql.query().execute(&mut *self.conn).await?;
        Ok(())
    }

    /// Whether a message with this Message-ID exists.
    pub async fn mail_id_has_message(&mut self, message_id: &str) -> Result<bool> {
        self.flush_messages().await?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE mail_message_id = $1")
            .bind(message_id)
            .fetch_one(&mut *self.conn)
            .await?;
        Ok(n > 0)
    }

    /// The texts of a ticket's latest replies (not notes), newest first:
    /// what a reply to it may quote.
    pub async fn recent_reply_texts(&mut self, ticket_id: i64, limit: i64) -> Result<Vec<String>> {
        self.flush_messages().await?;
        Ok(sqlx::query_scalar(
            "SELECT body_text FROM messages WHERE ticket_id = $1 AND kind = 'reply' \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(ticket_id)
        .bind(limit)
        .fetch_all(&mut *self.conn)
        .await?)
    }

    /// The first message of a ticket.
    pub async fn first_message_id(&mut self, ticket_id: i64) -> Result<i64> {
        self.flush_messages().await?;
        Ok(
            sqlx::query_scalar("SELECT MIN(id) FROM messages WHERE ticket_id = $1")
                .bind(ticket_id)
                .fetch_one(&mut *self.conn)
                .await?,
        )
    }

    /// The ticket with this reference number, if any.
    pub async fn ticket_id_by_number(&mut self, number: i64) -> Result<Option<i64>> {
        let found: Option<(i64, Option<i64>)> =
            sqlx::query_as("SELECT id, merged_into_id FROM tickets WHERE number = $1")
                .bind(number)
                .fetch_optional(&mut *self.conn)
                .await?;
        let Some((mut id, mut merged)) = found else {
            return Ok(None);
        };
        // A merged ticket's mail goes where it was merged (a chain of
        // merges is followed, a few steps at most).
        for _ in 0..8 {
            let Some(into) = merged else { break };
            id = into;
            merged = sqlx::query_scalar("SELECT merged_into_id FROM tickets WHERE id = $1")
                .bind(into)
                .fetch_optional(&mut *self.conn)
                .await?
                .flatten();
        }
        Ok(Some(id))
    }

    /// Stores attachment bytes once per content (SHA-256) and links them to
    /// a message (held back with it when the transaction holds messages).
    pub async fn insert_attachment(
        &mut self,
        message_id: i64,
        a: &crate::mail::Attachment,
    ) -> Result<()> {
        let digest = a.sha256.as_str();
        sqlx::query("INSERT INTO blobs (sha256, size, data) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING")
            .bind(digest)
            .bind(a.data.len() as i64)
            .bind(a.data.as_slice())
            .execute(&mut *self.conn)
            .await?;
        let row = HeldAttachment {
            message_id,
            filename: a.filename.clone(),
            content_type: a.content_type.clone(),
            size: a.data.len() as i64,
            content_id: a.content_id.clone(),
            inline: a.inline,
            sha256: digest.to_string(),
        };
        match &mut self.messages {
            Some(held) => held.attachments.push(row),
            None => insert_attachments(&mut self.conn, self.backend, &[row]).await?,
        }
        Ok(())
    }

    /// Remembers a Message-ID as belonging to a ticket (first one wins).
    pub async fn record_mail_id(
        &mut self,
        message_id: &str,
        ticket_id: i64,
        direction: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO mail_ids (message_id, ticket_id, direction, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(message_id)
        .bind(ticket_id)
        .bind(direction)
        .bind(now)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    /// Replaces a ticket's tags.
    pub async fn set_tags(&mut self, ticket_id: i64, tags: &[String]) -> Result<()> {
        sqlx::query("DELETE FROM ticket_tags WHERE ticket_id = $1")
            .bind(ticket_id)
            .execute(&mut *self.conn)
            .await?;
        for tag in tags {
            sqlx::query(
                "INSERT INTO ticket_tags (ticket_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(ticket_id)
            .bind(tag.as_str())
            .execute(&mut *self.conn)
            .await?;
        }
        Ok(())
    }

    /// Adds a CC participant (no-op if already there).
    pub async fn add_participant(&mut self, ticket_id: i64, requester_id: i64) -> Result<()> {
        sqlx::query("INSERT INTO participants (ticket_id, requester_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(ticket_id)
            .bind(requester_id)
            .execute(&mut *self.conn)
            .await?;
        self.participants.insert((ticket_id, requester_id));
        Ok(())
    }

    /// Reads who takes part in these tickets (their requesters and CC
    /// participants), 100 tickets a statement, so that
    /// [`Tx::is_participant`] answers for them without a round trip.
    pub async fn load_participants(&mut self, ticket_ids: &[i64]) -> Result<()> {
        for chunk in ticket_ids.chunks(100) {
            let mut sql = Sql::for_backend(self.backend);
            sql.push("SELECT id, requester_id FROM tickets WHERE id IN ")
                .bind_list(chunk.iter().map(|id| Param::Int(*id)))
                .push(" UNION ALL SELECT ticket_id, requester_id FROM participants WHERE ticket_id IN ")
                .bind_list(chunk.iter().map(|id| Param::Int(*id)));
            for row in sql.query().fetch_all(&mut *self.conn).await? {
                self.participants
                    .insert((row.try_get::<i64, _>(0)?, row.try_get::<i64, _>(1)?));
            }
        }
        Ok(())
    }

    /// Whether a requester is the requester or a CC participant of a ticket.
    pub async fn is_participant(&mut self, ticket_id: i64, requester_id: i64) -> Result<bool> {
        if self.participants.contains(&(ticket_id, requester_id)) {
            return Ok(true);
        }
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tickets t WHERE t.id = $1 AND (t.requester_id = $2 OR EXISTS \
             (SELECT 1 FROM participants p WHERE p.ticket_id = t.id AND p.requester_id = $2))",
        )
        .bind(ticket_id)
        .bind(requester_id)
        .fetch_one(&mut *self.conn)
        .await?;
        if n > 0 {
            self.participants.insert((ticket_id, requester_id));
        }
        Ok(n > 0)
    }

    /// Moves the thread, Message-IDs and participants of `from` onto `into`.
    pub async fn move_thread(&mut self, from: i64, into: i64, from_requester: i64) -> Result<()> {
        self.flush_messages().await?;
        for sql in [
            "UPDATE messages SET ticket_id = $2 WHERE ticket_id = $1",
            "UPDATE mail_ids SET ticket_id = $2 WHERE ticket_id = $1",
            "INSERT INTO participants (ticket_id, requester_id) SELECT $2, requester_id FROM participants \
             WHERE ticket_id = $1 ON CONFLICT DO NOTHING",
            "INSERT INTO ticket_tags (ticket_id, tag) SELECT $2, tag FROM ticket_tags WHERE ticket_id = $1 \
             ON CONFLICT DO NOTHING",
            "UPDATE tickets SET message_count = (SELECT COUNT(*) FROM messages WHERE ticket_id = tickets.id AND kind <> 'system') \
             WHERE id IN ($1, $2)",
        ] {
            sqlx::query(sql)
                .bind(from)
                .bind(into)
                .execute(&mut *self.conn)
                .await?;
        }
        let target_requester: i64 =
            sqlx::query_scalar("SELECT requester_id FROM tickets WHERE id = $1")
                .bind(into)
                .fetch_one(&mut *self.conn)
                .await?;
        if target_requester != from_requester {
            self.add_participant(into, from_requester).await?;
        }
        Ok(())
    }

    /// Deletes a ticket and everything hanging off it.
    pub async fn delete_ticket(&mut self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM tickets WHERE id = $1")
            .bind(id)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    /// Queues a notification (delivered by the outbox worker).
    pub async fn enqueue(&mut self, n: &super::outbox::Notification) -> Result<()> {
        self.queued = true;
        match &mut self.deferred {
            Some(deferred) => {
                deferred.notifications.push(n.clone());
                Ok(())
            }
            None => {
                super::outbox::insert_all(&mut self.conn, self.backend, std::slice::from_ref(n))
                    .await
            }
        }
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
