//! The outbox: notifications written in the same transaction as the change
//! that caused them, delivered later by the outbox worker.

use sqlx::{AnyConnection, Row};

use super::{Backend, Marks, NewMessage, Result, Store, Tx, opt};

pub use crate::domain::notify::Notice;

/// A queued notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub ticket_id: i64,
    pub notice: Notice,
    pub recipient: String,
    /// The message the notice is about, if any (its text goes into the mail).
    pub message_id: Option<i64>,
    pub now: i64,
}

/// Writes notifications, a power of two of them (at most 64) a statement,
/// so that a handful of statement texts serve every count and stay prepared.
pub(super) async fn insert_all(
    conn: &mut AnyConnection,
    backend: Backend,
    all: &[Notification],
) -> Result<()> {
    let or_fail = backend.or_fail();
    for chunk in super::power_of_two_chunks(all, 64) {
        let text = format!(
            "INSERT {or_fail}INTO outbox (ticket_id, notice, recipient, payload, next_attempt_at, created_at) \
             VALUES {}",
            Marks::new(backend).rows(chunk.len(), 6)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(text));
        for n in chunk {
            let payload = serde_json::json!({ "message_id": n.message_id }).to_string();
            q = q
                .bind(n.ticket_id)
                .bind(n.notice.as_str())
                .bind(n.recipient.clone())
                .bind(payload)
                .bind(n.now)
                .bind(n.now);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The most mails with the same words the loop guard counts (see
/// [`Store::automated_sent_on`]).
pub const ALIKE_COUNTED: i64 = 1_000;

/// One row, as `outbox list` and tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub ticket_id: Option<i64>,
    pub notice: String,
    pub recipient: String,
    /// `queued`, `sent`, `failed` (permanent or out of attempts), `held`
    /// (loop guard) or `suppressed` (undeliverable, switched off).
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    /// The Message-ID it was sent with.
    pub mail_message_id: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

const ROW_COLS: &str = "id, ticket_id, notice, recipient, state, attempts, next_attempt_at, \
                        last_error, mail_message_id, created_at, sent_at";

fn row_from(r: &sqlx::any::AnyRow) -> Result<OutboxRow> {
    Ok(OutboxRow {
        id: r.try_get("id")?,
        ticket_id: opt(r, "ticket_id")?,
        notice: r.try_get("notice")?,
        recipient: r.try_get("recipient")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: opt(r, "last_error")?,
        mail_message_id: opt(r, "mail_message_id")?,
        created_at: r.try_get("created_at")?,
        sent_at: opt(r, "sent_at")?,
    })
}

/// A notification claimed for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: i64,
    pub ticket_id: Option<i64>,
    /// `None` for a name this version does not know (kept, failed later).
    pub notice: Option<Notice>,
    pub recipient: String,
    /// The message the notice is about.
    pub message_id: Option<i64>,
    /// Delivery attempts before this one.
    pub attempts: i64,
    /// When it was queued.
    pub created_at: i64,
}

/// How one claimed notification ended this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    Sent {
        id: i64,
        ticket_id: Option<i64>,
        mail_message_id: String,
    },
    /// A transient failure: try again at `at`.
    Retry { id: i64, at: i64, error: String },
    /// A permanent failure, or out of attempts.
    Failed { id: i64, error: String },
    /// Held back by the loop guard: recorded on the ticket.
    Held {
        id: i64,
        ticket_id: Option<i64>,
        what: String,
        reason: String,
    },
    /// Not sent on purpose (undeliverable, switched off): no note.
    Suppressed { id: i64, reason: String },
}

/// What the worker needs to know of a recipient address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientFacts {
    /// The requester row of this address, if any.
    pub requester_id: Option<i64>,
    /// Whether the address is a staff account's.
    pub staff: bool,
    /// The staff account's id, when it is one.
    pub user_id: Option<i64>,
    pub name: String,
    pub undeliverable: bool,
    /// Notice names switched off (`{"status_changed": false}` in the prefs).
    pub switched_off: Vec<String>,
}

fn switched_off(prefs: &str) -> Vec<String> {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(prefs)
        .map(|m| {
            m.into_iter()
                .filter(|(_, v)| v == &serde_json::Value::Bool(false))
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default()
}

/// Outbox states `outbox list` accepts.
pub const STATES: [&str; 5] = ["queued", "sent", "failed", "held", "suppressed"];

impl Store {
    /// Outbox rows for a ticket, oldest first.
    pub async fn outbox_for_ticket(&self, ticket_id: i64) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ROW_COLS} FROM outbox WHERE ticket_id = $1 ORDER BY id"
        )))
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_from).collect()
    }

    /// The newest rows, optionally in one state, newest first.
    pub async fn outbox_list(&self, state: Option<&str>, limit: i64) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ROW_COLS} FROM outbox WHERE ($1 = '' OR state = $1) ORDER BY id DESC LIMIT $2"
        )))
        .bind(state.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_from).collect()
    }

    /// Rows per state, for `status` and `/readyz`.
    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT state, COUNT(*) FROM outbox GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Requeues failed or held rows (one by id, or every failed one) for
    /// delivery now; returns how many.
    pub async fn outbox_retry(&self, id: Option<i64>, now: i64) -> Result<u64> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE outbox SET state = 'queued', next_attempt_at = $1, attempts = 0, \
             claimed_by = NULL, claim_until = NULL \
             WHERE (($2 = 0 AND state = 'failed') OR (id = $2 AND state IN ('failed', 'held', 'suppressed')))",
        )
        .bind(now)
        .bind(id.unwrap_or(0))
        .execute(&mut *tx.conn)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done)
    }

    /// Claims up to `limit` due notifications for `holder` until `now + ttl`.
    /// A claim that lapses (its daemon died) is claimed again.
    pub async fn claim_outbox(
        &self,
        holder: &str,
        now: i64,
        ttl_ms: i64,
        limit: i64,
    ) -> Result<Vec<Claimed>> {
        let lock = self.skip_locked();
        let sql = format!(
            "UPDATE outbox SET claimed_by = $1, claim_until = $2 WHERE id IN \
             (SELECT id FROM outbox WHERE state = 'queued' AND next_attempt_at <= $3 \
              AND (claim_until IS NULL OR claim_until < $3) ORDER BY next_attempt_at, id LIMIT $4{lock}) \
             RETURNING id, ticket_id, notice, recipient, payload, attempts, created_at"
        );
        let mut tx = self.begin().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(holder)
            .bind(now.saturating_add(ttl_ms))
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx.conn)
            .await?;
        tx.commit().await?;
        let mut out = rows
            .iter()
            .map(|r| {
                let payload: String = r.try_get("payload")?;
                let message_id = serde_json::from_str::<serde_json::Value>(&payload)
                    .ok()
                    .and_then(|v| v["message_id"].as_i64());
                let notice: String = r.try_get("notice")?;
                Ok(Claimed {
                    id: r.try_get("id")?,
                    ticket_id: opt(r, "ticket_id")?,
                    notice: Notice::parse(&notice),
                    recipient: r.try_get("recipient")?,
                    message_id,
                    attempts: r.try_get("attempts")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|c| c.id);
        Ok(out)
    }

    /// When the next queued notification is due, if any.
    pub async fn next_outbox_due(&self) -> Result<Option<i64>> {
        let (at,): (Option<i64>,) =
            sqlx::query_as("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'queued'")
                .fetch_one(&self.pool)
                .await?;
        Ok(at)
    }

    /// What the worker needs to know of an address: requester or staff,
    /// name, bounce state, switched-off notices.
    pub async fn recipient_facts(&self, email: &str) -> Result<RecipientFacts> {
        let mut facts = RecipientFacts::default();
        if let Some(r) = sqlx::query(
            "SELECT id, first_name, last_name, notify_prefs, undeliverable_at FROM requesters WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?
        {
            let first: String = r.try_get("first_name")?;
            let last: String = r.try_get("last_name")?;
            facts.requester_id = Some(r.try_get("id")?);
            facts.name = format!("{first} {last}").trim().to_string();
            facts.undeliverable = opt::<i64>(&r, "undeliverable_at")?.is_some();
            facts.switched_off = switched_off(&r.try_get::<String, _>("notify_prefs")?);
        }
        if let Some(u) =
            sqlx::query("SELECT id, name, notify_prefs FROM users WHERE email = $1 AND active = 1")
                .bind(email)
                .fetch_optional(&self.pool)
                .await?
        {
            facts.staff = true;
            facts.user_id = Some(u.try_get("id")?);
            let name: String = u.try_get("name")?;
            if !name.is_empty() {
                facts.name = name;
            }
            facts
                .switched_off
                .extend(switched_off(&u.try_get::<String, _>("notify_prefs")?));
        }
        Ok(facts)
    }

    /// Automated mail sent to an address since `since` (the loop guard).
    pub async fn automated_sent_to(&self, recipient: &str, since: i64) -> Result<u32> {
        self.automated_sent("recipient = $1", recipient.to_string(), since)
            .await
    }

    /// Automated mail sent since `since` (the loop guard) about a ticket,
    /// and about every ticket opened by a mail with the same words as the
    /// one that opened it (its content key; 0 without one), the latter
    /// counted up to [`ALIKE_COUNTED`]: under a flood of identical mails
    /// (thousands of tickets with one key) each check stops there instead
    /// of counting them all; the guard's limits are far below it.
    pub async fn automated_sent_on(&self, ticket_id: i64, since: i64) -> Result<(u32, u32)> {
        let (on, alike): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM outbox WHERE ticket_id = $1 AND state = 'sent' \
             AND sent_at >= $2 AND notice <> 'agent_reply'), \
             (SELECT COUNT(*) FROM (SELECT 1 FROM outbox o JOIN tickets t ON t.id = o.ticket_id \
             WHERE t.content_key = (SELECT content_key FROM tickets WHERE id = $1) \
             AND o.state = 'sent' AND o.sent_at >= $2 AND o.notice <> 'agent_reply' LIMIT $3) AS alike)",
        )
        .bind(ticket_id)
        .bind(since)
        .bind(ALIKE_COUNTED)
        .fetch_one(&self.pool)
        .await?;
        let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
        Ok((count(on), count(alike)))
    }

    async fn automated_sent<T>(&self, which: &'static str, key: T, since: i64) -> Result<u32>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send,
    {
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM outbox WHERE {which} AND state = 'sent' AND sent_at >= $2 \
             AND notice <> 'agent_reply'"
        )))
        .bind(key)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Automated mail sent since `since` over the conversation of ticket
    /// `ticket_id`: its root (following `linked_ticket_id` up) and every
    /// ticket linked below it.
    pub async fn automated_sent_in_conversation(&self, ticket_id: i64, since: i64) -> Result<u32> {
        let mut root = ticket_id;
        for _ in 0..50 {
            let up: Option<Option<i64>> =
                sqlx::query_scalar("SELECT linked_ticket_id FROM tickets WHERE id = $1")
                    .bind(root)
                    .fetch_optional(&self.pool)
                    .await?;
            match up.flatten() {
                Some(parent) if parent != root => root = parent,
                _ => break,
            }
        }
        let (n,): (i64,) = sqlx::query_as(
            "WITH RECURSIVE chain(id) AS (SELECT CAST($1 AS BIGINT) UNION \
             SELECT t.id FROM tickets t JOIN chain c ON t.linked_ticket_id = c.id) \
             SELECT COUNT(*) FROM outbox WHERE ticket_id IN (SELECT id FROM chain) \
             AND state = 'sent' AND sent_at >= $2 AND notice <> 'agent_reply'",
        )
        .bind(root)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// The Message-IDs of a ticket's conversation (received and sent), oldest
    /// first, at most `limit` of the newest; each sent one with the address
    /// it went to (`None` for received mail: everyone on the thread has it).
    pub async fn thread_mail_ids(
        &self,
        ticket_id: i64,
        limit: i64,
    ) -> Result<Vec<(String, Option<String>)>> {
        let mut ids: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT m.message_id, m.direction, o.recipient FROM mail_ids m \
             LEFT JOIN outbox o ON o.ticket_id = m.ticket_id AND o.mail_message_id = m.message_id \
             WHERE m.ticket_id = $1 AND m.direction IN ('in', 'out') \
             ORDER BY m.created_at DESC LIMIT $2",
        )
        .bind(ticket_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        ids.reverse();
        Ok(ids
            .into_iter()
            .map(|(id, direction, to)| {
                let to = (direction == "out").then(|| to.unwrap_or_default());
                (id, to)
            })
            .collect())
    }

    /// Records how a round of deliveries ended, in one transaction; only
    /// rows still claimed by `holder` change.
    pub async fn finish_outbox(&self, holder: &str, done: &[Finished], now: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        for f in done {
            match f {
                Finished::Sent {
                    id,
                    ticket_id,
                    mail_message_id,
                } => {
                    sqlx::query(
                        "UPDATE outbox SET state = 'sent', sent_at = $1, mail_message_id = $2, \
                         attempts = attempts + 1, last_error = NULL, claimed_by = NULL, claim_until = NULL \
                         WHERE id = $3",
                    )
                    .bind(now)
                    .bind(mail_message_id.as_str())
                    .bind(*id)
                    .execute(&mut *tx.conn)
                    .await?;
                    if let Some(t) = ticket_id {
                        tx.record_mail_id(mail_message_id, *t, "out", now).await?;
                    }
                }
                Finished::Retry { id, at, error } => {
                    sqlx::query(
                        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2, \
                         claimed_by = NULL, claim_until = NULL WHERE id = $3 AND claimed_by = $4 AND state = 'queued'",
                    )
                    .bind(*at)
                    .bind(error.as_str())
                    .bind(*id)
                    .bind(holder)
                    .execute(&mut *tx.conn)
                    .await?;
                }
                Finished::Failed { id, error } => {
                    end_row(&mut tx, holder, *id, "failed", error).await?;
                }
                Finished::Suppressed { id, reason } => {
                    end_row(&mut tx, holder, *id, "suppressed", reason).await?;
                }
                Finished::Held {
                    id,
                    ticket_id,
                    what,
                    reason,
                } => {
                    if end_row(&mut tx, holder, *id, "held", reason).await?
                        && let Some(t) = ticket_id
                    {
                        tx.insert_message(NewMessage::system(
                            *t,
                            format!("Held back {what}: {reason}."),
                            now,
                        ))
                        .await?;
                    }
                }
            }
        }
        tx.commit().await
    }
}

/// Ends a claimed row in `state` with `why`; false if it was not ours.
async fn end_row(
    tx: &mut super::Tx,
    holder: &str,
    id: i64,
    state: &str,
    why: &str,
) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE outbox SET state = $1, last_error = $2, attempts = attempts + 1, \
         claimed_by = NULL, claim_until = NULL WHERE id = $3 AND claimed_by = $4 AND state = 'queued'",
    )
    .bind(state)
    .bind(why)
    .bind(id)
    .bind(holder)
    .execute(&mut *tx.conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

impl Tx {
    /// Withdraws the notifications about ticket `ticket_id` not yet sent
    /// nor being sent (those held back for this transaction's commit too):
    /// they end `suppressed` with `reason`. Returns how many.
    pub async fn withdraw_notifications(
        &mut self,
        ticket_id: i64,
        reason: &str,
        now: i64,
    ) -> Result<u64> {
        let mut withdrawn = 0;
        if let Some(deferred) = &mut self.deferred {
            let before = deferred.notifications.len();
            // Those before the savepoint keep their count in front of it.
            let saved = deferred.notifications[..deferred.before_savepoint.min(before)]
                .iter()
                .filter(|n| n.ticket_id != ticket_id)
                .count();
            deferred.notifications.retain(|n| n.ticket_id != ticket_id);
            deferred.before_savepoint = saved;
            withdrawn += (before - deferred.notifications.len()) as u64;
        }
        withdrawn += sqlx::query(
            "UPDATE outbox SET state = 'suppressed', last_error = $2 WHERE ticket_id = $1 \
             AND state = 'queued' AND (claim_until IS NULL OR claim_until < $3)",
        )
        .bind(ticket_id)
        .bind(reason)
        .bind(now)
        .execute(&mut *self.conn)
        .await?
        .rows_affected();
        Ok(withdrawn)
    }

    /// The ticket and recipient of outbox row `id`, if it exists.
    pub async fn outbox_recipient(&mut self, id: i64) -> Result<Option<(Option<i64>, String)>> {
        Ok(
            sqlx::query_as("SELECT ticket_id, recipient FROM outbox WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *self.conn)
                .await?,
        )
    }
}
