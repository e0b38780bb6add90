//! Quarantined mail: listed, shown, released for another try or discarded;
//! and the counts of stored mail by state.

use super::*;

impl Store {
    /// Quarantined mails, oldest first.
    pub async fn quarantined(&self, limit: i64) -> Result<Vec<Quarantined>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT i.id, m.name, i.reason, i.received_at, COALESCE(LENGTH({}), 0) AS size FROM inbound i \
             LEFT JOIN mailboxes m ON m.id = i.mailbox_id WHERE i.state = 'quarantined' ORDER BY i.id LIMIT $1",
            raw_of_row(self.backend)
        )))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Quarantined {
                    id: r.try_get("id")?,
                    mailbox: r.try_get("name")?,
                    reason: r
                        .try_get::<Option<String>, _>("reason")?
                        .unwrap_or_default(),
                    size: r.try_get("size")?,
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect()
    }

    /// The raw bytes and state of an inbound mail.
    pub async fn inbound(&self, id: i64) -> Result<Option<(String, Option<String>, Vec<u8>)>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT i.state, i.reason, {} AS raw FROM inbound i WHERE i.id = $1",
            raw_of_row(self.backend)
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let raw: Option<Vec<u8>> = r.try_get("raw")?;
            let raw = raw.ok_or_else(|| {
                StoreError::Corrupt(format!("the bytes of inbound mail {id} are missing"))
            })?;
            Ok((r.try_get("state")?, r.try_get("reason")?, raw))
        })
        .transpose()
    }

    /// Puts a quarantined mail back in the queue. Returns whether it was quarantined.
    pub async fn retry_quarantined(&self, id: i64) -> Result<bool> {
        self.set_quarantined_state(id, "new").await
    }

    /// Gives up on a quarantined mail for good (the row and bytes stay, marked discarded).
    pub async fn discard_quarantined(&self, id: i64) -> Result<bool> {
        self.set_quarantined_state(id, "discarded").await
    }

    async fn set_quarantined_state(&self, id: i64, state: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE inbound SET state = $2, attempts = 0 WHERE id = $1 AND state = 'quarantined'",
        )
        .bind(id)
        .bind(state)
        .execute(&mut *tx.conn)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Counts of inbound mail by state (for status views and tests).
    pub async fn inbound_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT state, COUNT(*) FROM inbound GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
