//! The API's administration routes: staff accounts (any agent may list
//! them; admins add and change them) and mailboxes (admins only; the same
//! store and checks as `postdesk mailbox` and the console).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiUser, bad, json_body};
use crate::config::MailboxSettings;
use crate::domain::{EmailAddress, Role};
use crate::secrets;
use crate::store::mailboxes::MailboxRow;
use crate::store::{NewUser, User, now_millis};
use crate::web::AppState;
use crate::web::console::admin::mailbox_state;
use crate::web::error::WebError;

/// Users and mailboxes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(users).post(add_user))
        .route("/users/{id}", axum::routing::patch(update_user))
        .route("/mailboxes", get(mailboxes).post(add_mailbox))
        .route("/mailboxes/{name}", get(mailbox).delete(remove_mailbox))
        .route("/mailboxes/{name}/{op}", post(mailbox_op))
}

fn user_json(u: &User) -> Value {
    json!({ "id": u.id, "email": u.email.as_str(), "name": u.name, "role": u.role.as_str(), "active": u.active })
}

async fn users(State(state): State<AppState>, _me: ApiUser) -> Result<Json<Value>, WebError> {
    let users = state.store.users().await?;
    Ok(Json(
        json!({ "users": users.iter().map(user_json).collect::<Vec<_>>() }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    email: String,
    #[serde(default)]
    name: String,
    role: Role,
    /// Set this password; without it one is generated and answered once.
    password: Option<String>,
}

async fn add_user(
    State(state): State<AppState>,
    me: ApiUser,
    body: Result<Json<NewUserBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), WebError> {
    me.admin()?;
    let b = json_body(body)?;
    let email: EmailAddress = b.email.parse().map_err(bad)?;
    if state.store.user_by_email(&email).await?.is_some() {
        return Err(bad(format!("{email} already has an account")));
    }
    let (password, generated) = match b.password {
        Some(p) if p.chars().count() >= 10 && p.len() <= 1024 => (p, false),
        Some(_) => return Err(bad("a password needs at least 10 characters")),
        None => (secrets::new_password(), true),
    };
    let hash = secrets::hash_password_off_thread(password.clone())
        .await
        .map_err(|_| WebError::Internal)?;
    let user = state
        .store
        .insert_user(
            &NewUser {
                email,
                name: b.name.trim().chars().take(100).collect(),
                role: b.role,
                password_hash: hash,
            },
            now_millis(),
        )
        .await?;
    let mut out = user_json(&user);
    if generated {
        out["password"] = json!(password);
    }
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    name: Option<String>,
    role: Option<Role>,
    active: Option<bool>,
}

async fn update_user(
    State(state): State<AppState>,
    me: ApiUser,
    Path(id): Path<i64>,
    body: Result<Json<UserBody>, JsonRejection>,
) -> Result<Json<Value>, WebError> {
    me.admin()?;
    let b = json_body(body)?;
    let users = state.store.users().await?;
    let user = users
        .iter()
        .find(|u| u.id == id)
        .ok_or_else(|| WebError::NotFound(format!("user {id}")))?;
    let role = b.role.unwrap_or(user.role);
    let active = b.active.unwrap_or(user.active);
    if id == me.0.id && (role != Role::Admin || !active) {
        return Err(bad("you cannot take away your own admin role or account"));
    }
    let name = b.name.unwrap_or_else(|| user.name.clone());
    state
        .store
        .update_user(id, name.trim(), role, active, crate::store::now_millis())
        .await?;
    let users = state.store.users().await?;
    let user = users
        .iter()
        .find(|u| u.id == id)
        .ok_or(WebError::Internal)?;
    Ok(Json(user_json(user)))
}

fn mailbox_json(m: &MailboxRow) -> Value {
    json!({
        "name": m.name,
        "address": m.settings.address.as_str(),
        // Secrets masked: the serialised settings never carry a password.
        "settings": serde_json::to_value(&m.settings).unwrap_or_default(),
        "from_config": m.from_config,
        "paused": m.paused,
        "state": mailbox_state(m),
        "last_ok_at": m.last_ok_at.map(crate::domain::rfc3339),
        "last_error": m.last_error,
        "last_error_at": m.last_error_at.map(crate::domain::rfc3339),
    })
}

async fn mailboxes(State(state): State<AppState>, me: ApiUser) -> Result<Json<Value>, WebError> {
    me.admin()?;
    let rows = state.store.mailboxes().await?;
    Ok(Json(
        json!({ "mailboxes": rows.iter().map(mailbox_json).collect::<Vec<_>>() }),
    ))
}

async fn find(state: &AppState, name: &str) -> Result<MailboxRow, WebError> {
    state
        .store
        .mailbox_by_name(name)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("mailbox {name}")))
}

async fn mailbox(
    State(state): State<AppState>,
    me: ApiUser,
    Path(name): Path<String>,
) -> Result<Json<Value>, WebError> {
    me.admin()?;
    Ok(Json(mailbox_json(&find(&state, &name).await?)))
}

/// `POST /mailboxes`: a mailbox as in the config file (`[[mailboxes]]`, in
/// JSON); one of the same name is replaced, keeping its polling position.
async fn add_mailbox(
    State(state): State<AppState>,
    me: ApiUser,
    body: Result<Json<MailboxSettings>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), WebError> {
    me.admin()?;
    let m = json_body(body)?;
    m.check().map_err(|e| bad(e.replace("mailboxes[0].", "")))?;
    if let Some(old) = state.store.mailbox_by_name(&m.name).await?
        && old.from_config
    {
        return Err(bad(
            "this mailbox is declared in the config file; change it there",
        ));
    }
    state.store.upsert_mailbox(&m, false, now_millis()).await?;
    Ok((
        StatusCode::CREATED,
        Json(mailbox_json(&find(&state, &m.name).await?)),
    ))
}

async fn remove_mailbox(
    State(state): State<AppState>,
    me: ApiUser,
    Path(name): Path<String>,
) -> Result<StatusCode, WebError> {
    me.admin()?;
    if state.store.remove_mailbox(&name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(WebError::NotFound(format!("mailbox {name}")))
    }
}

async fn mailbox_op(
    State(state): State<AppState>,
    me: ApiUser,
    Path((name, op)): Path<(String, String)>,
) -> Result<Json<Value>, WebError> {
    me.admin()?;
    match op.as_str() {
        "pause" | "resume" => {
            if !state.store.set_mailbox_paused(&name, op == "pause").await? {
                return Err(WebError::NotFound(format!("mailbox {name}")));
            }
            Ok(Json(mailbox_json(&find(&state, &name).await?)))
        }
        "test" => {
            let m = find(&state, &name).await?;
            let tokens = crate::oauth::Tokens::new(state.store.clone());
            Ok(Json(
                match crate::gateway::imap::probe(
                    &m.settings.imap,
                    Some(&tokens),
                    &m.settings.folder,
                )
                .await
                {
                    Ok(p) => {
                        json!({ "ok": true, "messages": p.messages, "uidvalidity": p.uidvalidity, "idle": p.idle, "move": p.r#move })
                    }
                    Err(e) => json!({ "ok": false, "error": e.to_string() }),
                },
            ))
        }
        _ => Err(WebError::NotFound(format!("mailbox action {op}"))),
    }
}
