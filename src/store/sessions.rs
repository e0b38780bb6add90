//! Web sessions (the cookie's digest, never the cookie), what a requester
//! may see, a requester's own ticket list, and read marks for unread dots.

use sqlx::Row;

use super::{Result, Store, col};
use crate::domain::{Status, TicketRef};

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub requester_id: Option<i64>,
    /// A requester session opened by one ticket's link opens that ticket
    /// only (and its follow-ups); `None`: every ticket of the requester.
    pub ticket_id: Option<i64>,
    pub user_id: Option<i64>,
    /// The token every form of this session carries.
    pub csrf: String,
    pub expires_at: i64,
}

/// An attachment's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentInfo {
    pub id: i64,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    /// The `Content-ID` an HTML part refers to it by (`cid:`), if any.
    pub content_id: Option<String>,
}

/// What a requester keeps on their profile (the address is not theirs to change).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: String,
    pub organisation: String,
    /// Notice names switched off.
    pub switched_off: Vec<String>,
}

/// One line of a requester's "my tickets".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyTicket {
    pub id: i64,
    pub reference: TicketRef,
    pub subject: String,
    pub status: Status,
    pub updated_at: i64,
    pub message_count: i64,
    /// A public message newer than this person last read.
    pub unread: bool,
}

impl Store {
    /// Records a new session under the digest of its cookie.
    pub async fn insert_session(
        &self,
        id_hash: &str,
        session: &WebSession,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, user_id, requester_id, ticket_id, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id_hash)
        .bind(session.user_id)
        .bind(session.requester_id)
        .bind(session.ticket_id)
        .bind(session.csrf.as_str())
        .bind(now)
        .bind(session.expires_at)
        .execute(&mut *tx.conn)
        .await?;
        // Housekeeping on the way: forget sessions long expired.
        sqlx::query("DELETE FROM web_sessions WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *tx.conn)
            .await?;
        tx.commit().await
    }

    /// The unexpired session of a cookie digest.
    pub async fn session(&self, id_hash: &str, now: i64) -> Result<Option<WebSession>> {
        let row = sqlx::query(
            "SELECT user_id, requester_id, ticket_id, csrf, expires_at FROM web_sessions \
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(WebSession {
                user_id: r.try_get("user_id")?,
                requester_id: r.try_get("requester_id")?,
                ticket_id: r.try_get("ticket_id")?,
                csrf: r.try_get("csrf")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&mut *tx.conn)
            .await?;
        tx.commit().await
    }

    /// Whether a requester is on a ticket: its requester or a participant.
    pub async fn requester_on_ticket(&self, requester_id: i64, ticket_id: i64) -> Result<bool> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM tickets t WHERE t.id = $1 AND (t.requester_id = $2 OR EXISTS \
             (SELECT 1 FROM participants p WHERE p.ticket_id = t.id AND p.requester_id = $2))",
        )
        .bind(ticket_id)
        .bind(requester_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// The tickets a requester is on, last updated first.
    pub async fn requester_tickets(&self, requester_id: i64, limit: i64) -> Result<Vec<MyTicket>> {
        let viewer = format!("requester:{requester_id}");
        let rows = sqlx::query(
            "SELECT t.id, t.number, t.subject, t.status, t.updated_at, t.message_count, \
             (SELECT MAX(m.id) FROM messages m WHERE m.ticket_id = t.id AND m.kind = 'reply') AS last_reply, \
             (SELECT rm.last_message_id FROM read_marks rm WHERE rm.ticket_id = t.id AND rm.viewer = $2) AS seen \
             FROM tickets t WHERE t.merged_into_id IS NULL AND (t.requester_id = $1 OR EXISTS \
             (SELECT 1 FROM participants p WHERE p.ticket_id = t.id AND p.requester_id = $1)) \
             ORDER BY t.updated_at DESC, t.id DESC LIMIT $3",
        )
        .bind(requester_id)
        .bind(viewer)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let last: Option<i64> = r.try_get("last_reply")?;
                let seen: Option<i64> = r.try_get("seen")?;
                Ok(MyTicket {
                    id: col(r, "id")?,
                    reference: TicketRef::new(&self.prefix, col(r, "number")?),
                    subject: col(r, "subject")?,
                    status: super::parsed(r, "status")?,
                    updated_at: col(r, "updated_at")?,
                    message_count: col(r, "message_count")?,
                    unread: last.is_some_and(|l| seen.is_none_or(|s| l > s)),
                })
            })
            .collect()
    }

    /// Remembers that `viewer` has read a ticket up to `message_id`; a view
    /// that adds nothing writes nothing (pages are read far more than written).
    pub async fn mark_read(&self, ticket_id: i64, viewer: &str, message_id: i64) -> Result<()> {
        let seen: Option<i64> = sqlx::query_scalar(
            "SELECT last_message_id FROM read_marks WHERE ticket_id = $1 AND viewer = $2",
        )
        .bind(ticket_id)
        .bind(viewer)
        .fetch_optional(&self.pool)
        .await?;
        if seen.is_some_and(|s| s >= message_id) {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO read_marks (ticket_id, viewer, last_message_id) VALUES ($1, $2, $3) \
             ON CONFLICT (ticket_id, viewer) DO UPDATE SET last_message_id = excluded.last_message_id \
             WHERE read_marks.last_message_id < excluded.last_message_id",
        )
        .bind(ticket_id)
        .bind(viewer)
        .bind(message_id)
        .execute(&mut *tx.conn)
        .await?;
        tx.commit().await
    }

    /// The attachments of a ticket's messages, by message id, in order.
    pub async fn ticket_attachments(
        &self,
        ticket_id: i64,
    ) -> Result<std::collections::HashMap<i64, Vec<AttachmentInfo>>> {
        let rows: Vec<(i64, i64, String, String, i64, Option<String>)> = sqlx::query_as(
            "SELECT a.message_id, a.id, a.filename, a.content_type, a.size, a.content_id FROM attachments a \
             JOIN messages m ON m.id = a.message_id WHERE m.ticket_id = $1 ORDER BY a.id",
        )
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out: std::collections::HashMap<i64, Vec<AttachmentInfo>> = Default::default();
        for (message_id, id, filename, content_type, size, content_id) in rows {
            out.entry(message_id).or_default().push(AttachmentInfo {
                id,
                filename,
                content_type,
                size,
                content_id,
            });
        }
        Ok(out)
    }

    /// The files of one message with their bytes, in order, when they
    /// come to at most `limit` bytes; `Err(total)` when they are larger
    /// (the bytes are not read).
    pub async fn message_files(
        &self,
        message_id: i64,
        limit: u64,
    ) -> Result<std::result::Result<Vec<(AttachmentInfo, Vec<u8>)>, i64>> {
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast back.
        let total: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM attachments WHERE message_id = $1",
        )
        .bind(message_id)
        .fetch_one(&self.pool)
        .await?;
        if total == 0 {
            return Ok(Ok(Vec::new()));
        }
        if u64::try_from(total).unwrap_or(u64::MAX) > limit {
            return Ok(Err(total));
        }
        let rows = sqlx::query(
            "SELECT a.id, a.filename, a.content_type, a.size, a.content_id, b.data FROM attachments a \
             JOIN blobs b ON b.sha256 = a.sha256 WHERE a.message_id = $1 ORDER BY a.id",
        )
        .bind(message_id)
        .fetch_all(&self.pool)
        .await?;
        let files = rows
            .iter()
            .map(|r| {
                Ok((
                    AttachmentInfo {
                        id: r.try_get("id")?,
                        filename: r.try_get("filename")?,
                        content_type: r.try_get("content_type")?,
                        size: r.try_get("size")?,
                        content_id: r.try_get("content_id")?,
                    },
                    r.try_get("data")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Ok(files))
    }

    /// One attachment with its bytes and where it belongs: (ticket id,
    /// whether its message is public, the file).
    pub async fn attachment_download(
        &self,
        id: i64,
    ) -> Result<Option<(i64, bool, AttachmentInfo, Vec<u8>)>> {
        let row = sqlx::query(
            "SELECT m.ticket_id, m.kind, a.filename, a.content_type, a.size, b.data FROM attachments a \
             JOIN messages m ON m.id = a.message_id JOIN blobs b ON b.sha256 = a.sha256 WHERE a.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let kind: String = r.try_get("kind")?;
            Ok((
                r.try_get("ticket_id")?,
                kind == "reply",
                AttachmentInfo {
                    id,
                    filename: r.try_get("filename")?,
                    content_type: r.try_get("content_type")?,
                    size: r.try_get("size")?,
                    content_id: None,
                },
                r.try_get("data")?,
            ))
        })
        .transpose()
    }

    /// The reference of the ticket a received or sent mail is on.
    pub async fn ticket_ref_of_mail(&self, message_id: &str) -> Result<Option<TicketRef>> {
        let number: Option<i64> = sqlx::query_scalar(
            "SELECT t.number FROM mail_ids m JOIN tickets t ON t.id = m.ticket_id WHERE m.message_id = $1",
        )
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(number.map(|n| TicketRef::new(&self.prefix, n)))
    }

    /// A requester's profile.
    pub async fn requester_profile(&self, id: i64) -> Result<Option<Profile>> {
        let row = sqlx::query(
            "SELECT email, first_name, last_name, phone, organisation, notify_prefs FROM requesters WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let prefs: String = r.try_get("notify_prefs")?;
            let prefs: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&prefs).unwrap_or_default();
            Ok(Profile {
                email: r.try_get("email")?,
                first_name: r.try_get("first_name")?,
                last_name: r.try_get("last_name")?,
                phone: r.try_get("phone")?,
                organisation: r.try_get("organisation")?,
                switched_off: prefs
                    .into_iter()
                    .filter(|(_, v)| v == &serde_json::Value::Bool(false))
                    .map(|(k, _)| k)
                    .collect(),
            })
        })
        .transpose()
    }

    /// Saves a requester's profile (never the address).
    pub async fn save_requester_profile(&self, id: i64, p: &Profile) -> Result<()> {
        let prefs: serde_json::Map<String, serde_json::Value> = p
            .switched_off
            .iter()
            .map(|n| (n.clone(), serde_json::Value::Bool(false)))
            .collect();
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE requesters SET first_name = $1, last_name = $2, phone = $3, organisation = $4, \
             notify_prefs = $5 WHERE id = $6",
        )
        .bind(p.first_name.as_str())
        .bind(p.last_name.as_str())
        .bind(p.phone.as_str())
        .bind(p.organisation.as_str())
        .bind(serde_json::Value::Object(prefs).to_string())
        .bind(id)
        .execute(&mut *tx.conn)
        .await?;
        tx.commit().await
    }

    /// The requester id of an address, if known.
    pub async fn requester_id_by_email(&self, email: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM requesters WHERE email = $1")
                .bind(email)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The newest ticket of a requester, for a "send me a link" mail.
    pub async fn latest_ticket_of(&self, requester_id: i64) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM tickets WHERE requester_id = $1 ORDER BY updated_at DESC, id DESC LIMIT 1",
        )
        .bind(requester_id)
        .fetch_optional(&self.pool)
        .await?)
    }
}
