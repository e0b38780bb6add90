//! Saved views of the queue as the console and the API share them: who may
//! see and change which, checking a view's filter with the queue's own
//! parser, and counting each view's tickets (shared for a moment, as the
//! status badges are).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::AppState;
use super::error::WebError;
use super::queue::QueueParams;
use crate::store::User;
use crate::store::views::SavedView;

/// The longest view name.
const NAME_MAX: usize = 80;
/// How long a view's count is shared.
const COUNT_FOR: Duration = Duration::from_secs(10);
/// The most counts kept.
const COUNTS_KEPT: usize = 10_000;

/// Whether `me` may see and use `v`: the shared ones and their own.
pub fn may_see(v: &SavedView, me: &User) -> bool {
    super::owned::may_see(v.owner_id, me)
}

/// Whether `me` may change or delete `v` (see [`super::owned::may_change`]).
pub fn may_change(v: &SavedView, me: &User) -> bool {
    super::owned::may_change(v.owner_id, v.created_by, me)
}

/// A view's name, trimmed, or why not.
pub fn check_name(name: &str) -> Result<String, WebError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX {
        return Err(WebError::BadRequest(format!(
            "A view needs a name of 1 to {NAME_MAX} characters."
        )));
    }
    Ok(name.to_string())
}

/// A view's filter as the queue reads it (`status=open&assignee=me`, a
/// leading `?` or a whole `/console?…` link allowed), checked with the
/// queue's parser for `me`, without its page; or why not.
pub async fn check_query(state: &AppState, me: &User, query: &str) -> Result<String, WebError> {
    let query = query.trim();
    let query = query.split_once('?').map_or(query, |(_, q)| q);
    let mut p = QueueParams::from_query(query)?;
    p.page = None;
    p.filter(state, me).await?;
    p.sort()?;
    Ok(p.to_query())
}

/// Views' counts, shared for [`COUNT_FOR`] (by viewer: `me` differs).
#[derive(Debug, Default)]
pub struct Counts(Mutex<HashMap<(i64, String), (Instant, i64)>>);

impl Counts {
    /// How many tickets `query` lists for `me`; `None` for a view whose
    /// filter no longer holds (a category removed since).
    pub async fn count(&self, state: &AppState, me: &User, query: &str) -> Option<i64> {
        let key = (me.id, query.to_string());
        if let Ok(held) = self.0.lock()
            && let Some((at, n)) = held.get(&key)
            && at.elapsed() < COUNT_FOR
        {
            return Some(*n);
        }
        let p = QueueParams::from_query(query).ok()?;
        let filter = p.filter(state, me).await.ok()?;
        let sort = p.sort().ok()?;
        let (n, _) = state.store.list_tickets(&filter, sort, 1, 1).await.ok()?;
        if let Ok(mut held) = self.0.lock() {
            if held.len() >= COUNTS_KEPT {
                held.clear();
            }
            held.insert(key, (Instant::now(), n));
        }
        Some(n)
    }
}

/// The views `me` sees, each with its count, as JSON for the API and pages.
pub async fn listed(state: &AppState, me: &User) -> Result<Vec<Value>, WebError> {
    let views = state.store.views_for(me.id).await?;
    let mut out = Vec::with_capacity(views.len());
    for v in &views {
        let count = state.view_counts.count(state, me, &v.query).await;
        out.push(json!({
            "id": v.id,
            "name": v.name,
            "query": v.query,
            "shared": v.owner_id.is_none(),
            "editable": may_change(v, me),
            "count": count,
        }));
    }
    Ok(out)
}
