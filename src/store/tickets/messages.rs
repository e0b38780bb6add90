//! A ticket's messages: new ones (written at once or held back and
//! written several to a statement at the commit), stored ones with their
//! authors, and their attachments.

use super::*;

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
    for chunk in crate::store::power_of_two_chunks(rows, 64) {
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

impl Store {
    /// A ticket's thread, oldest first; notes only when asked for.
    pub async fn messages(&self, ticket_id: i64, with_notes: bool) -> Result<Vec<StoredMessage>> {
        let mut conn = self.pool.acquire().await?;
        load_messages(&mut conn, ticket_id, with_notes).await
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
}

impl Tx {
    /// Appends a message; the database's triggers (migrations 0009, 0010)
    /// count it on its ticket, stamp the ticket's update and record its
    /// Message-ID. On SQLite its text reaches the full-text search at the
    /// commit. Held back, when the transaction holds messages
    /// ([`Tx::defer_messages`]), with its id already taken.
    pub async fn insert_message(&mut self, m: NewMessage) -> Result<i64> {
        self.search_behind |= self.backend == Backend::Sqlite && m.kind != MessageKind::System;
        let (ticket, kind, by) = (m.ticket_id, m.kind.as_str().to_string(), m.author_user_id);
        let id = if let Some(held) = &mut self.messages {
            let id = next_message_id(&mut self.conn, self.backend, held).await?;
            held.rows.push((id, m));
            id
        } else {
            self.insert_message_now(&m).await?
        };
        self.changed(LiveEvent::Message {
            ticket,
            message: id,
            kind,
            by,
        });
        Ok(id)
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
        for chunk in crate::store::power_of_two_chunks(&rows, 256) {
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

    /// Messages of a ticket after `after` that `viewer` did not write
    /// (replies and notes; system messages are not news): (id, author's
    /// address or name). What an agent who loaded the page at `after` has
    /// not seen. At most 20.
    pub async fn messages_unseen(
        &mut self,
        ticket_id: i64,
        after: i64,
        viewer: i64,
    ) -> Result<Vec<(i64, String)>> {
        self.flush_messages().await?;
        let rows = sqlx::query(
            "SELECT m.id, COALESCE(u.email, r.email, '') AS who FROM messages m \
             LEFT JOIN users u ON u.id = m.author_user_id \
             LEFT JOIN requesters r ON r.id = m.author_requester_id \
             WHERE m.ticket_id = $1 AND m.id > $2 AND m.kind <> 'system' \
             AND (m.author_user_id IS NULL OR m.author_user_id <> $3) ORDER BY m.id LIMIT 20",
        )
        .bind(ticket_id)
        .bind(after)
        .bind(viewer)
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter()
            .map(|r| Ok((col(r, "id")?, col(r, "who")?)))
            .collect()
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
}
