//! The users page: add (a generated password shown once), name, role,
//! deactivate, new password.

use super::*;

async fn users_page(
    state: &AppState,
    me: &Staff,
    notice: Option<String>,
) -> Result<Response, WebError> {
    admin_only(me)?;
    let users = state.store.users().await?;
    let roles = [("agent", "Agent"), ("admin", "Admin")];
    let list: Vec<Value> = users
        .iter()
        .map(|u| {
            json!({
                "id": u.id, "email": u.email.as_str(), "name": u.name, "active": u.active,
                "roles": options(roles, u.role.as_str()), "me": u.id == me.user.id,
            })
        })
        .collect();
    let mut c = base(state, "Users", Some(me));
    c.insert("users".into(), json!(list));
    c.insert("notice".into(), json!(notice));
    c.insert("role_options".into(), json!(options(roles, "agent")));
    Ok(state
        .pages
        .render(StatusCode::OK, "console_users", &Value::Object(c)))
}

pub(super) async fn users(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state, &headers, async |me: &Staff| {
        users_page(&state, me, None).await
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(super) struct NewUserForm {
    csrf: String,
    email: String,
    #[serde(default)]
    name: String,
    role: String,
}

/// A fresh password and its argon2id hash (hashed off the async threads).
async fn fresh_password() -> Result<(String, String), WebError> {
    let password = secrets::new_password();
    let hash = secrets::hash_password_off_thread(password.clone())
        .await
        .map_err(|_| WebError::Internal)?;
    Ok((password, hash))
}

pub(super) async fn add_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<NewUserForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        admin_only(me)?;
        me.check(&form.csrf)?;
        let bad = |e: crate::domain::ParseError| WebError::BadRequest(e.to_string());
        let email: EmailAddress = form.email.parse().map_err(bad)?;
        let role: Role = form.role.parse().map_err(bad)?;
        if state.store.user_by_email(&email).await?.is_some() {
            return Err(WebError::BadRequest(format!(
                "{email} already has an account."
            )));
        }
        let (password, hash) = fresh_password().await?;
        let name: String = form.name.trim().chars().take(100).collect();
        state
            .store
            .insert_user(
                &NewUser {
                    email: email.clone(),
                    name,
                    role,
                    password_hash: hash,
                },
                now_millis(),
            )
            .await?;
        tracing::info!(user = %email, by = %me.user.email, "console: account created");
        users_page(
            &state,
            me,
            Some(format!(
                "Account {email} created. Its password, shown once: {password}"
            )),
        )
        .await
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(super) struct UserForm {
    csrf: String,
    #[serde(default)]
    name: String,
    role: String,
    active: Option<String>,
}

pub(super) async fn update_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<UserForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        admin_only(me)?;
        me.check(&form.csrf)?;
        let role: Role = form
            .role
            .parse()
            .map_err(|e: crate::domain::ParseError| WebError::BadRequest(e.to_string()))?;
        let active = form.active.is_some();
        if id == me.user.id && (!active || role != Role::Admin) {
            return Err(WebError::BadRequest(
                "You cannot take away your own admin role or account; ask another admin.".into(),
            ));
        }
        let name: String = form.name.trim().chars().take(100).collect();
        if !state
            .store
            .update_user(id, &name, role, active, now_millis())
            .await?
        {
            return Err(WebError::NotFound(format!("user {id}")));
        }
        Ok(Redirect::to("/console/admin/users").into_response())
    })
    .await
}

pub(super) async fn new_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        admin_only(me)?;
        me.check(&form.csrf)?;
        let users = state.store.users().await?;
        let user = users
            .iter()
            .find(|u| u.id == id)
            .ok_or_else(|| WebError::NotFound(format!("user {id}")))?;
        let (password, hash) = fresh_password().await?;
        state
            .store
            .set_password_hash(id, &hash, now_millis())
            .await?;
        tracing::info!(user = %user.email, by = %me.user.email, "console: password reset");
        users_page(
            &state,
            me,
            Some(format!(
                "New password for {}, shown once (the account is unlocked): {password}",
                user.email
            )),
        )
        .await
    })
    .await
}
