//! Staff accounts, API tokens and requesters.

use sqlx::any::AnyRow;

use super::{Backend, Marks, Param, Result, Sql, Store, StoreError, Tx, col, opt};
use crate::domain::{EmailAddress, Role};

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

/// A requester (no account; known by address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub id: i64,
    pub email: EmailAddress,
    pub first_name: String,
    pub last_name: String,
    /// Set when a permanent bounce made the address undeliverable.
    pub undeliverable_at: Option<i64>,
}

impl Requester {
    /// "First Last", or the address when no name is known.
    pub fn display_name(&self) -> String {
        let name = format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_string();
        if name.is_empty() {
            self.email.to_string()
        } else {
            name
        }
    }
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

fn requester_from(row: &AnyRow) -> Result<Requester> {
    Ok(Requester {
        id: col(row, "id")?,
        email: super::parsed(row, "email")?,
        first_name: col(row, "first_name")?,
        last_name: col(row, "last_name")?,
        undeliverable_at: opt(row, "undeliverable_at")?,
    })
}

const USER_COLS: &str = "id, email, name, role, active";
const REQUESTER_COLS: &str = "id, email, first_name, last_name, undeliverable_at";

/// Splits a display name into first and last name at the last space.
fn split_name(name: &str) -> (String, String) {
    let name = name.trim();
    match name.rsplit_once(' ') {
        Some((first, last)) => (first.trim().to_string(), last.to_string()),
        None => (name.to_string(), String::new()),
    }
}

impl Store {
    /// Creates the requesters among `people` (address, display name) who do
    /// not exist yet, in one committed statement per 500 (PostgreSQL; on
    /// SQLite's single writer a batch creates them itself). A batch of mail
    /// does this before its transaction: a new requester inserted inside it
    /// would hold every other daemon's batch from the same address until it
    /// commits (and two such batches deadlock).
    pub async fn create_requesters(
        &self,
        people: &[(&EmailAddress, Option<&str>)],
        now: i64,
    ) -> Result<()> {
        if self.backend != Backend::Postgres || people.is_empty() {
            return Ok(());
        }
        let mut people = people.to_vec();
        // One order for every daemon: two statements never wait on each other in a circle.
        people.sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        people.dedup_by(|a, b| a.0 == b.0);
        let mut conn = self.pool.acquire().await?;
        for chunk in people.chunks(500) {
            let text = format!(
                "INSERT INTO requesters (email, first_name, last_name, created_at) VALUES {} \
                 ON CONFLICT (email) DO NOTHING",
                Marks::new(self.backend).rows(chunk.len(), 4)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(text)).persistent(false);
            for (email, name) in chunk {
                let (first, last) = split_name(name.unwrap_or_default());
                q = q.bind(email.as_str()).bind(first).bind(last).bind(now);
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

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

    /// The addresses CC'd on a ticket, in the order they joined.
    pub async fn cc_addresses(&self, ticket_id: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT r.email FROM participants p JOIN requesters r ON r.id = p.requester_id \
             WHERE p.ticket_id = $1 ORDER BY r.id",
        )
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The CC participants a reply-all reaches: address and name, those
    /// whose address bounces left out.
    pub async fn reply_all_cc(&self, ticket_id: i64) -> Result<Vec<(String, String)>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT r.email, r.first_name, r.last_name FROM participants p \
             JOIN requesters r ON r.id = p.requester_id \
             WHERE p.ticket_id = $1 AND r.undeliverable_at IS NULL ORDER BY r.id LIMIT 50",
        )
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(email, first, last)| (email, format!("{first} {last}").trim().to_string()))
            .collect())
    }

    /// The requester with this id.
    pub async fn requester(&self, id: i64) -> Result<Option<Requester>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REQUESTER_COLS} FROM requesters WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(requester_from).transpose()
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

    /// The requesters with these addresses.
    pub async fn requesters_by_emails(
        &mut self,
        emails: &[&EmailAddress],
    ) -> Result<Vec<Requester>> {
        let select = format!("SELECT {REQUESTER_COLS} FROM requesters");
        self.by_emails(&select, emails, requester_from).await
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

    /// Inserts a requester; `None` if the address is already known.
    async fn insert_requester(
        &mut self,
        email: &EmailAddress,
        first: &str,
        last: &str,
        now: i64,
    ) -> Result<Option<sqlx::any::AnyRow>> {
        Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO requesters (email, first_name, last_name, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (email) DO NOTHING RETURNING {REQUESTER_COLS}"
        )))
        .bind(email.as_str())
        .bind(first)
        .bind(last)
        .bind(now)
        .fetch_optional(&mut *self.conn)
        .await?)
    }

    /// The requester with this address, created if new. A name is filled in
    /// only where none was known, so a mail client's display name never
    /// overwrites what the requester typed in their profile. A known
    /// requester is only read, never locked: concurrent transactions mailing
    /// from the same address do not wait for each other. `likely_new`
    /// (a batch read its senders and did not find this one) tries the
    /// insert first: one statement rather than two.
    pub async fn upsert_requester(
        &mut self,
        email: &EmailAddress,
        name: Option<&str>,
        now: i64,
        likely_new: bool,
    ) -> Result<Requester> {
        let (first, last) = split_name(name.unwrap_or_default());
        if likely_new && let Some(row) = self.insert_requester(email, &first, &last, now).await? {
            return requester_from(&row);
        }
        let select = format!("SELECT {REQUESTER_COLS} FROM requesters WHERE email = $1");
        let found = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
            .bind(email.as_str())
            .fetch_optional(&mut *self.conn)
            .await?;
        let row = match found {
            Some(row) => row,
            None => {
                match self.insert_requester(email, &first, &last, now).await? {
                    Some(row) => return requester_from(&row),
                    // Another transaction created it meanwhile.
                    None => {
                        sqlx::query(sqlx::AssertSqlSafe(select))
                            .bind(email.as_str())
                            .fetch_one(&mut *self.conn)
                            .await?
                    }
                }
            }
        };
        let mut requester = requester_from(&row)?;
        if requester.first_name.is_empty()
            && requester.last_name.is_empty()
            && !(first.is_empty() && last.is_empty())
        {
            sqlx::query("UPDATE requesters SET first_name = $2, last_name = $3 WHERE id = $1 AND first_name = '' AND last_name = ''")
                .bind(requester.id)
                .bind(first.as_str())
                .bind(last.as_str())
                .execute(&mut *self.conn)
                .await?;
            requester.first_name = first;
            requester.last_name = last;
        }
        Ok(requester)
    }

    /// The CC participants of a ticket, in one query.
    pub async fn participants(&mut self, ticket_id: i64) -> Result<Vec<Requester>> {
        let cols = REQUESTER_COLS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {cols} FROM participants p JOIN requesters r ON r.id = p.requester_id \
             WHERE p.ticket_id = $1 ORDER BY r.id"
        )))
        .bind(ticket_id)
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter().map(requester_from).collect()
    }

    /// Marks an address undeliverable after a permanent bounce (requesters
    /// only; staff addresses are left to admins). Returns whether it was a requester.
    pub async fn mark_undeliverable(
        &mut self,
        email: &EmailAddress,
        reason: &str,
        now: i64,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE requesters SET undeliverable_at = $2, undeliverable_reason = $3 WHERE email = $1",
        )
        .bind(email.as_str())
        .bind(now)
        .bind(reason.chars().take(500).collect::<String>())
        .execute(&mut *self.conn)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// The requester with this id.
    pub async fn requester(&mut self, id: i64) -> Result<Requester> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REQUESTER_COLS} FROM requesters WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *self.conn)
        .await?;
        row.as_ref()
            .map(requester_from)
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt(format!("requester {id} is missing")))
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

#[cfg(test)]
mod tests {
    #[test]
    fn names_split_at_the_last_space() {
        assert_eq!(
            super::split_name(" Jane  van Doe "),
            ("Jane  van".into(), "Doe".into())
        );
        assert_eq!(super::split_name("Cher"), ("Cher".into(), String::new()));
    }
}
