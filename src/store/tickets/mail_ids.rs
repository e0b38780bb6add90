//! The mail ids (Message-IDs) known on tickets: which ticket a reply's
//! In-Reply-To or References names, and recording those a message carries.

use super::*;

impl Tx {
    /// The ticket a Message-ID belongs to, and whether postdesk sent it.
    pub async fn ticket_of_mail_id(&mut self, message_id: &str) -> Result<Option<(i64, bool)>> {
        self.flush_messages().await?;
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT ticket_id, direction FROM mail_ids WHERE message_id = $1")
                .bind(message_id)
                .fetch_optional(&mut *self.conn)
                .await?;
        Ok(row.map(|(id, direction)| (id, direction == "out")))
    }

    /// The tickets of several Message-IDs at once (one round trip).
    pub async fn tickets_of_mail_ids(&mut self, ids: &[&str]) -> Result<Vec<(String, i64)>> {
        Ok(self
            .mail_ids_known(ids)
            .await?
            .into_iter()
            .map(|(id, ticket, _)| (id, ticket))
            .collect())
    }

    /// The known ones of several Message-IDs (the first 100): each with its
    /// ticket and whether postdesk sent it. One round trip.
    pub async fn mail_ids_known(&mut self, ids: &[&str]) -> Result<Vec<(String, i64, bool)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Held messages record their Message-IDs (a trigger) when written.
        self.flush_messages().await?;
        let mut sql = Sql::for_backend(self.backend);
        sql.push("SELECT message_id, ticket_id, direction FROM mail_ids WHERE message_id IN ")
            .bind_list(
                ids.iter()
                    .take(100)
                    .map(|id| Param::Text((*id).to_string())),
            );
        let rows = sql.query().fetch_all(&mut *self.conn).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>(0)?,
                    r.try_get::<i64, _>(1)?,
                    r.try_get::<String, _>(2)? == "out",
                ))
            })
            .collect()
    }

    /// Remembers Message-IDs a mail referred to as belonging to its ticket
    /// (one statement), so that later replies naming only an ancestor that
    /// never reached postdesk still find the conversation. Known ids keep
    /// their ticket.
    pub async fn record_referenced_ids(
        &mut self,
        ids: &[&str],
        ticket_id: i64,
        now: i64,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut sql = Sql::for_backend(self.backend);
        sql.push("INSERT ")
            .push(self.backend.or_fail())
            .push("INTO mail_ids (message_id, ticket_id, direction, created_at) VALUES ");
        for (i, id) in ids.iter().take(50).enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .bind(Param::Text((*id).to_string()))
                .push(", ")
                .bind(Param::Int(ticket_id))
                .push(", 'ref', ")
                .bind(Param::Int(now))
                .push(")");
        }
        sql.push(" ON CONFLICT (message_id) DO NOTHING");
        sql.query().execute(&mut *self.conn).await?;
        Ok(())
    }

    /// Whether a message with this Message-ID exists.
    pub async fn mail_id_has_message(&mut self, message_id: &str) -> Result<bool> {
        self.flush_messages().await?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE mail_message_id = $1")
            .bind(message_id)
            .fetch_one(&mut *self.conn)
            .await?;
        Ok(n > 0)
    }

    /// Remembers a Message-ID as belonging to a ticket (first one wins).
    pub async fn record_mail_id(
        &mut self,
        message_id: &str,
        ticket_id: i64,
        direction: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO mail_ids (message_id, ticket_id, direction, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(message_id)
        .bind(ticket_id)
        .bind(direction)
        .bind(now)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }
}
