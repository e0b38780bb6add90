//! Requesters: the people who write in, created as their mail arrives,
//! their names, copies (CC) and undeliverable marks.

use super::*;

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

fn requester_from(row: &AnyRow) -> Result<Requester> {
    Ok(Requester {
        id: col(row, "id")?,
        email: crate::store::parsed(row, "email")?,
        first_name: col(row, "first_name")?,
        last_name: col(row, "last_name")?,
        undeliverable_at: opt(row, "undeliverable_at")?,
    })
}

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
    /// The requesters with these addresses.
    pub async fn requesters_by_emails(
        &mut self,
        emails: &[&EmailAddress],
    ) -> Result<Vec<Requester>> {
        let select = format!("SELECT {REQUESTER_COLS} FROM requesters");
        self.by_emails(&select, emails, requester_from).await
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
