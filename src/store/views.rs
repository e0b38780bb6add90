//! Saved views of the queue: a name and the queue's query string, shared
//! with the team or an agent's own. Who may change which is the callers'
//! (`web::views`).

use sqlx::any::AnyRow;

use super::{Result, Store, col, opt};

/// The most views one agent sees.
pub const VIEWS_LIMIT: i64 = 200;

/// A saved view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedView {
    pub id: i64,
    /// `None`: shared with the team.
    pub owner_id: Option<i64>,
    /// Who made it (`None`: a built-in preset, or the account is gone).
    pub created_by: Option<i64>,
    pub name: String,
    /// The queue's query string (`status=open&assignee=me`).
    pub query: String,
}

fn view_of(r: &AnyRow) -> Result<SavedView> {
    Ok(SavedView {
        id: col(r, "id")?,
        owner_id: opt(r, "owner_id")?,
        created_by: opt(r, "created_by")?,
        name: col(r, "name")?,
        query: col(r, "query")?,
    })
}

impl Store {
    /// The shared views and `user`'s own: the shared first, in their order.
    pub async fn views_for(&self, user: i64) -> Result<Vec<SavedView>> {
        let rows = sqlx::query(
            "SELECT id, owner_id, created_by, name, query FROM views \
             WHERE owner_id IS NULL OR owner_id = $1 \
             ORDER BY (CASE WHEN owner_id IS NULL THEN 0 ELSE 1 END), position, lower(name), id LIMIT $2",
        )
        .bind(user)
        .bind(VIEWS_LIMIT)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(view_of).collect()
    }

    /// One view, whoever owns it.
    pub async fn view(&self, id: i64) -> Result<Option<SavedView>> {
        let row =
            sqlx::query("SELECT id, owner_id, created_by, name, query FROM views WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(view_of).transpose()
    }

    /// Saves a new view made by `by`; returns its id.
    pub async fn create_view(
        &self,
        by: i64,
        owner: Option<i64>,
        name: &str,
        query: &str,
        now: i64,
    ) -> Result<i64> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO views (owner_id, created_by, name, query, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(owner)
        .bind(by)
        .bind(name)
        .bind(query)
        .bind(now)
        .fetch_one(&mut *tx.conn)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Changes a view's name, query and sharing; false when it is gone.
    pub async fn update_view(
        &self,
        id: i64,
        owner: Option<i64>,
        name: &str,
        query: &str,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE views SET owner_id = $2, name = $3, query = $4 WHERE id = $1")
            .bind(id)
            .bind(owner)
            .bind(name)
            .bind(query)
            .execute(&mut *tx.conn)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Deletes a view; false when it was gone already.
    pub async fn delete_view(&self, id: i64) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM views WHERE id = $1")
            .bind(id)
            .execute(&mut *tx.conn)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }
}
