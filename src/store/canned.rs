//! Canned replies and macros (`canned_responses`): the shared ones and each
//! agent's own. Who may see or change which is decided by the callers
//! (`web::canned`); this module only reads and writes rows.

use sqlx::any::AnyRow;

use super::{Result, Store, StoreError, col, opt};
use crate::domain::canned::{AssignTo, MacroChanges};

/// The most canned responses one agent sees (shared plus their own).
pub const CANNED_LIMIT: i64 = 1_000;

/// A canned reply, or a macro when its changes are not empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedResponse {
    pub id: i64,
    /// `None`: shared with the team; else the agent whose own it is.
    pub owner_id: Option<i64>,
    /// Who wrote it (`None` once that account is gone).
    pub created_by: Option<i64>,
    pub title: String,
    /// The text, with placeholders (`domain::canned`).
    pub body: String,
    pub changes: MacroChanges,
    pub updated_at: i64,
}

/// A canned response as written or edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCanned {
    pub owner_id: Option<i64>,
    pub title: String,
    pub body: String,
    pub changes: MacroChanges,
}

const COLUMNS: &str = "id, owner_id, created_by, title, body, set_status, set_priority, \
                       set_category, set_assignee, add_tags, updated_at";

fn optional_parsed<T: std::str::FromStr>(row: &AnyRow, name: &str) -> Result<Option<T>> {
    opt::<String>(row, name)?
        .map(|s| {
            s.parse()
                .map_err(|_| StoreError::Corrupt(format!("column {name} holds `{s}`")))
        })
        .transpose()
}

fn canned_of(row: &AnyRow) -> Result<CannedResponse> {
    let assignee = opt::<String>(row, "set_assignee")?
        .map(|a| {
            AssignTo::parse(&a)
                .map_err(|_| StoreError::Corrupt(format!("column set_assignee holds `{a}`")))
        })
        .transpose()?;
    Ok(CannedResponse {
        id: col(row, "id")?,
        owner_id: opt(row, "owner_id")?,
        created_by: opt(row, "created_by")?,
        title: col(row, "title")?,
        body: col(row, "body")?,
        changes: MacroChanges {
            status: optional_parsed(row, "set_status")?,
            priority: optional_parsed(row, "set_priority")?,
            category: opt(row, "set_category")?,
            assignee,
            add_tags: MacroChanges::tags_from(&col::<String>(row, "add_tags")?),
        },
        updated_at: col(row, "updated_at")?,
    })
}

/// The values of a canned response's columns after the id and owner.
struct Columns {
    status: Option<String>,
    priority: Option<String>,
    category: Option<String>,
    assignee: Option<String>,
    tags: String,
}

impl Columns {
    fn of(c: &MacroChanges) -> Self {
        Columns {
            status: c.status.map(|s| s.as_str().to_string()),
            priority: c.priority.map(|p| p.as_str().to_string()),
            category: c.category.clone(),
            assignee: c.assignee.as_ref().map(AssignTo::as_stored),
            tags: c.add_tags.join(","),
        }
    }
}

impl Store {
    /// What `user_id` may use: the shared canned responses and their own,
    /// by title.
    pub async fn canned_for(&self, user_id: i64) -> Result<Vec<CannedResponse>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM canned_responses WHERE owner_id IS NULL OR owner_id = $1 \
             ORDER BY lower(title), id LIMIT {CANNED_LIMIT}"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(canned_of).collect()
    }

    /// One canned response, whoever owns it.
    pub async fn canned(&self, id: i64) -> Result<Option<CannedResponse>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM canned_responses WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(canned_of).transpose()
    }

    /// Saves a new canned response written by `by`; returns its id.
    pub async fn create_canned(&self, by: i64, new: &NewCanned, now: i64) -> Result<i64> {
        let sql = "INSERT INTO canned_responses (created_by, owner_id, title, body, set_status, \
                   set_priority, set_category, set_assignee, add_tags, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id";
        self.write_canned(sql, by, new, now)
            .await?
            .ok_or_else(|| StoreError::Corrupt("an insert returned no id".into()))
    }

    /// Replaces a canned response's fields; false when it is gone.
    pub async fn update_canned(&self, id: i64, new: &NewCanned, now: i64) -> Result<bool> {
        let sql = "UPDATE canned_responses SET owner_id = $2, title = $3, body = $4, \
                   set_status = $5, set_priority = $6, set_category = $7, set_assignee = $8, \
                   add_tags = $9, updated_at = $10 WHERE id = $1 RETURNING id";
        Ok(self.write_canned(sql, id, new, now).await?.is_some())
    }

    /// Runs `sql` with `key` as `$1`, then the row's fields in column order
    /// and `now` as `$10`; the id it returns, if any.
    async fn write_canned(
        &self,
        sql: &'static str,
        key: i64,
        new: &NewCanned,
        now: i64,
    ) -> Result<Option<i64>> {
        let c = Columns::of(&new.changes);
        let mut tx = self.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(sql)
            .bind(key)
            .bind(new.owner_id)
            .bind(&new.title)
            .bind(&new.body)
            .bind(c.status)
            .bind(c.priority)
            .bind(c.category)
            .bind(c.assignee)
            .bind(c.tags)
            .bind(now)
            .fetch_optional(&mut *tx.conn)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Deletes a canned response; false when it was gone already.
    pub async fn delete_canned(&self, id: i64) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("DELETE FROM canned_responses WHERE id = $1")
            .bind(id)
            .execute(&mut *tx.conn)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(done > 0)
    }
}
