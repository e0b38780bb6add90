//! SQLite's own parts: the mail file beside the main database (raw mail
//! kept apart, attached to every connection), its checkpointer, and the
//! paths of both.

use super::*;

/// SQLite only: copies a file's write-ahead log back into the database on
/// a connection of its own, woken after commits (at most every 50 ms),
/// instead of in whichever commit crosses SQLite's threshold. The main file
/// and the mail file have one each.
///
/// Decision: that commit held the write lock through the copy and two
/// flushes, 12–25 ms in every other batch of the ingest processor (measured
/// with the "write lock released" line); a passive checkpoint waits for no
/// writer and no reader. In the mail file nearly every 4 MB group a poller
/// stores crossed SQLite's 1,000 pages, and its commit took 5–60 ms instead
/// of 5–10, while the processor waited for mail to claim. Connections keep
/// SQLite's own checkpoint at a far higher threshold (64 MB of log) as a
/// safety net. The mail file's checkpointer opens the mail file alone (one
/// attaching it to a main connection made a mail-file writer fail with
/// "database is locked" now and then).
#[derive(Clone)]
pub(crate) struct Checkpointer {
    pub(super) wake: Arc<tokio::sync::Notify>,
    pub(super) pool: AnyPool,
}

/// Log pages after which a commit checkpoints by itself (SQLite's default
/// is 1,000; the checkpointer normally comes well before).
pub(super) const WAL_AUTOCHECKPOINT: u32 = 16_384;

impl Checkpointer {
    pub(super) async fn start(url: &str) -> Result<Checkpointer> {
        let pool = pool_options(
            Backend::Sqlite,
            url,
            1,
            Commits::Flushed,
            ForeignKeys::Checked,
            None,
        )
        .connect(url)
        .await?;
        let wake = Arc::new(tokio::sync::Notify::new());
        let (task_wake, task_pool) = (wake.clone(), pool.clone());
        tokio::spawn(async move {
            loop {
                task_wake.notified().await;
                if task_pool.is_closed() {
                    break;
                }
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&task_pool)
                    .await
                {
                    if task_pool.is_closed() {
                        break;
                    }
                    tracing::warn!(error = %e, "checkpointing a database log failed; retrying after the next commit");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Ok(Checkpointer { wake, pool })
    }

    /// Closes its connection and ends its task.
    pub(super) async fn close(&self) {
        self.pool.close().await;
        self.wake.notify_one();
    }
}

/// SQLite only: the file beside the main database that holds the bytes of
/// inbound mail (`PATH.mail`, table `raw`), with a write lock of its own.
///
/// Decision: a poller's stores are mostly megabytes of raw mail, and
/// SQLite has one writer per file: in the main file they held the write
/// lock the processor needs for about a quarter of an ingest's time. Here
/// a poller commits the bytes first (flushed) under this file's lock, then
/// the small `inbound` rows under the main one; a crash between leaves
/// bytes no row names, which the next fetch of the same UIDs finds again.
/// Readers see the file as the schema `mail`, attached to every main
/// connection. PostgreSQL keeps the bytes in `inbound_raw`.
#[derive(Clone)]
pub(crate) struct MailFile {
    pub(crate) pool: AnyPool,
    pub(crate) lock: Arc<Mutex<()>>,
    /// Its path, attached to main connections.
    pub(super) path: Arc<str>,
    pub(super) checkpoints: Checkpointer,
}

impl MailFile {
    /// Starts a write transaction on the mail file, holding its lock.
    pub(crate) async fn begin(&self) -> Result<MailTx> {
        let guard = self.lock.clone().lock_owned().await;
        Ok(MailTx {
            conn: self.pool.begin_with("BEGIN IMMEDIATE").await?,
            checkpoints: self.checkpoints.clone(),
            _guard: guard,
        })
    }
}

/// A write transaction on the mail file (see [`MailFile`]).
pub(crate) struct MailTx {
    pub(crate) conn: sqlx::Transaction<'static, Any>,
    pub(super) checkpoints: Checkpointer,
    pub(super) _guard: OwnedMutexGuard<()>,
}

impl MailTx {
    /// Commits (flushed), and wakes the mail file's checkpointer.
    pub(crate) async fn commit(self) -> Result<()> {
        self.conn.commit().await?;
        self.checkpoints.wake.notify_one();
        Ok(())
    }
}

/// The path of a `sqlite:` URL's file, and that of its mail file.
pub(super) fn sqlite_paths(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") {
        // In-memory databases are per connection: the mail file could not be shared.
        return Err(StoreError::Url(url.to_string()));
    }
    Ok((path.to_string(), format!("{path}.mail")))
}

/// The page cache, in KiB, of each connection's view of the mail file.
pub(super) const MAIL_CACHE_KIB: u32 = 256;

impl MailFile {
    /// Opens (and creates, if missing) the mail file beside the database
    /// of a `sqlite:` URL.
    pub(super) async fn open(url: &str) -> Result<MailFile> {
        let (_, path) = sqlite_paths(url)?;
        let mail_url = format!("sqlite://{path}?mode=rwc");
        let pool = pool_options(
            Backend::Sqlite,
            &mail_url,
            2,
            Commits::Flushed,
            ForeignKeys::Checked,
            None,
        )
        .connect(&mail_url)
        .await?;
        // A raw mail is written once under a key no other mail has (see
        // `inbound::raw_key`) and read by that key; its row in the main file
        // names the key.
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS raw (key TEXT PRIMARY KEY, raw BLOB NOT NULL)")
            .execute(&pool)
            .await?;
        Ok(MailFile {
            pool,
            lock: Arc::new(Mutex::new(())),
            path: path.into(),
            checkpoints: Checkpointer::start(&mail_url).await?,
        })
    }
}
