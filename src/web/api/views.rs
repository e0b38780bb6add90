//! `/api/v1/views`: saved views of the queue (list with counts, create,
//! change, delete); personal ones visible to their owner only.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiUser, json_body};
use crate::store::now_millis;
use crate::store::views::SavedView;
use crate::web::AppState;
use crate::web::error::WebError;
use crate::web::views::{check_name, check_query, listed, may_change, may_see};

/// The views' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/views", get(list).post(create))
        .route("/views/{id}", patch(update).delete(remove))
}

async fn list(
    State(state): State<AppState>,
    ApiUser(me): ApiUser,
) -> Result<Json<Value>, WebError> {
    Ok(Json(json!({ "views": listed(&state, &me).await? })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewBody {
    name: Option<String>,
    /// The queue's query string, e.g. `status=open&assignee=me`.
    query: Option<String>,
    shared: Option<bool>,
}

/// A view `me` may change (others' personal ones are not found).
async fn changeable(
    state: &AppState,
    me: &crate::store::User,
    id: i64,
) -> Result<SavedView, WebError> {
    let v = state
        .store
        .view(id)
        .await?
        .filter(|v| may_see(v, me))
        .ok_or_else(|| WebError::NotFound(format!("view {id}")))?;
    if !may_change(&v, me) {
        return Err(WebError::Forbidden(
            "a shared view is changed by the agent who made it or an admin".into(),
        ));
    }
    Ok(v)
}

async fn one(state: &AppState, me: &crate::store::User, id: i64) -> Result<Value, WebError> {
    listed(state, me)
        .await?
        .into_iter()
        .find(|v| v["id"] == id)
        .ok_or_else(|| WebError::NotFound(format!("view {id}")))
}

async fn create(
    State(state): State<AppState>,
    ApiUser(me): ApiUser,
    body: Result<Json<ViewBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), WebError> {
    let b = json_body(body)?;
    let name = check_name(b.name.as_deref().unwrap_or(""))?;
    let query = check_query(&state, &me, b.query.as_deref().unwrap_or("")).await?;
    let owner = if b.shared.unwrap_or(false) {
        None
    } else {
        Some(me.id)
    };
    let id = state
        .store
        .create_view(me.id, owner, &name, &query, now_millis())
        .await?;
    Ok((StatusCode::CREATED, Json(one(&state, &me, id).await?)))
}

async fn update(
    State(state): State<AppState>,
    ApiUser(me): ApiUser,
    Path(id): Path<i64>,
    body: Result<Json<ViewBody>, JsonRejection>,
) -> Result<Json<Value>, WebError> {
    let b = json_body(body)?;
    let v = changeable(&state, &me, id).await?;
    let name = check_name(b.name.as_deref().unwrap_or(&v.name))?;
    let query = check_query(&state, &me, b.query.as_deref().unwrap_or(&v.query)).await?;
    let owner = match b.shared {
        Some(true) => None,
        Some(false) => Some(me.id),
        None => v.owner_id,
    };
    state.store.update_view(id, owner, &name, &query).await?;
    Ok(Json(one(&state, &me, id).await?))
}

async fn remove(
    State(state): State<AppState>,
    ApiUser(me): ApiUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, WebError> {
    changeable(&state, &me, id).await?;
    state.store.delete_view(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
