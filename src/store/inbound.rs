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

    /// Claims for `holder` until `now + ttl_ms` up to `limit` unprocessed
    /// mails, in id order, without their bytes (see [`Store::load_raw`]),
    /// from the partitions no other processor has mail of in flight (see
    /// `mail/conversation.rs`): mails of one partition are processed in
    /// arrival order, one batch at a time; other partitions side by side.
    /// Claims are taken one daemon at a time (a transaction-scoped advisory
    /// lock on PostgreSQL, the write lock on SQLite), each taking its share
    /// of the waiting partitions ([`share_of_partitions`]). A dead daemon's
    /// claims, and with them its partitions, lapse after `ttl_ms`.
    pub async fn claim_raw_rows(
        &self,
        holder: &str,
        now: i64,
        ttl_ms: i64,
        limit: i64,
    ) -> Result<Vec<RawMail>> {
        let mut tx = self.begin().await?;
        self.claim_lock(&mut tx).await?;
        let waiting: Vec<(i32, Option<String>, i64)> = sqlx::query_as(
            "SELECT part, CASE WHEN claim_until >= $1 THEN claimed_by END AS holder, MIN(id) \
             FROM inbound WHERE state = 'new' GROUP BY 1, 2",
        )
        .bind(now)
        .fetch_all(&mut *tx.conn)
        .await?;
        // The live daemons (each renews a lease): a share counts them all,
        // even those between two claims.
        let (daemons,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM leases WHERE expires_at > $1 AND name LIKE $2")
                .bind(now)
                .bind(format!("{}%", super::leases::DAEMON_PREFIX))
                .fetch_one(&mut *tx.conn)
                .await?;
        let parts = share_of_partitions(&waiting, holder, usize::try_from(daemons).unwrap_or(1));
        if parts.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let list = parts
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE inbound SET claimed_by = $1, claim_until = $2, attempts = attempts + 1 WHERE id IN \
             (SELECT id FROM inbound WHERE state = 'new' AND part IN ({list}) \
             AND (claim_until IS NULL OR claim_until < $3) ORDER BY id LIMIT $4{}) RETURNING {RAW_COLS}",
            self.skip_locked()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(holder)
            .bind(now.saturating_add(ttl_ms))
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx.conn)
            .await?;
        let mut mails = rows.iter().map(raw_from).collect::<Result<Vec<_>>>()?;
        tx.commit().await?;
        mails.sort_by_key(|m| m.id);
        Ok(mails)
    }

    /// Makes claims one at a time across daemons, until the transaction
    /// ends (PostgreSQL; SQLite's write lock already does).
    async fn claim_lock(&self, tx: &mut Tx) -> Result<()> {
        if self.backend == Backend::Postgres {
            // `pg_advisory_xact_lock` returns void, which no driver type carries: count it.
            sqlx::query("SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock($1)) AS claiming")
                .bind(CLAIM_LOCK)
                .execute(&mut *tx.conn)
                .await?;
        }
        Ok(())
    }

    /// Reads the bytes of claimed mails. They never change once stored:
    /// they are read after the claim is committed, so that the database's
    /// write lock (SQLite has one for all writers) is not held while
    /// megabytes are read, and may be read on another thread meanwhile.
    pub async fn load_raw(&self, mails: &mut [RawMail]) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        load_bytes(&mut conn, self.backend, mails).await
    }

    /// Claims one stored mail by id, if it is waiting, unclaimed, and no
    /// other processor has mail of its partition in flight (then that one
    /// takes it in order).
    pub async fn claim_raw_id(
        &self,
        id: i64,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<Option<RawMail>> {
        let mut tx = self.begin().await?;
        self.claim_lock(&mut tx).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE inbound SET claimed_by = $1, claim_until = $2, attempts = attempts + 1 \
             WHERE id = $4 AND state = 'new' AND (claim_until IS NULL OR claim_until < $3) \
             AND NOT EXISTS (SELECT 1 FROM inbound o WHERE o.state = 'new' AND o.part = inbound.part \
             AND o.claim_until >= $3 AND o.claimed_by <> $1) RETURNING {RAW_COLS}"
        )))
        .bind(holder)
        .bind(now.saturating_add(ttl_ms))
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx.conn)
        .await?;
        let mut mails = row
            .as_ref()
            .map(raw_from)
            .transpose()?
            .into_iter()
            .collect::<Vec<_>>();
        load_bytes(&mut tx.conn, self.backend, &mut mails).await?;
        tx.commit().await?;
        Ok(mails.pop())
    }

    /// Gives claimed mails back at once (after a transient fault), so that
    /// they are retried without waiting for the claims to lapse.
    pub async fn release_claims(&self, ids: &[i64], holder: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        for id in ids {
            sqlx::query("UPDATE inbound SET claimed_by = NULL, claim_until = NULL WHERE id = $1 AND claimed_by = $2 AND state = 'new'")
                .bind(*id)
                .bind(holder)
                .execute(&mut *tx.conn)
                .await?;
        }
        tx.commit().await
    }

    /// How many processor workers a daemon runs. One on both backends for
    /// now: mail is processed in arrival order, so a reply always finds the
    /// ticket its parent opened. (Concurrent batches were measured to thread
    /// a reply whose parent sat in another, uncommitted batch onto a new
    /// ticket; per-mailbox ordering must come first, see the notes of issue 7.)
    pub fn writers(&self) -> usize {
        1
    }

    /// On SQLite (one daemon at a time) a starting daemon releases claims
    /// left by its killed predecessor instead of waiting for them to lapse.
    /// On PostgreSQL claims of other daemons are left to expire.
    pub async fn release_stale_claims(&self) -> Result<u64> {
        if self.backend != Backend::Sqlite {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE inbound SET claimed_by = NULL, claim_until = NULL WHERE state = 'new' AND claimed_by IS NOT NULL")
            .execute(&mut *tx.conn)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Quarantined mails, oldest first.
    pub async fn quarantined(&self, limit: i64) -> Result<Vec<Quarantined>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT i.id, m.name, i.reason, i.received_at, COALESCE(LENGTH({}), 0) AS size FROM inbound i \
             LEFT JOIN mailboxes m ON m.id = i.mailbox_id WHERE i.state = 'quarantined' ORDER BY i.id LIMIT $1",
            raw_of_row(self.backend)
        )))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Quarantined {
                    id: r.try_get("id")?,
                    mailbox: r.try_get("name")?,
                    reason: r
                        .try_get::<Option<String>, _>("reason")?
                        .unwrap_or_default(),
                    size: r.try_get("size")?,
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect()
    }

    /// The raw bytes and state of an inbound mail.
    pub async fn inbound(&self, id: i64) -> Result<Option<(String, Option<String>, Vec<u8>)>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT i.state, i.reason, {} AS raw FROM inbound i WHERE i.id = $1",
            raw_of_row(self.backend)
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let raw: Option<Vec<u8>> = r.try_get("raw")?;
            let raw = raw.ok_or_else(|| {
                StoreError::Corrupt(format!("the bytes of inbound mail {id} are missing"))
            })?;
            Ok((r.try_get("state")?, r.try_get("reason")?, raw))
        })
        .transpose()
    }

    /// Puts a quarantined mail back in the queue. Returns whether it was quarantined.
    pub async fn retry_quarantined(&self, id: i64) -> Result<bool> {
        self.set_quarantined_state(id, "new").await
    }

    /// Gives up on a quarantined mail for good (the row and bytes stay, marked discarded).
    pub async fn discard_quarantined(&self, id: i64) -> Result<bool> {
        self.set_quarantined_state(id, "discarded").await
    }

    async fn set_quarantined_state(&self, id: i64, state: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE inbound SET state = $2, attempts = 0 WHERE id = $1 AND state = 'quarantined'",
        )
        .bind(id)
        .bind(state)
        .execute(&mut *tx.conn)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Counts of inbound mail by state (for status views and tests).
    pub async fn inbound_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT state, COUNT(*) FROM inbound GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?,
        )
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

/// The advisory lock (PostgreSQL) under which claims are taken.
const CLAIM_LOCK: i64 = 0x706f_7374_6465_736b; // "postdesk"

/// The partitions a processor may claim from now, given the waiting mail
/// as (partition, holder of an unexpired claim, lowest id) groups and the
/// number of live daemons: never one another processor has mail of in
/// flight (order within a partition), and of the rest its share — the
/// partitions with waiting mail divided by the daemons (or by the
/// processors holding claims, itself included, if more) — those it already
/// holds first (its next batch goes on where the last left off), then the
/// ones waiting longest. One processor alone takes every waiting partition.
pub fn share_of_partitions(
    waiting: &[(i32, Option<String>, i64)],
    me: &str,
    daemons: usize,
) -> Vec<i32> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut others: BTreeSet<&str> = BTreeSet::new();
    let mut held_by_others: BTreeSet<i32> = BTreeSet::new();
    let mut mine: BTreeSet<i32> = BTreeSet::new();
    let mut free: BTreeMap<i32, i64> = BTreeMap::new();
    let mut all: BTreeSet<i32> = BTreeSet::new();
    for (part, holder, first) in waiting {
        all.insert(*part);
        match holder.as_deref() {
            None => {
                let oldest = free.entry(*part).or_insert(*first);
                *oldest = (*oldest).min(*first);
            }
            Some(h) if h == me => {
                mine.insert(*part);
            }
            Some(h) => {
                others.insert(h);
                held_by_others.insert(*part);
            }
        }
    }
    let share = all.len().div_ceil((others.len() + 1).max(daemons)).max(1);
    let mut open: Vec<(bool, i64, i32)> = free
        .into_iter()
        .filter(|(part, _)| !held_by_others.contains(part))
        .map(|(part, first)| (!mine.contains(&part), first, part))
        .collect();
    open.sort_unstable();
    open.into_iter()
        .take(share)
        .map(|(.., part)| part)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Fetched, Stored, share_of_partitions};
    use crate::store::Store;
    use std::time::Duration;

    fn group(part: i32, holder: Option<&str>, first: i64) -> (i32, Option<String>, i64) {
        (part, holder.map(str::to_string), first)
    }

    #[test]
    fn one_processor_alone_takes_every_waiting_partition() {
        let waiting = [group(3, None, 30), group(1, None, 10), group(2, None, 20)];
        assert_eq!(share_of_partitions(&waiting, "a", 1), vec![1, 2, 3]);
        assert!(share_of_partitions(&[], "a", 1).is_empty());
    }

    #[test]
    fn a_partition_in_flight_elsewhere_is_never_taken() {
        // b holds partition 1 (rows 10..); its later rows wait unclaimed.
        let waiting = [
            group(1, Some("b"), 10),
            group(1, None, 15),
            group(2, None, 20),
        ];
        assert_eq!(share_of_partitions(&waiting, "a", 1), vec![2]);
        // Only b's own partition waits: a takes nothing.
        assert!(share_of_partitions(&waiting[..2], "a", 1).is_empty());
        // b, the only processor in flight, goes on with its own first and
        // takes the rest.
        assert_eq!(share_of_partitions(&waiting, "b", 1), vec![1, 2]);
    }

    #[test]
    fn processors_share_the_partitions_and_keep_their_own() {
        // Six partitions, b in flight on two: a takes half (3), its own
        // partition 6 first, then the longest waiting.
        let waiting = [
            group(1, Some("b"), 1),
            group(2, Some("b"), 2),
            group(3, None, 3),
            group(4, None, 4),
            group(5, None, 5),
            group(6, Some("a"), 6),
            group(6, None, 60),
        ];
        assert_eq!(share_of_partitions(&waiting, "a", 1), vec![6, 3, 4]);
        // With a third processor in flight on one, the share is two.
        let mut three = waiting.to_vec();
        three[4] = group(5, Some("c"), 5);
        assert_eq!(share_of_partitions(&three, "a", 1), vec![6, 3]);
    }

    #[test]
    fn a_daemon_between_claims_keeps_its_share() {
        // Three live daemons, only a in flight so far: a takes a third of
        // the waiting partitions, not all of them, so the others find work.
        let waiting: Vec<_> = (0..9).map(|p| group(p, None, i64::from(p))).collect();
        assert_eq!(share_of_partitions(&waiting, "a", 3), vec![0, 1, 2]);
        let mut later = waiting.clone();
        later[0] = group(0, Some("a"), 0);
        later.push(group(0, None, 100));
        assert_eq!(share_of_partitions(&later, "a", 3), vec![0, 1, 2]);
        assert_eq!(share_of_partitions(&later, "b", 3), vec![1, 2, 3]);
    }

    #[test]
    fn raw_inserts_stay_under_the_byte_budget() {
        let small = [0u8; 300];
        let big = [0u8; 1500];
        let mails: Vec<(&str, &[u8])> = vec![
            ("a", &small),
            ("b", &small),
            ("c", &small),
            ("d", &big),
            ("e", &small),
        ];
        let runs: Vec<Vec<&str>> = super::byte_chunks(&mails, 1000)
            .map(|run| run.iter().map(|(k, _)| *k).collect())
            .collect();
        assert_eq!(runs, [vec!["a", "b", "c"], vec!["d"], vec!["e"]]);
        let many = vec![("k", &small[..1]); 1200];
        let sizes: Vec<usize> = super::byte_chunks(&many, usize::MAX)
            .map(<[_]>::len)
            .collect();
        assert_eq!(sizes, [500, 500, 200]);
        assert_eq!(super::byte_chunks(&[], 1000).count(), 0);
    }

    async fn sqlite_store(dir: &tempfile::TempDir) -> (Store, i64) {
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&url, 4, "TKT").await.unwrap();
        store.migrate().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let mailbox: i64 = sqlx::query_scalar(
            "INSERT INTO mailboxes (name, address, settings, from_config, created_at) \
             VALUES ('support', 'support@example.test', '{}', 0, 0) RETURNING id",
        )
        .fetch_one(&mut *tx.conn)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        (store, mailbox)
    }

    async fn claim(store: &Store) -> Vec<super::RawMail> {
        let mut mails = store.claim_raw_rows("me", 5, 1000, 10).await.unwrap();
        store.load_raw(&mut mails).await.unwrap();
        mails
    }

    async fn count(store: &Store, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&store.pool)
            .await
            .unwrap()
    }

    /// A poller's bytes are committed to the mail file without the main
    /// file's write lock: while another transaction holds that lock they
    /// are already there, and the rows follow once it is released.
    #[tokio::test]
    async fn fetched_bytes_commit_to_the_mail_file_before_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mailbox) = sqlite_store(&dir).await;
        let holder = store.begin().await.unwrap();
        let poller = store.clone();
        let storing = tokio::spawn(async move {
            let mails = [
                Fetched {
                    uid: 7,
                    raw: b"Subject: a\r\n\r\none",
                    quarantine: None,
                },
                Fetched {
                    uid: 8,
                    raw: b"Subject: b\r\n\r\ntwo",
                    quarantine: Some("too large".into()),
                },
            ];
            poller
                .store_fetched(mailbox, 3, &mails, false, None, 1)
                .await
                .unwrap()
        });
        let keys = "SELECT COUNT(*) FROM mail.raw WHERE key IN ('imap:1:3:7', 'imap:1:3:8')";
        let mut waited = 0;
        while count(&store, keys).await < 2 {
            assert!(waited < 500, "the bytes waited for the main write lock");
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += 1;
        }
        assert_eq!(count(&store, "SELECT COUNT(*) FROM inbound").await, 0);
        drop(holder);
        let stored = storing.await.unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM inbound_raw").await, 0);
        let (state, _, raw) = store.inbound(stored[0].1).await.unwrap().unwrap();
        assert_eq!(
            (state.as_str(), &raw[..]),
            ("new", &b"Subject: a\r\n\r\none"[..])
        );
        let quarantined = store.quarantined(10).await.unwrap();
        assert_eq!(quarantined.len(), 1);
        assert_eq!(
            (quarantined[0].reason.as_str(), quarantined[0].size),
            ("too large", 17)
        );
        // Fetched again (after a crash before the server was told): nothing new.
        let again = [Fetched {
            uid: 7,
            raw: b"Subject: a\r\n\r\none",
            quarantine: None,
        }];
        assert!(
            store
                .store_fetched(mailbox, 3, &again, false, None, 2)
                .await
                .unwrap()
                .is_empty()
        );
        let claimed = claim(&store).await;
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].raw, b"Subject: a\r\n\r\none");
    }

    /// A piped mail's bytes go to the mail file with its transaction, a
    /// rolled-back one leaves no row, and a row stored before the mail file
    /// existed is still read from `inbound_raw`.
    #[tokio::test]
    async fn piped_and_older_mail_is_read_where_it_lives() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mailbox) = sqlite_store(&dir).await;
        let mut tx = store.begin().await.unwrap();
        tx.store_raw(Some(mailbox), "<a@x>", b"first try", false, 1)
            .await
            .unwrap();
        drop(tx);
        let mut tx = store.begin().await.unwrap();
        let Stored::New(piped) = tx
            .store_raw(Some(mailbox), "<a@x>", b"piped", false, 1)
            .await
            .unwrap()
        else {
            panic!("a rolled-back mail counted as stored")
        };
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let again = tx
            .store_raw(Some(mailbox), "<a@x>", b"other", false, 2)
            .await
            .unwrap();
        assert_eq!(again, Stored::Duplicate(piped));
        let older: i64 = sqlx::query_scalar(
            "INSERT INTO inbound (mailbox_id, dedup_key, received_at) VALUES (NULL, 'old', 0) RETURNING id",
        )
        .fetch_one(&mut *tx.conn)
        .await
        .unwrap();
        sqlx::query("INSERT INTO inbound_raw (inbound_id, raw) VALUES ($1, $2)")
            .bind(older)
            .bind(&b"older"[..])
            .execute(&mut *tx.conn)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.inbound(piped).await.unwrap().unwrap().2, b"piped");
        assert_eq!(store.inbound(older).await.unwrap().unwrap().2, b"older");
        let claimed = claim(&store).await;
        let raws: Vec<&[u8]> = claimed.iter().map(|m| &m.raw[..]).collect();
        assert_eq!(raws, [&b"piped"[..], &b"older"[..]]);
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM inbound_raw").await,
            1,
            "new mail went to inbound_raw"
        );
    }
}
