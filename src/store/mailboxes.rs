//! Mailboxes: those declared in the config file (synchronised at start)
//! and those admins add at run time, with their polling state and last error.

use sqlx::Row;

use super::{Result, Store, StoreError};
use crate::config::{MailboxSettings, Secret};

/// A mailbox as stored.
#[derive(Debug, Clone)]
pub struct MailboxRow {
    pub id: i64,
    pub name: String,
    pub settings: MailboxSettings,
    pub from_config: bool,
    pub paused: bool,
    pub uidvalidity: Option<i64>,
    pub last_uid: Option<i64>,
    /// Highest UID whose post-processing on the server is done.
    pub done_uid: Option<i64>,
    pub last_ok_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
}

/// The settings as stored: like the masked form, but an inline secret is kept
/// (the database is where run-time mailboxes keep their credentials).
fn stored_json(m: &MailboxSettings) -> String {
    let mut v = serde_json::to_value(m).unwrap_or_default();
    let keep = |slot: &mut serde_json::Value, secret: Option<&Secret>| {
        if let Some(Secret::Inline(s)) = secret {
            *slot = serde_json::Value::String(s.clone());
        }
    };
    for (field, account) in [("imap", Some(&m.imap)), ("smtp", m.smtp.as_ref())] {
        let Some(a) = account else { continue };
        keep(&mut v[field]["password"], a.password.as_ref());
        if let Some(o) = &a.oauth2 {
            keep(
                &mut v[field]["oauth2"]["client_secret"],
                o.client_secret.as_ref(),
            );
            keep(
                &mut v[field]["oauth2"]["refresh_token"],
                Some(&o.refresh_token),
            );
        }
    }
    v.to_string()
}

fn row_from(r: &sqlx::any::AnyRow) -> Result<MailboxRow> {
    let json: String = r.try_get("settings")?;
    let settings = serde_json::from_str(&json)
        .map_err(|e| StoreError::Corrupt(format!("mailbox settings: {e}")))?;
    Ok(MailboxRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        settings,
        from_config: r.try_get::<i64, _>("from_config")? != 0,
        paused: r.try_get::<i64, _>("paused")? != 0,
        uidvalidity: r.try_get("uidvalidity")?,
        last_uid: r.try_get("last_uid")?,
        done_uid: r.try_get("done_uid")?,
        last_ok_at: r.try_get("last_ok_at")?,
        last_error: r.try_get("last_error")?,
        last_error_at: r.try_get("last_error_at")?,
    })
}

const COLS: &str = "id, name, settings, from_config, paused, uidvalidity, last_uid, done_uid, last_ok_at, last_error, last_error_at";

impl Store {
    /// Creates or updates a mailbox's settings, keeping its polling state.
    pub async fn upsert_mailbox(
        &self,
        m: &MailboxSettings,
        from_config: bool,
        now: i64,
    ) -> Result<i64> {
        let mut tx = self.begin().await?;
        let id = sqlx::query_scalar(
            "INSERT INTO mailboxes (name, address, settings, from_config, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET address = excluded.address, settings = excluded.settings, \
             from_config = excluded.from_config RETURNING id",
        )
        .bind(m.name.as_str())
        .bind(m.address.as_str())
        .bind(stored_json(m))
        .bind(i64::from(from_config))
        .bind(now)
        .fetch_one(&mut *tx.conn)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Every mailbox, by name.
    pub async fn mailboxes(&self) -> Result<Vec<MailboxRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM mailboxes ORDER BY name"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_from).collect()
    }

    /// The mailbox with this name.
    pub async fn mailbox_by_name(&self, name: &str) -> Result<Option<MailboxRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM mailboxes WHERE name = $1"
        )))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_from).transpose()
    }

    /// The mailbox with this id.
    pub async fn mailbox(&self, id: i64) -> Result<Option<MailboxRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM mailboxes WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_from).transpose()
    }

    /// Records the IMAP position reached (inside the transaction that
    /// stored the mails up to it).
    pub async fn set_mailbox_position(
        &self,
        tx: &mut super::Tx,
        id: i64,
        uidvalidity: i64,
        last_uid: i64,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE mailboxes SET uidvalidity = $2, last_uid = $3, last_ok_at = $4, last_error = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(uidvalidity)
        .bind(last_uid)
        .bind(now)
        .execute(&mut *tx.conn)
        .await?;
        Ok(())
    }

    /// Starts a mailbox afresh at a UIDVALIDITY: `last_uid` and `done_uid` set to `from`.
    pub async fn reset_mailbox_position(
        &self,
        id: i64,
        uidvalidity: i64,
        from: i64,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE mailboxes SET uidvalidity = $2, last_uid = $3, done_uid = $3, last_ok_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(uidvalidity)
        .bind(from)
        .bind(now)
        .execute(&mut *tx.conn)
        .await?;
        tx.commit().await
    }

    /// Records that post-processing is done up to `done_uid`, and a healthy poll.
    pub async fn set_mailbox_done(&self, id: i64, done_uid: i64, now: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE mailboxes SET done_uid = $2, last_ok_at = $3, last_error = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(done_uid)
        .bind(now)
        .execute(&mut *tx.conn)
        .await?;
        tx.commit().await
    }

    /// Records a mailbox's last error (shown by `mailbox list` and `/readyz`).
    pub async fn set_mailbox_error(&self, id: i64, error: &str, now: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE mailboxes SET last_error = $2, last_error_at = $3 WHERE id = $1")
            .bind(id)
            .bind(error.chars().take(500).collect::<String>())
            .bind(now)
            .execute(&mut *tx.conn)
            .await?;
        tx.commit().await
    }

    /// Pauses or resumes a mailbox. Returns whether it exists.
    pub async fn set_mailbox_paused(&self, name: &str, paused: bool) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE mailboxes SET paused = $2 WHERE name = $1")
            .bind(name)
            .bind(i64::from(paused))
            .execute(&mut *tx.conn)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Removes a mailbox (its tickets and stored mail stay). Returns whether it existed.
    pub async fn remove_mailbox(&self, name: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM mailboxes WHERE name = $1")
            .bind(name)
            .execute(&mut *tx.conn)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }
}
