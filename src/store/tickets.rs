//! Tickets: their rows, tags and participants, and moving or deleting
//! them. Their messages and attachments are in `messages.rs`, the mail ids
//! that thread onto them in `mail_ids.rs`, the queue's list query in
//! `queue.rs`.

mod mail_ids;
mod messages;
mod queue;

pub(crate) use messages::HeldMessages;
pub use messages::{NewMessage, StoredMessage};
pub use queue::{AssigneeFilter, SortKey, TicketFilter, TicketSummary};

use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::events::LiveEvent;
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

const TICKET_COLUMNS: &str = "t.id, t.number, t.subject, t.status, t.priority, t.category, t.channel, \
    t.requester_id, t.assignee_id, t.mailbox_id, t.due_at, t.related_kind, t.related_id, t.linked_ticket_id, \
    t.merged_into_id, t.message_count, t.created_at, t.updated_at, t.last_message_at, t.first_response_at, \
    t.resolved_at, t.closed_at, t.sla_paused_ms, t.sla_paused_since, t.sla_first_response_paused_ms, \
    t.sla_state, t.sla_due_at, \
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
            at_first_response: opt(row, "sla_first_response_paused_ms")?,
        },
        sla_state: SlaState::parse(&sla)
            .ok_or_else(|| StoreError::Corrupt(format!("sla_state `{sla}`")))?,
        sla_due_at: opt(row, "sla_due_at")?,
        tags: Vec::new(),
    })
}

/// A ticket's mutable columns (tags aside) with their values, in the order
/// `save_ticket` compares them.
fn mutable_columns(t: &Ticket) -> [(&'static str, Param); 20] {
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
        (
            "sla_first_response_paused_ms",
            Param::IntOrNull(t.pause.at_first_response),
        ),
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
            if lock { " FOR NO KEY UPDATE OF t" } else { "" },
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

    /// A ticket's reference by its row id (the live feed names tickets).
    pub async fn ticket_reference(&self, id: i64) -> Result<Option<TicketRef>> {
        let number: Option<i64> = sqlx::query_scalar("SELECT number FROM tickets WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(number.map(|n| TicketRef::new(&self.prefix, n)))
    }

    /// The ticket with this row id.
    pub async fn ticket(&self, id: i64) -> Result<Option<Ticket>> {
        let mut conn = self.pool.acquire().await?;
        load_ticket(&mut conn, self.backend, &self.prefix, "id", id, false).await
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
        self.changed(LiveEvent::Ticket {
            ticket: inserted.0,
            created: true,
        });
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
        self.changed(LiveEvent::Ticket {
            ticket: t.id,
            created: false,
        });
        Ok(())
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
        for ticket in [from, into] {
            self.changed(LiveEvent::Ticket {
                ticket,
                created: false,
            });
        }
        Ok(())
    }

    /// Locks tickets `ids` (sorted) for the rest of the transaction, in id
    /// order (PostgreSQL; SQLite has one writer). `NO KEY UPDATE`, as every
    /// ticket lock here: a ticket's id never changes, and rows that only
    /// refer to a locked ticket (a message, a participant) can still be
    /// written by others.
    pub async fn lock_tickets(&mut self, ids: &[i64]) -> Result<()> {
        if self.backend != Backend::Postgres || ids.is_empty() {
            return Ok(());
        }
        for chunk in ids.chunks(500) {
            // Ids read from the database, written as literals.
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT id FROM tickets WHERE id IN ({list}) ORDER BY id FOR NO KEY UPDATE"
            )))
            .persistent(false)
            .execute(&mut *self.conn)
            .await?;
        }
        Ok(())
    }

    /// Deletes a ticket and everything hanging off it.
    pub async fn delete_ticket(&mut self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM tickets WHERE id = $1")
            .bind(id)
            .execute(&mut *self.conn)
            .await?;
        self.changed(LiveEvent::Ticket {
            ticket: id,
            created: false,
        });
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
