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
