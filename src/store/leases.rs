//! Expiring leases: named pieces of work (a mailbox, the scheduler) held by
//! one daemon at a time, taken over when the holder stops renewing.

use super::{Result, Store};

/// Prefix of the lease every live daemon renews.
pub const DAEMON_PREFIX: &str = "daemon:";
/// Prefix of a mailbox's polling lease; the mailbox id follows.
pub const MAILBOX_PREFIX: &str = "mailbox:";

/// The name of mailbox `id`'s lease.
pub fn mailbox_lease(id: i64) -> String {
    format!("{MAILBOX_PREFIX}{id}")
}

/// The mailbox id of a lease name, if it is a mailbox lease.
pub fn lease_mailbox(name: &str) -> Option<i64> {
    name.strip_prefix(MAILBOX_PREFIX)?.parse().ok()
}

impl Store {
    /// Takes or renews the lease `name` for `holder` until `now + ttl_ms`.
    /// Succeeds when the lease is free, expired or already ours.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
        )
        .bind(name)
        .bind(holder)
        .bind(now.saturating_add(ttl_ms))
        .bind(now)
        .execute(&mut *tx.conn)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done == 1)
    }

    /// Gives a lease up early (on clean shutdown) so another daemon need not wait.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&mut *tx.conn)
            .await?;
        tx.commit().await
    }

    /// Who holds a lease now, if anyone.
    pub async fn lease_holder(&self, name: &str, now: i64) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT holder FROM leases WHERE name = $1 AND expires_at > $2")
                .bind(name)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

/// One lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub expires_at: i64,
}

impl Store {
    /// Every lease not yet expired whose name starts with `prefix` (one of
    /// our own prefixes: it must hold no `%` or `_`).
    pub async fn live_leases(&self, prefix: &str, now: i64) -> Result<Vec<Lease>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT name, holder, expires_at FROM leases \
             WHERE expires_at > $1 AND name LIKE $2 ORDER BY name",
        )
        .bind(now)
        .bind(format!("{prefix}%"))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, holder, expires_at)| Lease {
                name,
                holder,
                expires_at,
            })
            .collect())
    }
}

/// The advisory lock that orders mail processing across daemons.
const PROCESSING_LOCK: i64 = 0x706f_7374_6465_736b; // "postdesk"

/// One daemon's turn to process stored mail (PostgreSQL): an advisory lock
/// held on a connection of its own from the claim to the commit, so that
/// batches are processed one at a time across daemons, in arrival order — a
/// reply never overtakes the mail that opened its ticket. A daemon that dies
/// holding it loses its connection, and with it the lock.
pub struct ProcessingTurn {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
}

impl ProcessingTurn {
    /// Whether the turn excludes every other processor (PostgreSQL): then
    /// any claim found on a waiting mail was left by a turn that died, and
    /// may be taken over at once rather than after it lapses.
    pub fn exclusive(&self) -> bool {
        self.conn.is_some()
    }

    /// Ends the turn; the connection goes back to the pool unlocked.
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(PROCESSING_LOCK)
                .execute(&mut *conn)
                .await;
            if unlocked.is_err() {
                // Never hand a possibly locked connection to someone else.
                drop(conn.detach());
            }
        }
    }
}

impl Drop for ProcessingTurn {
    fn drop(&mut self) {
        // Dropped without release (an error, a cancelled task): close the
        // connection, which frees the lock on the server.
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

impl Store {
    /// Waits up to `wait` for this daemon's turn to process stored mail.
    /// `Ok(None)` when another daemon kept it all that time; on SQLite (one
    /// daemon) the turn is always free and holds nothing.
    pub async fn processing_turn(
        &self,
        wait: std::time::Duration,
    ) -> Result<Option<ProcessingTurn>> {
        if self.backend != super::Backend::Postgres {
            return Ok(Some(ProcessingTurn { conn: None }));
        }
        let mut conn = self.pool.acquire().await?;
        // `pg_advisory_lock` returns void, which no driver type carries: count it.
        let locked = tokio::time::timeout(
            wait,
            sqlx::query("SELECT COUNT(*) FROM (SELECT pg_advisory_lock($1)) AS turn")
                .bind(PROCESSING_LOCK)
                .execute(&mut *conn),
        )
        .await;
        match locked {
            Ok(Ok(_)) => Ok(Some(ProcessingTurn { conn: Some(conn) })),
            Ok(Err(e)) => {
                drop(conn.detach());
                Err(e.into())
            }
            // Still waiting: closing the connection withdraws the request.
            Err(_) => {
                drop(conn.detach());
                Ok(None)
            }
        }
    }
}
