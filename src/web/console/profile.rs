//! The agent's own settings: password (the current one required, every
//! other session ended), which notices they get by mail, and API tokens
//! (made, shown once, revoked).

use super::*;

use crate::web::own::{self, MIN_PASSWORD};

/// What the profile page says after a change.
#[derive(Default)]
pub(super) struct Said {
    /// A token just made, shown once.
    token: Option<String>,
    /// What was done.
    done: Option<String>,
    /// Why a password change was refused (the page answers 400).
    refused: Option<String>,
}

pub(super) async fn profile_page(
    state: &AppState,
    me: &Staff,
    said: Said,
) -> Result<Response, WebError> {
    let tokens = state.store.api_tokens(me.user.id).await?;
    let notices = own::notices(state, &me.user).await?;
    let mut c = base(state, "Profile", Some(me));
    let status = if said.refused.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    c.insert("new_token".into(), json!(said.token));
    c.insert("done".into(), json!(said.done));
    c.insert("refused".into(), json!(said.refused));
    c.insert("min_password".into(), json!(MIN_PASSWORD));
    c.insert(
        "notices".into(),
        json!(
            notices
                .iter()
                .map(|(n, words, on)| json!({ "key": n.as_str(), "words": words, "on": on }))
                .collect::<Vec<_>>()
        ),
    );
    c.insert(
        "tokens".into(),
        json!(
            tokens
                .iter()
                .map(|t| json!({
                    "id": t.id,
                    "label": if t.label.is_empty() { "(no label)" } else { &t.label },
                    "created": t.created_at,
                    "revoked": t.revoked_at,
                }))
                .collect::<Vec<_>>()
        ),
    );
    Ok(state
        .pages
        .render(status, "console_profile", &Value::Object(c)))
}

#[derive(Deserialize)]
pub(super) struct PasswordForm {
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    again: String,
}

/// Changes the agent's own password: the current one must be right (checked
/// under the sign-in page's bound on concurrent checks), the new one long
/// enough and typed twice alike; every other session of theirs ends.
pub(super) async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        me.check(&form.csrf)?;
        let refuse = |why: &str| Said {
            refused: Some(why.to_string()),
            ..Said::default()
        };
        if form.new != form.again {
            return profile_page(
                &state,
                me,
                refuse("The new password was not typed the same twice."),
            )
            .await;
        }
        let ended = match own::change_password(
            &state,
            &me.user,
            &form.current,
            &form.new,
            &me.session_digest,
        )
        .await?
        {
            Ok(ended) => ended,
            Err(why) => return profile_page(&state, me, refuse(&why)).await,
        };
        let done = match ended {
            0 => "Password changed.".to_string(),
            1 => "Password changed; your one other session was signed out.".to_string(),
            n => format!("Password changed; your {n} other sessions were signed out."),
        };
        profile_page(
            &state,
            me,
            Said {
                done: Some(done),
                ..Said::default()
            },
        )
        .await
    })
    .await
}

/// Saves which notices the agent gets: a box left unticked switches its
/// notice off (`{"notice": false}`, decision 0014); notices not on the page
/// keep what they had.
pub(super) async fn notifications(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        let csrf = form
            .iter()
            .find(|(k, _)| k == "csrf")
            .map_or("", |(_, v)| v.as_str());
        me.check(csrf)?;
        own::set_notices(&state, &me.user, |notice| {
            Some(form.iter().any(|(k, v)| k == "on" && v == notice))
        })
        .await?;
        profile_page(
            &state,
            me,
            Said {
                done: Some("Notifications saved.".into()),
                ..Said::default()
            },
        )
        .await
    })
    .await
}

pub(super) async fn profile(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state, &headers, async |me: &Staff| {
        profile_page(&state, me, Said::default()).await
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(super) struct TokenForm {
    csrf: String,
    #[serde(default)]
    label: String,
}

pub(super) async fn create_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        me.check(&form.csrf)?;
        let token = secrets::new_api_token();
        let label: String = form.label.trim().chars().take(100).collect();
        state
            .store
            .insert_api_token(
                me.user.id,
                &secrets::token_digest(&token),
                &label,
                now_millis(),
            )
            .await?;
        profile_page(
            &state,
            me,
            Said {
                token: Some(token),
                ..Said::default()
            },
        )
        .await
    })
    .await
}

pub(super) async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        me.check(&form.csrf)?;
        if !state
            .store
            .revoke_api_token(me.user.id, id, now_millis())
            .await?
        {
            return Err(WebError::NotFound("such active token of yours".into()));
        }
        Ok(Redirect::to("/console/profile").into_response())
    })
    .await
}
