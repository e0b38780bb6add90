//! @mentions of agents in internal notes: who was named where, and whether
//! they have looked since (the console's mark).

use super::{Result, Store, Tx, col, opt};
use crate::domain::TicketRef;
use crate::domain::mention::Mentionable;

/// A mention as the agent's list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    pub ticket: TicketRef,
    pub subject: String,
    /// Who wrote the note (their name, else address).
    pub by: String,
    /// The note's text.
    pub text: String,
    pub at: i64,
    pub seen: bool,
}

impl Tx {
    /// The active staff accounts, as mentions name them.
    pub async fn mentionable(&mut self) -> Result<Vec<Mentionable>> {
        let rows = sqlx::query("SELECT id, email, name FROM users WHERE active = 1 ORDER BY id")
            .fetch_all(&mut *self.conn)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Mentionable {
                    id: col(r, "id")?,
                    email: col(r, "email")?,
                    name: col(r, "name")?,
                })
            })
            .collect()
    }

    /// Records that note `message` of `ticket`, by `by`, names `users`.
    pub async fn record_mentions(
        &mut self,
        ticket: i64,
        message: i64,
        by: i64,
        users: &[i64],
        now: i64,
    ) -> Result<()> {
        // The note is held back until the commit: written first, as the
        // mentions name it.
        self.flush_messages().await?;
        for user in users {
            sqlx::query(
                "INSERT INTO mentions (user_id, ticket_id, message_id, by_user_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(user)
            .bind(ticket)
            .bind(message)
            .bind(by)
            .bind(now)
            .execute(&mut *self.conn)
            .await?;
        }
        Ok(())
    }
}

impl Store {
    /// How many mentions of `user` they have not looked at.
    pub async fn mentions_unseen(&self, user: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM mentions WHERE user_id = $1 AND seen_at IS NULL",
        )
        .bind(user)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The latest mentions of `user` (unseen first), at most `limit`.
    pub async fn mentions_of(&self, user: i64, limit: i64) -> Result<Vec<Mention>> {
        let rows = sqlx::query(
            "SELECT t.number, t.subject, m.body_text, x.created_at, x.seen_at, \
             COALESCE(NULLIF(u.name, ''), u.email, '') AS by_name \
             FROM mentions x JOIN tickets t ON t.id = x.ticket_id \
             JOIN messages m ON m.id = x.message_id \
             LEFT JOIN users u ON u.id = x.by_user_id \
             WHERE x.user_id = $1 \
             ORDER BY (CASE WHEN x.seen_at IS NULL THEN 0 ELSE 1 END), x.id DESC LIMIT $2",
        )
        .bind(user)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Mention {
                    ticket: TicketRef::new(&self.prefix, col(r, "number")?),
                    subject: col(r, "subject")?,
                    by: col(r, "by_name")?,
                    text: col(r, "body_text")?,
                    at: col(r, "created_at")?,
                    seen: opt::<i64>(r, "seen_at")?.is_some(),
                })
            })
            .collect()
    }

    /// Marks `user`'s mentions on `ticket` seen (they opened it).
    pub async fn mentions_seen(&self, user: i64, ticket: i64, now: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE mentions SET seen_at = $3 WHERE user_id = $1 AND ticket_id = $2 \
             AND seen_at IS NULL",
        )
        .bind(user)
        .bind(ticket)
        .bind(now)
        .execute(&mut *tx.conn)
        .await?;
        tx.commit().await
    }
}
