//! `/api/v1/requesters/{email}`: the customer at a glance (details, their
//! tickets open first, their organisation's), and what agents keep about
//! them (`PATCH`: agent note, organisation, phone).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::{ApiUser, json_body};
use crate::web::AppState;
use crate::web::customer::{Kept, glance, keep};
use crate::web::error::WebError;

/// The requesters' routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/requesters/{email}", get(show).patch(update))
}

async fn id_of(state: &AppState, email: &str) -> Result<i64, WebError> {
    let email = email.trim().to_lowercase();
    state
        .store
        .requester_id_by_email(&email)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("requester {email}")))
}

async fn show(
    State(state): State<AppState>,
    _me: ApiUser,
    Path(email): Path<String>,
) -> Result<Json<Value>, WebError> {
    let id = id_of(&state, &email).await?;
    glance(&state, id, None)
        .await?
        .map(Json)
        .ok_or_else(|| WebError::NotFound(format!("requester {email}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeptBody {
    agent_note: Option<String>,
    organisation: Option<String>,
    phone: Option<String>,
}

async fn update(
    State(state): State<AppState>,
    _me: ApiUser,
    Path(email): Path<String>,
    body: Result<Json<KeptBody>, JsonRejection>,
) -> Result<Json<Value>, WebError> {
    let b = json_body(body)?;
    let id = id_of(&state, &email).await?;
    let now = state
        .store
        .customer(id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("requester {email}")))?;
    let kept = Kept {
        agent_note: b.agent_note.unwrap_or(now.agent_note),
        organisation: b.organisation.unwrap_or(now.organisation),
        phone: b.phone.unwrap_or(now.phone),
    };
    keep(&state, id, &kept).await?;
    show(State(state), _me, Path(email)).await
}
