//! The `settings` table: what admins change at run time, and the secrets
//! the daemons share.

use super::*;

impl Store {
    /// Reads a setting from the `settings` table.
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>(0)).transpose()?)
    }

    /// Stores `value` under `key`, replacing what was there.
    pub async fn put_setting(&self, key: &str, value: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&mut *tx.conn)
            .await?;
        tx.commit().await
    }

    /// Stores `value` under `key` unless a value is already there; returns
    /// the value that is stored afterwards (first writer wins).
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *tx.conn)
        .await?;
        let stored: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&mut *tx.conn)
            .await?;
        tx.commit().await?;
        Ok(stored)
    }
}
