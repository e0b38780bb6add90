//! `POST /api/v1/tickets/bulk`: many tickets changed, or deleted, through
//! the same actions as one by one.

use super::*;

/// The most tickets one bulk request changes.
const BULK_LIMIT: usize = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BulkBody {
    /// The tickets to change; or `filter`, the list's query parameters.
    #[serde(default)]
    references: Vec<String>,
    filter: Option<QueueParams>,
    #[serde(default)]
    changes: Option<UpdateBody>,
    #[serde(default)]
    delete: bool,
}

/// `POST /tickets/bulk`: each ticket changed through the same actions as
/// one by one (system messages, notifications); answers what happened to each.
pub(super) async fn bulk(
    State(state): State<AppState>,
    me: ApiUser,
    body: Result<Json<BulkBody>, JsonRejection>,
) -> Result<Json<Value>, WebError> {
    let b = json_body(body)?;
    let ids: Vec<(String, i64)> = match (&b.filter, b.references.is_empty()) {
        (Some(p), true) => {
            let filter = p.filter(&state, &me.0).await?;
            let ids = state
                .store
                .ticket_ids_matching(&filter, BULK_LIMIT as i64)
                .await?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(t) = state.store.ticket(id).await? {
                    out.push((t.reference.to_string(), id));
                }
            }
            out
        }
        (None, false) => {
            let mut out = Vec::new();
            for r in b.references.iter().take(BULK_LIMIT) {
                out.push((r.clone(), find(&state, r).await?.id));
            }
            out
        }
        _ => {
            return Err(bad(
                "send either `references` (a list) or `filter` (the list's query parameters)",
            ));
        }
    };
    if b.delete {
        me.admin()?;
    }
    let changes = match (&b.changes, b.delete) {
        (Some(c), false) => changes_of(c)?,
        (None, true) => Vec::new(),
        _ => return Err(bad("send either `changes` or `\"delete\": true`")),
    };
    if !b.delete && changes.is_empty() {
        return Err(bad("`changes` changes nothing"));
    }
    let now = now_millis();
    let mut results = Vec::with_capacity(ids.len());
    for (reference, id) in ids {
        let outcome = if b.delete {
            state.actions.delete(me.actor(), id).await.map(|()| true)
        } else {
            // One transaction per ticket: all its changes or none.
            state
                .actions
                .change_all(me.actor(), id, changes.clone(), now)
                .await
                .map(|n| n > 0)
        };
        results.push(match outcome {
            Ok(changed) => json!({ "reference": reference, "ok": true, "changed": changed }),
            Err(crate::actions::ActionError::Forbidden(m)) => return Err(WebError::Forbidden(m)),
            Err(e) => json!({ "reference": reference, "ok": false, "error": e.to_string() }),
        });
    }
    Ok(Json(json!({ "count": results.len(), "results": results })))
}
