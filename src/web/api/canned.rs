//! `/api/v1/canned-responses` (list, create, read, change, delete; an
//! agent's personal ones visible to them only) and applying a macro to a
//! ticket (`POST /api/v1/tickets/{ref}/macros/{id}`).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiUser, bad, find, json_body, reply_outcome_json};
use crate::actions::ReplyInput;
use crate::domain::canned::fill;
use crate::store::canned::CannedResponse;
use crate::store::now_millis;
use crate::web::AppState;
use crate::web::canned::{CannedDraft, canned_json, check, fill_with, may_change, may_see};
use crate::web::error::WebError;

/// The canned responses' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/canned-responses", get(list).post(create))
        .route(
            "/canned-responses/{id}",
            get(show).patch(update).delete(remove),
        )
        .route("/tickets/{reference}/macros/{id}", post(apply))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    /// Fill each text for this ticket.
    ticket: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    ApiUser(me): ApiUser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, WebError> {
    let Query(q) = query.map_err(|e| bad(e.body_text()))?;
    let ticket = match q.ticket.as_deref() {
        Some(r) => Some(find(&state, r).await?),
        None => None,
    };
    let with = ticket.as_ref().map(|t| fill_with(t, &me));
    let list = state.store.canned_for(me.id).await?;
    Ok(Json(json!({
        "canned_responses": list
            .iter()
            .map(|c| canned_json(c, &me, with.as_ref().map(|w| fill(&c.body, w))))
            .collect::<Vec<_>>(),
    })))
}

/// A canned response as the API writes it: every field optional on a
/// change; an empty string clears a change field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CannedBody {
    title: Option<String>,
    body: Option<String>,
    shared: Option<bool>,
    status: Option<String>,
    priority: Option<String>,
    category: Option<String>,
    assignee: Option<String>,
    add_tags: Option<Vec<String>>,
}

impl CannedBody {
    /// `base` with this body's fields laid over it.
    fn over(self, mut base: CannedDraft) -> CannedDraft {
        let set = |field: &mut String, v: Option<String>| {
            if let Some(v) = v {
                *field = v;
            }
        };
        set(&mut base.title, self.title);
        set(&mut base.body, self.body);
        set(&mut base.status, self.status);
        set(&mut base.priority, self.priority);
        set(&mut base.category, self.category);
        set(&mut base.assignee, self.assignee);
        set(&mut base.tags, self.add_tags.map(|t| t.join(",")));
        if let Some(s) = self.shared {
            base.shared = s;
        }
        base
    }
}

async fn create(
    State(state): State<AppState>,
    ApiUser(me): ApiUser,
    body: Result<Json<CannedBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), WebError> {
    let draft = json_body(body)?.over(CannedDraft::default());
    let new = check(&state, &me, &draft).await?;
    let id = state.store.create_canned(me.id, &new, now_millis()).await?;
    let c = visible(&state, &me, id).await?;
    Ok((StatusCode::CREATED, Json(canned_json(&c, &me, None))))
}

/// A canned response `me` may see (others' personal ones are not found).
async fn visible(
    state: &AppState,
    me: &crate::store::User,
    id: i64,
) -> Result<CannedResponse, WebError> {
    state
        .store
        .canned(id)
        .await?
        .filter(|c| may_see(c, me))
        .ok_or_else(|| WebError::NotFound(format!("canned response {id}")))
}

/// A canned response `me` may change.
async fn changeable(
    state: &AppState,
    me: &crate::store::User,
    id: i64,
) -> Result<CannedResponse, WebError> {
    let c = visible(state, me, id).await?;
    if !may_change(&c, me) {
        return Err(WebError::Forbidden(
            "a shared canned response is changed by its author or an admin".into(),
        ));
    }
    Ok(c)
}

async fn show(
    State(state): State<AppState>,
    ApiUser(me): ApiUser,
    Path(id): Path<i64>,
) -> Result<Json<Value>, WebError> {
    let c = visible(&state, &me, id).await?;
    Ok(Json(canned_json(&c, &me, None)))
}

async fn update(
    State(state): State<AppState>,
    ApiUser(me): ApiUser,
    Path(id): Path<i64>,
    body: Result<Json<CannedBody>, JsonRejection>,
) -> Result<Json<Value>, WebError> {
    let body = json_body(body)?;
    let c = changeable(&state, &me, id).await?;
    let new = check(&state, &me, &body.over(CannedDraft::of(&c))).await?;
    state.store.update_canned(id, &new, now_millis()).await?;
    let c = visible(&state, &me, id).await?;
    Ok(Json(canned_json(&c, &me, None)))
}

async fn remove(
    State(state): State<AppState>,
    ApiUser(me): ApiUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, WebError> {
    changeable(&state, &me, id).await?;
    state.store.delete_canned(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplyBody {
    /// The reply's text instead of the macro's own (filled already).
    body: Option<String>,
    /// The newest message the caller has seen: newer ones from others stop
    /// the reply with 409.
    last_message_id: Option<i64>,
}

async fn apply(
    State(state): State<AppState>,
    me: ApiUser,
    Path((reference, id)): Path<(String, i64)>,
    body: Option<Json<ApplyBody>>,
) -> Result<Json<Value>, WebError> {
    let b = body.map(|Json(b)| b).unwrap_or_default();
    let ticket = find(&state, &reference).await?;
    let c = visible(&state, &me.0, id).await?;
    let text = b
        .body
        .unwrap_or_else(|| fill(&c.body, &fill_with(&ticket, &me.0)));
    let reply = (!text.trim().is_empty()).then(|| ReplyInput::text(&text));
    let now = now_millis();
    let mut tx = state.store.begin().await?;
    if let Some(seen) = b.last_message_id
        && reply.is_some()
    {
        super::refuse_unseen(&state, &mut tx, me.actor(), ticket.id, seen).await?;
    }
    let applied = state
        .actions
        .apply_macro_in(&mut tx, me.actor(), ticket.id, reply, &c.changes, now)
        .await?;
    tx.commit().await?;
    Ok(Json(json!({
        "reference": ticket.reference.to_string(),
        "reply": applied.reply.as_ref().map(|o| reply_outcome_json(&ticket, o)),
        "changed": applied.changed,
    })))
}
