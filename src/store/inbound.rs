//! Inbound raw mail: committed before the IMAP server is told anything,
//! claimed for processing, marked done or quarantined with the reason.
//!
//! The bytes live apart from the `inbound` row: on PostgreSQL in
//! `inbound_raw`, on SQLite in the mail file (see [`super::MailFile`]),
//! under a key the row names (`raw_key`; NULL for rows stored before the
//! mail file, whose bytes stay in `inbound_raw`).

use futures::TryStreamExt;
use sqlx::Row;

use super::{Backend, Marks, Param, Result, Sql, Store, StoreError, Tx};
use crate::mail::conversation::{self, ThreadIds};
use std::collections::HashMap;

mod claims;
mod quarantine;

pub use claims::share_of_partitions;

/// A stored raw mail waiting to be processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMail {
    pub id: i64,
    pub mailbox_id: Option<i64>,
    pub raw: Vec<u8>,
    /// Imported without notifications.
    pub silent: bool,
    pub attempts: i64,
    /// When it was stored (ms), for the processing-latency histogram.
    pub received_at: i64,
}

/// What storing a raw mail did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A new row with this id.
    New(i64),
    /// This mail was already stored (same mailbox and UID, or same key from a pipe).
    Duplicate(i64),
}

/// One quarantined mail, for `postdesk quarantine list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub id: i64,
    pub mailbox: Option<String>,
    pub reason: String,
    pub size: i64,
    pub received_at: i64,
}

const RAW_COLS: &str = "id, mailbox_id, silent, attempts, received_at";

/// The bytes of the inbound row `i`, as an SQL expression.
fn raw_of_row(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "CASE WHEN i.raw_key IS NULL THEN (SELECT raw FROM inbound_raw WHERE inbound_id = i.id) \
             ELSE (SELECT raw FROM mail.raw WHERE key = i.raw_key) END"
        }
        Backend::Postgres => "(SELECT raw FROM inbound_raw WHERE inbound_id = i.id)",
    }
}

/// A mail fetched over IMAP, to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched<'a> {
    pub uid: i64,
    pub raw: &'a [u8],
    /// Stored straight into quarantine with this reason (a mail too large
    /// to download, of which only the header is kept).
    pub quarantine: Option<String>,
}

/// A claimed row without its bytes (they are read from `inbound_raw` after).
fn raw_from(row: &sqlx::any::AnyRow) -> Result<RawMail> {
    Ok(RawMail {
        id: row.try_get("id")?,
        mailbox_id: row.try_get("mailbox_id")?,
        raw: Vec::new(),
        silent: row.try_get::<i64, _>("silent")? != 0,
        attempts: row.try_get("attempts")?,
        received_at: row.try_get("received_at")?,
    })
}

/// Fills in the bytes of claimed mails, one query for all. A mail whose
/// bytes are missing keeps none (and fails to parse, into quarantine).
async fn load_bytes(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    mails: &mut [RawMail],
) -> Result<()> {
    if mails.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::for_backend(backend);
    sql.push(&format!(
        "SELECT i.id, {} AS raw FROM inbound i WHERE i.id IN ",
        raw_of_row(backend)
    ))
    .bind_list(mails.iter().map(|m| Param::Int(m.id)));
    // Row by row: each row's copy of the bytes is dropped once decoded
    // (all rows at once held a batch's megabytes twice).
    let mut rows = sql.query().fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        let id: i64 = row.try_get(0)?;
        if let Some(m) = mails.iter_mut().find(|m| m.id == id) {
            m.raw = row.try_get::<Option<Vec<u8>>, _>(1)?.unwrap_or_default();
        }
    }
    Ok(())
}

/// Writes raw mails into the mail file under their keys. `replace`: a key
/// already there gets these bytes (a pipe's key, whose earlier bytes can
/// only be left by a crash before their row was committed); otherwise the
/// bytes there stay (an IMAP key: the same UID of the same mailbox is the
/// same mail).
async fn write_raw(
    conn: &mut sqlx::AnyConnection,
    mails: &[(&str, &[u8])],
    replace: bool,
) -> Result<()> {
    let verb = if replace { "REPLACE" } else { "IGNORE" };
    for chunk in byte_chunks(mails, RAW_INSERT_BYTES) {
        let text = format!(
            "INSERT OR {verb} INTO raw (key, raw) VALUES {}",
            Marks::new(Backend::Sqlite).rows(chunk.len(), 2)
        );
        // Row counts vary with each group: not worth a cached statement each.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(text)).persistent(false);
        for (key, raw) in chunk {
            q = q.bind(*key).bind(*raw);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The mail bytes one INSERT into `raw` binds at most: sqlx copies a
/// statement's arguments, so a 4 MB fetch group bound at once held a second
/// copy of itself (heaptrack: 4.1 MB of the daemon's peak).
const RAW_INSERT_BYTES: usize = 512 * 1024;

/// Consecutive runs of `(key, bytes)` pairs of at most `budget` bytes and 500
/// rows each; a pair larger than `budget` gets a run of its own.
fn byte_chunks<'a, 'm>(
    mut rest: &'a [(&'m str, &'m [u8])],
    budget: usize,
) -> impl Iterator<Item = &'a [(&'m str, &'m [u8])]> {
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let n = rest
            .iter()
            .take(500)
            .take_while(|(_, raw)| {
                bytes += raw.len();
                bytes <= budget
            })
            .count()
            .max(1);
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

/// The key of an IMAP mail's bytes in the mail file.
fn imap_key(mailbox_id: i64, uidvalidity: i64, uid: i64) -> String {
    format!("imap:{mailbox_id}:{uidvalidity}:{uid}")
}

/// A stored mail processed to its end: the ticket it went to, and a note
/// ("duplicate", "auto-reply", …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub id: i64,
    pub ticket_id: Option<i64>,
    pub note: Option<String>,
}

impl Tx {
    /// Opens a savepoint: work after it can be undone alone.
    pub async fn savepoint(&mut self) -> Result<()> {
        self.flush_messages().await?;
        if let Some(deferred) = &mut self.deferred {
            deferred.before_savepoint = deferred.notifications.len();
        }
        sqlx::raw_sql("SAVEPOINT mail")
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    /// Keeps the work since the savepoint.
    pub async fn release_savepoint(&mut self) -> Result<()> {
        self.flush_messages().await?;
        sqlx::raw_sql("RELEASE SAVEPOINT mail")
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    /// Undoes the work since the savepoint (the transaction stays usable).
    pub async fn rollback_to_savepoint(&mut self) -> Result<()> {
        self.participants.clear();
        // Held since the savepoint (which wrote out those before it).
        if let Some(held) = &mut self.messages {
            held.rows.clear();
            held.attachments.clear();
        }
        if let Some(deferred) = &mut self.deferred {
            deferred.notifications.truncate(deferred.before_savepoint);
        }
        sqlx::raw_sql("ROLLBACK TO SAVEPOINT mail; RELEASE SAVEPOINT mail")
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    /// Waits for, and holds to the end of this transaction, the locks of
    /// the Message-IDs whose hashes are `keys` (`mail/conversation.rs`)
    /// that no ticket names yet (PostgreSQL only: SQLite has one writer,
    /// and then this returns false). Two batches that hold mails of one
    /// conversation, which partitions did not keep apart (a reply stored
    /// before the mail it answers), commit one after the other: the later
    /// one reads those ids again after this, sees what the earlier wrote,
    /// and so a reply that committed first is found and joined. Taken in
    /// one order, so two batches never wait on each other in a circle.
    pub async fn lock_conversations(&mut self, keys: &[i64]) -> Result<bool> {
        if self.backend != Backend::Postgres || keys.is_empty() {
            return Ok(false);
        }
        let mut keys = keys.to_vec();
        keys.sort_unstable();
        keys.dedup();
        for chunk in keys.chunks(1000) {
            // Numbers this process computed, written as literals.
            let values = chunk
                .iter()
                .map(|k| format!("({k})"))
                .collect::<Vec<_>>()
                .join(", ");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock(k) FROM \
                 (SELECT k FROM (VALUES {values}) AS v(k) ORDER BY k) AS s) AS locked"
            )))
            .persistent(false)
            .execute(&mut *self.conn)
            .await?;
        }
        Ok(true)
    }

    /// Quarantines a raw mail with the reason, inside this transaction.
    pub async fn quarantine_raw(&mut self, id: i64, reason: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE inbound SET state = 'quarantined', reason = $2, processed_at = $3, claimed_by = NULL, \
             claim_until = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(reason.chars().take(2000).collect::<String>())
        .bind(now)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    /// Stores a raw mail from a pipe or an import unless the same one is
    /// already there, known by (mailbox, Message-ID or digest). Mail fetched
    /// over IMAP goes through [`Tx::store_fetched`].
    pub async fn store_raw(
        &mut self,
        mailbox_id: Option<i64>,
        dedup_key: &str,
        raw: &[u8],
        silent: bool,
        now: i64,
    ) -> Result<Stored> {
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM inbound WHERE dedup_key = $1 AND (mailbox_id = $2 OR ($2 IS NULL AND mailbox_id IS NULL)) LIMIT 1",
        )
        .bind(dedup_key)
        .bind(mailbox_id)
        .fetch_optional(&mut *self.conn)
        .await?;
        if let Some(id) = existing {
            return Ok(Stored::Duplicate(id));
        }
        // Unique: (mailbox, key) is, and mailbox ids are never reused.
        let raw_key = self.mail.is_some().then(|| {
            let mailbox = mailbox_id.map_or_else(|| "-".to_string(), |m| m.to_string());
            format!("pipe:{mailbox}:{dedup_key}")
        });
        let ids = ThreadIds::of(raw);
        let stored = parents_stored(&mut self.conn, std::slice::from_ref(&ids)).await?;
        let part = conversation::assign(std::slice::from_ref(&ids), &stored)[0];
        let id = sqlx::query_scalar(
            "INSERT INTO inbound (mailbox_id, dedup_key, silent, received_at, raw_key, part, msg_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(mailbox_id)
        .bind(dedup_key)
        .bind(i64::from(silent))
        .bind(now)
        .bind(raw_key.clone())
        .bind(part)
        .bind(ids.own)
        .fetch_one(&mut *self.conn)
        .await?;
        match (&raw_key, self.mail.clone()) {
            (Some(key), Some(mail)) => {
                if self.mail_tx.is_none() {
                    self.mail_tx = Some(mail.begin().await?);
                }
                if let Some(mail_tx) = &mut self.mail_tx {
                    write_raw(&mut mail_tx.conn, &[(key, raw)], true).await?;
                }
            }
            _ => {
                sqlx::query("INSERT INTO inbound_raw (inbound_id, raw) VALUES ($1, $2)")
                    .bind(id)
                    .bind(raw)
                    .execute(&mut *self.conn)
                    .await?;
            }
        }
        Ok(Stored::New(id))
    }

    /// Marks stored mails processed, noting the ticket each went to, in one
    /// statement per 300 (a batch's last, so a mail costs no round trip of
    /// its own for it).
    pub async fn finish_raws(&mut self, done: &[Finished], now: i64) -> Result<()> {
        for chunk in done.chunks(300) {
            let mut marks = Marks::new(self.backend);
            let mut text = String::from("WITH v(id, ticket_id, reason) AS (VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    text.push_str(", ");
                }
                text.push_str("(CAST(");
                marks.push_to(&mut text);
                text.push_str(" AS BIGINT), CAST(");
                marks.push_to(&mut text);
                text.push_str(" AS BIGINT), CAST(");
                marks.push_to(&mut text);
                text.push_str(" AS TEXT))");
            }
            // `OR FAIL`: see `Backend::or_fail`.
            text.push_str(&format!(
                ") UPDATE {}inbound SET state = 'done', ticket_id = v.ticket_id, reason = v.reason, \
                 processed_at = ",
                self.backend.or_fail()
            ));
            marks.push_to(&mut text);
            text.push_str(", claimed_by = NULL, claim_until = NULL FROM v WHERE inbound.id = v.id");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(text));
            for f in chunk {
                q = q.bind(f.id).bind(f.ticket_id).bind(f.note.clone());
            }
            let q = q.bind(now);
            q.execute(&mut *self.conn).await?;
        }
        Ok(())
    }
}

impl Store {
    /// Stores a group of mails fetched from one IMAP mailbox, keyed by
    /// (mailbox, UIDVALIDITY, UID), and commits: [`Store::store_fetched_bytes`]
    /// then [`Store::store_fetched_rows`]. Returns the UID and row id of
    /// each mail stored now; mails already there are passed over.
    pub async fn store_fetched(
        &self,
        mailbox_id: i64,
        uidvalidity: i64,
        mails: &[Fetched<'_>],
        silent: bool,
        position: Option<i64>,
        now: i64,
    ) -> Result<Vec<(i64, i64)>> {
        self.store_fetched_bytes(mailbox_id, uidvalidity, mails)
            .await?;
        self.store_fetched_rows(mailbox_id, uidvalidity, mails, silent, position, now)
            .await
    }

    /// The first stage of storing fetched mails: on SQLite, commits their
    /// bytes to the mail file (flushed) under its own write lock and returns
    /// true, so that the main file's write lock, which the processor needs,
    /// is held only for the rows; a crash before the rows leaves bytes that
    /// the next fetch of the same UIDs finds again. On PostgreSQL nothing
    /// (false): the bytes go in with the rows.
    pub async fn store_fetched_bytes(
        &self,
        mailbox_id: i64,
        uidvalidity: i64,
        mails: &[Fetched<'_>],
    ) -> Result<bool> {
        let Some(mail) = &self.mail else {
            return Ok(false);
        };
        if !mails.is_empty() {
            let keys: Vec<String> = mails
                .iter()
                .map(|m| imap_key(mailbox_id, uidvalidity, m.uid))
                .collect();
            let raws: Vec<(&str, &[u8])> = keys
                .iter()
                .zip(mails)
                .map(|(k, m)| (k.as_str(), m.raw))
                .collect();
            let mut mail_tx = mail.begin().await?;
            write_raw(&mut mail_tx.conn, &raws, false).await?;
            mail_tx.commit().await?;
        }
        Ok(true)
    }

    /// The second stage: the mails' rows, in one transaction of the main
    /// file (on PostgreSQL with their bytes; on SQLite after
    /// [`Store::store_fetched_bytes`], and `raw` is not read). Returns the
    /// UID and row id of each mail stored now; mails already there are
    /// passed over. A few statements per 500 mails (a statement per mail
    /// made the poller hold SQLite's write lock twice as long). With
    /// `position`, the mailbox's last stored UID moves there in the same
    /// transaction (a commit of its own waited for the write lock).
    pub async fn store_fetched_rows(
        &self,
        mailbox_id: i64,
        uidvalidity: i64,
        mails: &[Fetched<'_>],
        silent: bool,
        position: Option<i64>,
        now: i64,
    ) -> Result<Vec<(i64, i64)>> {
        let key = |uid: i64| imap_key(mailbox_id, uidvalidity, uid);
        let in_mail_file = self.mail.is_some();
        // Each mail's partition: that of the mail it answers, if stored.
        let ids: Vec<ThreadIds> = mails.iter().map(|m| ThreadIds::of(m.raw)).collect();
        let mut tx = self.begin().await?;
        let mut stored = Vec::with_capacity(mails.len());
        let known = parents_stored(&mut tx.conn, &ids).await?;
        let parts = conversation::assign(&ids, &known);
        let place: HashMap<i64, (i32, Option<i64>)> = mails
            .iter()
            .zip(parts.iter().zip(&ids))
            .map(|(m, (part, ids))| (m.uid, (*part, ids.own)))
            .collect();
        for chunk in mails.chunks(500) {
            let text = format!(
                "INSERT INTO inbound (mailbox_id, uidvalidity, uid, dedup_key, raw_key, silent, received_at, part, msg_hash) \
                 VALUES {} ON CONFLICT (mailbox_id, uidvalidity, uid) DO NOTHING RETURNING id, uid",
                Marks::new(self.backend).rows(chunk.len(), 9)
            );
            let mut q =
                sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(text)).persistent(false);
            for m in chunk {
                let key = key(m.uid);
                q = q
                    .bind(mailbox_id)
                    .bind(uidvalidity)
                    .bind(m.uid)
                    .bind(key.clone())
                    .bind(in_mail_file.then_some(key))
                    .bind(i64::from(silent))
                    .bind(now)
                    .bind(place[&m.uid].0)
                    .bind(place[&m.uid].1);
            }
            let new = q.fetch_all(&mut *tx.conn).await?;
            let of = |uid: i64| chunk.iter().find(|m| m.uid == uid);
            if !in_mail_file && !new.is_empty() {
                let text = format!(
                    "INSERT INTO inbound_raw (inbound_id, raw) VALUES {}",
                    Marks::new(self.backend).rows(new.len(), 2)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(text)).persistent(false);
                for (id, uid) in &new {
                    q = q.bind(*id).bind(of(*uid).map_or(&[][..], |m| m.raw));
                }
                q.execute(&mut *tx.conn).await?;
            }
            for (id, uid) in &new {
                if let Some(reason) = of(*uid).and_then(|m| m.quarantine.as_deref()) {
                    tx.quarantine_raw(*id, reason, now).await?;
                }
            }
            stored.extend(new.into_iter().map(|(id, uid)| (uid, id)));
        }
        if let Some(last_uid) = position {
            self.set_mailbox_position(&mut tx, mailbox_id, uidvalidity, last_uid, now)
                .await?;
        }
        tx.commit().await?;
        Ok(stored)
    }
}

/// The partitions of the stored mails among `mails`' parents, by the hash
/// of their Message-ID (one statement per 500 hashes).
async fn parents_stored(
    conn: &mut sqlx::AnyConnection,
    mails: &[ThreadIds],
) -> Result<HashMap<i64, i32>> {
    let mut wanted: Vec<i64> = mails
        .iter()
        .flat_map(|m| m.parents.iter().copied())
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found = HashMap::new();
    for chunk in wanted.chunks(500) {
        // Numbers this process computed, written as literals.
        let list = chunk
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let rows: Vec<(i64, i32)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT msg_hash, MIN(part) FROM inbound WHERE msg_hash IN ({list}) GROUP BY msg_hash"
        )))
        .persistent(false)
        .fetch_all(&mut *conn)
        .await?;
        found.extend(rows);
    }
    Ok(found)
}

#[cfg(test)]
mod tests;
