//! Satisfaction ratings: what requesters answered to "How did we do?",
//! every answer kept (the latest is the ticket's).

use super::{Result, Store, col};

/// One rating of a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rating {
    pub id: i64,
    /// `true`: good; `false`: not good.
    pub good: bool,
    pub comment: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Store {
    /// Records a rating of `ticket` by `requester`; returns its id. Their
    /// rating given since the ticket was last resolved (`since`) is changed
    /// instead: one rating per resolution, a reopened and again resolved
    /// ticket rated anew, the earlier rating kept.
    pub async fn rate(
        &self,
        ticket: i64,
        requester: i64,
        good: bool,
        since: i64,
        now: i64,
    ) -> Result<i64> {
        let rating = if good { "good" } else { "bad" };
        let mut tx = self.begin().await?;
        let recent: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM ratings WHERE ticket_id = $1 AND requester_id = $2 AND created_at >= $3 \
             ORDER BY id DESC LIMIT 1",
        )
        .bind(ticket)
        .bind(requester)
        .bind(since)
        .fetch_optional(&mut *tx.conn)
        .await?;
        let id =
            match recent {
                Some(id) => {
                    sqlx::query("UPDATE ratings SET rating = $2, updated_at = $3 WHERE id = $1")
                        .bind(id)
                        .bind(rating)
                        .bind(now)
                        .execute(&mut *tx.conn)
                        .await?;
                    id
                }
                None => sqlx::query_scalar(
                    "INSERT INTO ratings (ticket_id, requester_id, rating, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $4) RETURNING id",
                )
                .bind(ticket)
                .bind(requester)
                .bind(rating)
                .bind(now)
                .fetch_one(&mut *tx.conn)
                .await?,
            };
        tx.changed(super::events::LiveEvent::Ticket {
            ticket,
            created: false,
        });
        tx.commit().await?;
        Ok(id)
    }

    /// Adds a comment to rating `id` of `ticket` given by `requester`
    /// (another participant's rating is not theirs to comment on); false if
    /// there is none.
    pub async fn comment_rating(
        &self,
        ticket: i64,
        requester: i64,
        id: i64,
        comment: &str,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE ratings SET comment = $3, updated_at = $4 WHERE id = $1 AND ticket_id = $2 \
             AND requester_id = $5",
        )
        .bind(id)
        .bind(ticket)
        .bind(comment)
        .bind(now)
        .bind(requester)
        .execute(&mut *tx.conn)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Whether `requester` takes part in `ticket` (its requester or a CC
    /// participant): who a rating link may be for.
    pub async fn takes_part(&self, ticket: i64, requester: i64) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM tickets WHERE id = $1 AND requester_id = $2) + \
             (SELECT COUNT(*) FROM participants WHERE ticket_id = $1 AND requester_id = $2)",
        )
        .bind(ticket)
        .bind(requester)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// A ticket's ratings, newest first.
    pub async fn ratings(&self, ticket: i64) -> Result<Vec<Rating>> {
        let rows = sqlx::query(
            "SELECT id, rating, comment, created_at, updated_at FROM ratings WHERE ticket_id = $1 \
             ORDER BY id DESC LIMIT 50",
        )
        .bind(ticket)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Rating {
                    id: col(r, "id")?,
                    good: col::<String>(r, "rating")? == "good",
                    comment: col(r, "comment")?,
                    created_at: col(r, "created_at")?,
                    updated_at: col(r, "updated_at")?,
                })
            })
            .collect()
    }
}
