//! Staff accounts and API tokens; requesters in `users/requesters.rs`.

use sqlx::any::AnyRow;

use super::{Backend, Marks, Param, Result, Sql, Store, StoreError, Tx, col, opt};
use crate::domain::{EmailAddress, Role};

mod requesters;

pub use requesters::Requester;

/// A staff account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub email: EmailAddress,
    pub name: String,
    pub role: Role,
    pub active: bool,
}

/// A new staff account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: EmailAddress,
    pub name: String,
    pub role: Role,
    /// An argon2id PHC string, never the password itself.
    pub password_hash: String,
}

/// A staff account as signing in sees it.
#[derive(Debug, Clone)]
pub struct StaffLogin {
    pub user: User,
    /// `None` for an account that has no password (API only).
    pub password_hash: Option<String>,
    /// Failed attempts in a row.
    pub failed: i64,
    pub locked_until: Option<i64>,
}

/// An API token as its owner sees it later (the secret is shown once, at creation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub label: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

fn user_from(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: col(row, "id")?,
        email: super::parsed(row, "email")?,
        name: col(row, "name")?,
        role: super::parsed(row, "role")?,
        active: col::<i64>(row, "active")? != 0,
    })
}

const USER_COLS: &str = "id, email, name, role, active";
impl Store {
    /// Creates a staff account; a duplicate address is a unique violation.
    pub async fn insert_user(&self, user: &NewUser, now: i64) -> Result<User> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO users (email, name, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING {USER_COLS}"
        )))
        .bind(user.email.as_str())
        .bind(user.name.as_str())
        .bind(user.role.as_str())
        .bind(user.password_hash.as_str())
        .bind(now)
        .fetch_one(&mut *tx.conn)
        .await?;
        let user = user_from(&row)?;
        tx.commit().await?;
        Ok(user)
    }

    /// The staff account with this address.
    pub async fn user_by_email(&self, email: &EmailAddress) -> Result<Option<User>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users WHERE email = $1"
        )))
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from).transpose()
    }

    /// Stores the hash of a new API token for a user.
    pub async fn insert_api_token(
        &self,
        user_id: i64,
        token_hash: &str,
        label: &str,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO api_tokens (user_id, token_hash, label, created_at) VALUES ($1, $2, $3, $4)")
            .bind(user_id)
            .bind(token_hash)
            .bind(label)
            .bind(now)
            .execute(&mut *tx.conn)
            .await?;
        tx.commit().await
    }

    /// The active user owning an unrevoked token with this hash.
    pub async fn user_by_token_hash(&self, token_hash: &str) -> Result<Option<User>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM users u JOIN api_tokens t ON t.user_id = u.id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.active = 1",
            USER_COLS
                .split(", ")
                .map(|c| format!("u.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from).transpose()
    }

    /// What signing in needs to know of an account: its password hash,
    /// failed attempts in a row and lock.
    pub async fn staff_login(&self, email: &EmailAddress) -> Result<Option<StaffLogin>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLS}, password_hash, failed_logins, locked_until FROM users WHERE email = $1"
        )))
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(StaffLogin {
                user: user_from(&r)?,
                password_hash: opt(&r, "password_hash")?,
                failed: col::<i64>(&r, "failed_logins")?,
                locked_until: opt(&r, "locked_until")?,
            })
        })
        .transpose()
    }

    /// Counts a failed sign-in in one statement (parallel failures never
    /// overwrite each other's count); returns the failures in a row.
    pub async fn count_failed_login(&self, user_id: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Records a sign-in's outcome: a failure counts (and may lock the
    /// account until `lock_until`), a success clears the count.
    pub async fn record_login(
        &self,
        user_id: i64,
        ok: bool,
        lock_until: Option<i64>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let sql = if ok {
            "UPDATE users SET failed_logins = 0, locked_until = $2 WHERE id = $1"
        } else {
            "UPDATE users SET failed_logins = failed_logins + 1, locked_until = $2 WHERE id = $1"
        };
        sqlx::query(sql)
            .bind(user_id)
            .bind(lock_until)
            .execute(&mut *tx.conn)
            .await?;
        tx.commit().await
    }

    /// The active staff account with this id.
    pub async fn active_user(&self, id: i64) -> Result<Option<User>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users WHERE id = $1 AND active = 1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from).transpose()
    }

    /// Every staff account, by address.
    pub async fn users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users ORDER BY email"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from).collect()
    }

    /// Changes an account's name, role and whether it may sign in; a
    /// deactivated account's sessions end and its API tokens are revoked
    /// for good (reactivating it revives none).
    pub async fn update_user(
        &self,
        id: i64,
        name: &str,
        role: Role,
        active: bool,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE users SET name = $2, role = $3, active = $4 WHERE id = $1")
            .bind(id)
            .bind(name)
            .bind(role.as_str())
            .bind(i64::from(active))
            .execute(&mut *tx.conn)
            .await?
            .rows_affected();
        if !active {
            end_credentials(&mut tx, id, now).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Sets an account's password (an argon2id PHC string) and unlocks it;
    /// every session of the account ends and its API tokens are revoked
    /// (whoever held the old password holds nothing now).
    pub async fn set_password_hash(&self, id: i64, hash: &str, now: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        end_credentials(&mut tx, id, now).await?;
        write_password(&mut tx, id, hash).await?;
        tx.commit().await
    }

    /// The password hash of active staff account `id`, to check its
    /// owner's current password before a change.
    pub async fn user_password_hash(&self, id: i64) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1 AND active = 1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// An agent changes their own password: the new hash, and every other
    /// session of theirs ended (the one whose cookie digest is `keep` goes
    /// on; API tokens stay, as they were made on purpose). Returns how many
    /// sessions ended.
    pub async fn change_own_password(&self, id: i64, hash: &str, keep: &str) -> Result<u64> {
        let mut tx = self.begin().await?;
        write_password(&mut tx, id, hash).await?;
        let ended = sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind(id)
            .bind(keep)
            .execute(&mut *tx.conn)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(ended)
    }

    /// A staff account's notification preferences (`{"notice": false}`,
    /// decision 0014).
    pub async fn user_notify_prefs(&self, id: i64) -> Result<String> {
        let prefs: Option<String> =
            sqlx::query_scalar("SELECT notify_prefs FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(prefs.unwrap_or_else(|| "{}".into()))
    }

    /// Saves a staff account's notification preferences.
    pub async fn set_user_notify_prefs(&self, id: i64, prefs: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE users SET notify_prefs = $2 WHERE id = $1")
            .bind(id)
            .bind(prefs)
            .execute(&mut *tx.conn)
            .await?;
        tx.commit().await
    }

    /// A user's API tokens, newest first (never the token: only its label and dates).
    pub async fn api_tokens(&self, user_id: i64) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(
            "SELECT id, label, created_at, last_used_at, revoked_at FROM api_tokens \
             WHERE user_id = $1 ORDER BY id DESC",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApiToken {
                    id: col(r, "id")?,
                    label: col(r, "label")?,
                    created_at: col(r, "created_at")?,
                    revoked_at: opt(r, "revoked_at")?,
                })
            })
            .collect()
    }

    /// Revokes one of a user's tokens; false when it is not theirs or gone.
    pub async fn revoke_api_token(&self, user_id: i64, token_id: i64, now: i64) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        )
        .bind(token_id)
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx.conn)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }
}

impl Tx {
    /// The staff account with this id.
    pub async fn user(&mut self, id: i64) -> Result<Option<User>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *self.conn)
        .await?;
        row.as_ref().map(user_from).transpose()
    }

    /// The staff account with this address.
    pub async fn user_by_email(&mut self, email: &EmailAddress) -> Result<Option<User>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users WHERE email = $1"
        )))
        .bind(email.as_str())
        .fetch_optional(&mut *self.conn)
        .await?;
        row.as_ref().map(user_from).transpose()
    }

    /// The staff accounts with these addresses, active or not (the gateway
    /// asks once per batch).
    pub async fn users_by_emails(&mut self, emails: &[&EmailAddress]) -> Result<Vec<User>> {
        self.by_emails(&format!("SELECT {USER_COLS} FROM users"), emails, user_from)
            .await
    }

    /// The rows of `select` whose `email` is one of `emails`, read by
    /// `from_row`: one round trip per 500 addresses.
    async fn by_emails<T>(
        &mut self,
        select: &str,
        emails: &[&EmailAddress],
        from_row: fn(&AnyRow) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut found = Vec::new();
        for chunk in emails.chunks(500) {
            let mut sql = Sql::for_backend(self.backend);
            sql.push(select)
                .push(" WHERE email IN ")
                .bind_list(chunk.iter().map(|e| Param::Text(e.to_string())));
            for row in sql.query().fetch_all(&mut *self.conn).await? {
                found.push(from_row(&row)?);
            }
        }
        Ok(found)
    }
}

/// Ends every session of staff account `id` and revokes its API tokens.
/// Sets a password hash, unlocking the account.
async fn write_password(tx: &mut Tx, id: i64, hash: &str) -> Result<()> {
    sqlx::query(
        "UPDATE users SET password_hash = $2, failed_logins = 0, locked_until = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(hash)
    .execute(&mut *tx.conn)
    .await?;
    Ok(())
}

async fn end_credentials(tx: &mut Tx, id: i64, now: i64) -> Result<()> {
    sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
        .bind(id)
        .execute(&mut *tx.conn)
        .await?;
    sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(id)
        .bind(now)
        .execute(&mut *tx.conn)
        .await?;
    Ok(())
}
