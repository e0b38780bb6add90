//! Staff accounts, API tokens and requesters.

use sqlx::any::AnyRow;

use super::{Result, Store, StoreError, Tx, col, opt};
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

    /// The requester with this address, created if new. A name is filled in
    /// only where none was known, so a mail client's display name never
    /// overwrites what the requester typed in their profile. A known
    /// requester is only read, never locked: concurrent transactions mailing
    /// from the same address do not wait for each other.
    pub async fn upsert_requester(
        &mut self,
        email: &EmailAddress,
        name: Option<&str>,
        now: i64,
    ) -> Result<Requester> {
        let (first, last) = split_name(name.unwrap_or_default());
        let select = format!("SELECT {REQUESTER_COLS} FROM requesters WHERE email = $1");
        let found = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
            .bind(email.as_str())
            .fetch_optional(&mut *self.conn)
            .await?;
        let row = match found {
            Some(row) => row,
            None => {
                let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO requesters (email, first_name, last_name, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (email) DO NOTHING RETURNING {REQUESTER_COLS}"
                )))
                .bind(email.as_str())
                .bind(first.as_str())
                .bind(last.as_str())
                .bind(now)
                .fetch_optional(&mut *self.conn)
                .await?;
                match inserted {
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
