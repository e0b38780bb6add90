//! All the SQL. One `Store` over sqlx's `Any` driver speaks to SQLite or
//! PostgreSQL with the same statements (`$1` placeholders, `RETURNING`,
//! times as integer milliseconds, flags as 0/1); the few places where the
//! backends differ (row locks, pragmas) ask [`Backend`]. Nothing outside this
//! module knows which database it talks to.
//!
//! Decision: the `Any` driver rather than an enum of pools. It keeps one text
//! per query, costs nothing measurable here (FACTS.md), and its type limits
//! (integers, floats, text, bytes) suit a schema that stores times as numbers.

pub mod canned;
pub mod customers;
pub mod events;
pub mod inbound;
pub mod leases;
pub mod mailboxes;
pub mod mentions;
mod nodelay;
pub mod outbox;
pub mod ratings;
pub mod reports;
pub mod sessions;
pub mod status;
pub mod tickets;
pub mod users;
pub mod views;

mod migrate;
mod settings;
mod sql;
mod sqlite;

pub use migrate::SEARCH_CATCH_UP;
use migrate::{catch_up_search, migrator};
pub(crate) use sql::{Marks, Param, Sql, col, opt, parsed, power_of_two_chunks};
pub(crate) use sqlite::{Checkpointer, MailFile, MailTx};
use sqlite::{MAIL_CACHE_KIB, WAL_AUTOCHECKPOINT};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyPool, Row};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

pub use tickets::{
    AssigneeFilter, NewMessage, NewTicket, SortKey, StoredMessage, Ticket, TicketFilter,
    TicketSummary,
};
pub use users::{ApiToken, NewUser, Requester, StaffLogin, User};

/// Which database a store talks to. Only `store` looks at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `OR FAIL ` on SQLite (nothing on PostgreSQL), for the writes ingest
    /// makes per mail and per batch. A statement that may fail after it
    /// wrote (a trigger, several rows, a constraint whose failure undoes the
    /// statement) makes SQLite copy every page it touches into a statement
    /// journal first, to undo it alone: 15% of the ingest processor's SQLite
    /// time. Under `OR FAIL` a failing statement keeps what it wrote, which
    /// needs no such copy; no caller goes on after a failed statement
    /// without undoing its transaction or rolling back to its savepoint.
    /// (A foreign key checked immediately asks for the journal too: see
    /// [`ForeignKeys`].)
    pub(crate) fn or_fail(self) -> &'static str {
        match self {
            Backend::Sqlite => "OR FAIL ",
            Backend::Postgres => "",
        }
    }
}

/// Whether a SQLite connection's commits reach the disk before they return
/// (PostgreSQL's are, always).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commits {
    /// `synchronous = FULL`: every commit flushes the log. For every
    /// connection whose commit is followed by an acknowledgement to the
    /// outside: a poller's before it flags or moves the mail on the IMAP
    /// server, an HTTP answer, the outbox's claim before a mail is sent.
    Flushed,
    /// `synchronous = NORMAL`: a commit survives the process being killed;
    /// a power cut may undo it unless a flushed commit came after (the log
    /// is written in order, and flushing it flushes what is before). For
    /// work that acknowledges nothing and is redone from stored input: the
    /// ingest processor, whose undone batch would be processed again from
    /// the raw mail kept (its notifications are claimed, and so flushed,
    /// before any is sent).
    Unflushed,
}

/// Whether a SQLite connection checks foreign keys (PostgreSQL's always do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignKeys {
    /// Checked as each statement runs: every connection but the one below.
    Checked,
    /// Not checked: the ingest processor's. Each row it writes names a
    /// parent it read or wrote earlier in the same transaction, under
    /// SQLite's one write lock, and it deletes nothing, so nothing it does
    /// can break a key (the tests run ingest with them checked, too). A key
    /// checked at once would make each INSERT that also fires a trigger
    /// (a message, a ticket) copy the pages it touches into a statement
    /// journal first, whatever `OR FAIL` says (see `Backend::or_fail`).
    Unchecked,
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://USER@HOST/DB")]
    Url(String),
    #[error("stored value is not valid: {0}")]
    Corrupt(String),
    /// A task working for the store stopped (a runtime shutting down, a
    /// panic): trying again may succeed.
    #[error("a background task stopped: {0}")]
    TaskStopped(String),
}

impl StoreError {
    /// Whether trying again later may succeed (connection trouble, a busy
    /// database), as opposed to a fault in the data or the query.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Db(e) => {
                matches!(
                    e,
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::WorkerCrashed
                ) || e.as_database_error().is_some_and(|d| {
                    let code = d.code().unwrap_or_default();
                    // SQLite busy/locked; PostgreSQL serialization failure, deadlock, too many connections.
                    matches!(
                        code.as_ref(),
                        "5" | "6" | "517" | "40001" | "40P01" | "53300"
                    )
                })
            }
            StoreError::TaskStopped(_) => true,
            _ => false,
        }
    }

    /// Whether the error is a unique-constraint violation (a duplicate).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Db(e) if e.as_database_error().is_some_and(|d| d.is_unique_violation()))
    }
}

/// Result type of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The handle to the database: cheap to clone, shared by every task.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time; serialising write transactions
    /// inside the process avoids busy errors and lock-upgrade deadlocks.
    /// PostgreSQL needs no such lock.
    write_lock: Option<Arc<Mutex<()>>>,
    /// Reference prefix, to print and parse `TKT-1042`.
    prefix: Arc<str>,
    /// The URL the pool was opened with, for [`Store::dedicated`] (it may
    /// hold a password: never printed).
    url: Arc<str>,
    /// SQLite: the file raw mail is kept in (see [`MailFile`]).
    mail: Option<MailFile>,
    /// SQLite: wakes the checkpointer (see [`Checkpointer`]) after a commit.
    checkpoints: Option<Checkpointer>,
    /// Whether this store opened `mail` and the checkpointer (a dedicated
    /// store shares them, and leaves closing them to the store it came from).
    primary: bool,
    /// Told when a transaction that queued mail commits: this daemon's
    /// outbox worker starts at once instead of at its next poll.
    outbox_queued: Arc<tokio::sync::Notify>,
    /// Where committed changes are told (see [`events`]).
    bus: events::Bus,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// A write transaction. Dropping it without [`Tx::commit`] rolls back.
pub struct Tx {
    pub(crate) conn: sqlx::Transaction<'static, Any>,
    pub(crate) backend: Backend,
    pub(crate) prefix: Arc<str>,
    /// (ticket, requester) pairs known to be participants in this
    /// transaction: the gateway's match and the reply's own check ask the
    /// same question of the same mail, a batch reads those of the tickets
    /// its mails name, and a ticket opened here knows its requester.
    /// Forgotten on a savepoint rollback.
    pub(crate) participants: std::collections::HashSet<(i64, i64)>,
    /// Notifications held back to be written together at the commit (see
    /// [`Tx::defer_notifications`]); `None` writes each at once.
    pub(crate) deferred: Option<Deferred>,
    /// Messages held back to be written together (see
    /// [`Tx::defer_messages`]); `None` writes each at once.
    pub(crate) messages: Option<tickets::HeldMessages>,
    /// SQLite: the mail file, and the transaction on it this one opened to
    /// keep raw mail (committed just before this one).
    pub(crate) mail: Option<MailFile>,
    pub(crate) mail_tx: Option<MailTx>,
    checkpoints: Option<Checkpointer>,
    /// SQLite: a ticket or message was written, so the commit brings the
    /// full-text documents up to date first ([`SEARCH_CATCH_UP`]).
    pub(crate) search_behind: bool,
    /// Mail was queued to the outbox: the commit wakes the worker.
    pub(crate) queued: bool,
    outbox_queued: Arc<tokio::sync::Notify>,
    /// Changes to tell once committed (see [`events`]).
    pub(crate) live: Vec<events::LiveEvent>,
    pub(crate) bus: events::Bus,
    _guard: Option<OwnedMutexGuard<()>>,
    /// When the transaction began (after the write lock, on SQLite).
    started: std::time::Instant,
}

/// Notifications a transaction writes at its commit, and how many of them
/// came before its open savepoint (a rollback to it drops the rest).
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    pub(crate) notifications: Vec<outbox::Notification>,
    pub(crate) before_savepoint: usize,
}

impl Tx {
    /// Commits the transaction, with the notifications it held back.
    pub async fn commit(mut self) -> Result<()> {
        self.flush_messages().await?;
        if let Some(deferred) = self.deferred.take() {
            outbox::insert_all(&mut self.conn, self.backend, &deferred.notifications).await?;
        }
        if self.search_behind {
            catch_up_search(&mut self.conn).await?;
        }
        // The bytes first: a row never names bytes that are not there.
        if let Some(mail_tx) = self.mail_tx.take() {
            mail_tx.commit().await?;
        }
        self.notify_changes().await?;
        let committing = std::time::Instant::now();
        let told = self.told_after_commit();
        self.conn.commit().await?;
        for e in told {
            let _ = self.bus.send(e);
        }
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.wake.notify_one();
        }
        if self.queued {
            self.outbox_queued.notify_one();
        }
        if self._guard.is_some() {
            // SQLite's one write lock is what ingest waits on: who held it, how long.
            tracing::debug!(
                thread = std::thread::current().name().unwrap_or("?"),
                held = ?self.started.elapsed(),
                commit = ?committing.elapsed(),
                "write lock released"
            );
        }
        Ok(())
    }

    /// Holds the outbox rows this transaction enqueues back until its
    /// commit, which writes them in a few multi-row statements: a batch of
    /// mails enqueues one or more per mail, and nothing reads the outbox
    /// inside a transaction.
    pub fn defer_notifications(&mut self) {
        self.deferred.get_or_insert_with(Deferred::default);
    }
}

/// The pool options for a backend: SQLite's pragmas on every connection,
/// TCP_NODELAY on PostgreSQL's sockets. SQLite keeps its temporary files in
/// memory: those are mostly statement journals (the pages a statement in a
/// larger transaction changes, kept until it ends), which as files took 64%
/// of the ingest's write calls (365 of 573 MB for 3,000 mails).
/// `attach`: SQLite, the mail file to attach as `mail`.
fn pool_options(
    backend: Backend,
    url: &str,
    max_connections: u32,
    commits: Commits,
    foreign_keys: ForeignKeys,
    attach: Option<Arc<str>>,
) -> AnyPoolOptions {
    let mut options = AnyPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(10));
    if backend == Backend::Sqlite {
        let synchronous = match commits {
            Commits::Flushed => "FULL",
            Commits::Unflushed => "NORMAL",
        };
        let fk = match foreign_keys {
            ForeignKeys::Checked => "ON",
            ForeignKeys::Unchecked => "OFF",
        };
        // Raw mail is written once and read once: a small page cache for
        // it where the main file's connections attach it, and on the
        // connections that attach nothing (the mail file's own, the
        // checkpointer's, which reads only the log). SQLite's default, 2 MB
        // per connection and schema, filled up with pages never read again.
        let attach = match attach {
            Some(path) => format!(
                "ATTACH DATABASE '{}' AS mail; PRAGMA mail.cache_size = -{MAIL_CACHE_KIB};",
                path.replace('\'', "''")
            ),
            None => format!("PRAGMA cache_size = -{MAIL_CACHE_KIB};"),
        };
        options = options.after_connect(move |conn, _| {
            let attach = attach.clone();
            Box::pin(async move {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
                     PRAGMA foreign_keys = {fk}; PRAGMA busy_timeout = 10000; \
                     PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT}; {attach}"
                )))
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        });
    }
    if let Some(port) = (backend == Backend::Postgres)
        .then(|| nodelay::tcp_port(url))
        .flatten()
    {
        options = options.after_connect(move |_, _| {
            Box::pin(async move {
                nodelay::set_on_sockets_to(port);
                Ok(())
            })
        });
    }
    options
}

impl Store {
    /// Opens a pool for `url` (`sqlite://PATH`, created if missing, or
    /// `postgres://…`). Does not migrate.
    pub async fn connect(url: &str, max_connections: u32, prefix: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let sep = if rest.contains('?') { '&' } else { '?' };
            let url = if rest.contains("mode=") {
                url.to_string()
            } else {
                format!("{url}{sep}mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        let mail = match backend {
            Backend::Sqlite => Some(MailFile::open(&url).await?),
            Backend::Postgres => None,
        };
        let attach = mail.as_ref().map(|m| m.path.clone());
        let pool = pool_options(
            backend,
            &url,
            max_connections,
            Commits::Flushed,
            ForeignKeys::Checked,
            attach,
        )
        .connect(&url)
        .await?;
        let write_lock = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        let checkpoints = match backend {
            Backend::Sqlite => Some(Checkpointer::start(&url).await?),
            Backend::Postgres => None,
        };
        Ok(Store {
            pool,
            backend,
            write_lock,
            prefix: prefix.to_ascii_uppercase().into(),
            url: url.into(),
            mail,
            checkpoints,
            primary: true,
            outbox_queued: Arc::default(),
            bus: events::bus(),
        })
    }

    /// A store with a pool of its own, opened from the calling task (so on
    /// its runtime and, for SQLite, with its worker threads started from
    /// the calling thread, inheriting its CPU affinity), that shares this
    /// store's write lock: the ingest processor's, on a thread of its own.
    /// `commits`: whether each of its SQLite commits is flushed to disk
    /// before it returns (see [`Commits`]); `foreign_keys`: whether SQLite
    /// checks them (see [`ForeignKeys`]).
    pub async fn dedicated(
        &self,
        max_connections: u32,
        commits: Commits,
        foreign_keys: ForeignKeys,
    ) -> Result<Store> {
        let attach = self.mail.as_ref().map(|m| m.path.clone());
        let pool = pool_options(
            self.backend,
            &self.url,
            max_connections,
            commits,
            foreign_keys,
            attach,
        )
        .connect(&self.url)
        .await?;
        Ok(Store {
            pool,
            primary: false,
            ..self.clone()
        })
    }

    /// Resolves when a transaction of this daemon that queued mail has
    /// committed since the last call (the outbox worker's wake-up; other
    /// daemons' mail is found by its poll).
    pub async fn outbox_queued(&self) {
        self.outbox_queued.notified().await
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<()> {
        migrator(self.backend).run(&self.pool).await?;
        self.catch_up_search().await
    }

    /// `FOR UPDATE SKIP LOCKED` on PostgreSQL, where daemons claim work side
    /// by side; nothing on SQLite, whose one writer already excludes them.
    pub(crate) fn skip_locked(&self) -> &'static str {
        if self.backend == Backend::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        }
    }

    /// Which backend this is (for `store` internals, status output and tests).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The reference prefix this store prints.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx> {
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let mut conn = self.pool.begin().await?;
        if self.backend == Backend::Sqlite {
            // The main file's write lock taken first, where SQLite waits for
            // it (busy_timeout): a transaction that read first fails at once
            // with "database is locked" when its first write finds the lock
            // held, and it can still be held after the in-process lock was
            // released (a dropped transaction's rollback runs after the
            // drop, on SQLite's worker thread). Not `BEGIN IMMEDIATE`: that
            // would take the attached mail file's lock too.
            sqlx::query("UPDATE counters SET value = value WHERE 0")
                .execute(&mut *conn)
                .await?;
        }
        Ok(Tx {
            conn,
            backend: self.backend,
            prefix: self.prefix.clone(),
            participants: Default::default(),
            deferred: None,
            messages: None,
            mail: self.mail.clone(),
            mail_tx: None,
            checkpoints: self.checkpoints.clone(),
            search_behind: false,
            queued: false,
            outbox_queued: self.outbox_queued.clone(),
            live: Vec::new(),
            bus: self.bus.clone(),
            _guard: guard,
            started: std::time::Instant::now(),
        })
    }

    /// Brings SQLite's full-text documents up to date with every ticket and
    /// message written so far (commits do it for what they write; this is
    /// for rows written by other means, such as a bench's bulk load).
    /// Nothing to do on PostgreSQL.
    pub async fn catch_up_search(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            let mut tx = self.begin().await?;
            tx.search_behind = true;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Round-trips to the database (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool (and the mail file's and the checkpointer's, if
    /// this store opened them), waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
        if !self.primary {
            return;
        }
        if let Some(mail) = &self.mail {
            mail.pool.close().await;
            mail.checkpoints.close().await;
        }
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.close().await;
        }
    }
}

/// Now, in milliseconds since the epoch: the one place the store reads the clock
/// is its callers; this helper exists for them.
pub fn now_millis() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
