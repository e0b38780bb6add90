//! `/api/v1/me`: the token's agent and their own settings — which notices
//! they get by mail (`PATCH {"notifications": {"assigned": false}}`) and
//! their password (`POST /me/password {"current", "new"}`: every console
//! session of theirs ends; API tokens go on).

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ApiUser, json_body};
use crate::web::AppState;
use crate::web::error::WebError;
use crate::web::own::{self, AGENT_NOTICES};

/// The agent's own routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(show).patch(update))
        .route("/me/password", post(password))
}

async fn show(
    State(state): State<AppState>,
    ApiUser(me): ApiUser,
) -> Result<Json<Value>, WebError> {
    let notices = own::notices(&state, &me).await?;
    Ok(Json(json!({
        "id": me.id,
        "email": me.email.as_str(),
        "name": me.name,
        "role": me.role.as_str(),
        "notifications": own::notices_json(&notices),
        "mentions_unseen": state.store.mentions_unseen(me.id).await?,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MeBody {
    notifications: Map<String, Value>,
}

async fn update(
    State(state): State<AppState>,
    me: ApiUser,
    body: Result<Json<MeBody>, JsonRejection>,
) -> Result<Json<Value>, WebError> {
    let b = json_body(body)?;
    for (key, value) in &b.notifications {
        if !AGENT_NOTICES.iter().any(|(n, _)| n.as_str() == key) || !value.is_boolean() {
            let names: Vec<&str> = AGENT_NOTICES.iter().map(|(n, _)| n.as_str()).collect();
            return Err(WebError::BadRequest(format!(
                "notifications takes true or false for: {}",
                names.join(", ")
            )));
        }
    }
    own::set_notices(&state, &me.0, |n| {
        b.notifications.get(n).and_then(Value::as_bool)
    })
    .await?;
    show(State(state), me).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    current: String,
    new: String,
}

async fn password(
    State(state): State<AppState>,
    ApiUser(me): ApiUser,
    body: Result<Json<PasswordBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), WebError> {
    let b = json_body(body)?;
    match own::change_password(&state, &me, &b.current, &b.new, "").await? {
        Ok(ended) => Ok((StatusCode::OK, Json(json!({ "sessions_ended": ended })))),
        Err(why) => Err(WebError::BadRequest(why)),
    }
}
