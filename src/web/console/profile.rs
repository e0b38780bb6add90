//! The agent's own settings: password (the current one required, every
//! other session ended), which notices they get by mail, and API tokens
//! (made, shown once, revoked).

use super::*;
use crate::domain::notify::Notice;

/// The notices an agent gets by mail and may switch off, as they read.
const AGENT_NOTICES: [(Notice, &str); 4] = [
    (Notice::TeamNewTicket, "A new ticket arrives"),
    (Notice::Assigned, "A ticket is assigned to me"),
    (
        Notice::RequesterReply,
        "A requester writes on a ticket assigned to me",
    ),
    (Notice::Mentioned, "Someone @mentions me in a note"),
];

/// The shortest new password accepted.
const MIN_PASSWORD: usize = 10;

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
) -> Result<Response, ConsoleError> {
    let tokens = state.store.api_tokens(me.user.id).await?;
    let prefs = state.store.user_notify_prefs(me.user.id).await?;
    let prefs: Map<String, Value> = serde_json::from_str(&prefs).unwrap_or_default();
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
            AGENT_NOTICES
                .iter()
                .map(|(n, words)| json!({
                    "key": n.as_str(),
                    "words": words,
                    "on": prefs.get(n.as_str()) != Some(&Value::Bool(false)),
                }))
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
        let new: String = form.new.chars().take(1024).collect();
        if new.chars().count() < MIN_PASSWORD {
            let why = format!("The new password needs at least {MIN_PASSWORD} characters.");
            return profile_page(&state, me, refuse(&why)).await;
        }
        if new != form.again {
            return profile_page(&state, me, refuse("The new password was not typed the same twice.")).await;
        }
        let Some(hash) = state.store.user_password_hash(me.user.id).await? else {
            return Err(ConsoleError::SignIn);
        };
        let wait = std::time::Duration::from_secs(2);
        let Some(right) = state.signin.verify(&form.current, hash, wait).await else {
            return Err(ConsoleError::Unavailable);
        };
        if !right {
            tracing::info!(user = %me.user.email, "console: password change refused (current password wrong)");
            return profile_page(&state, me, refuse("The current password is not right.")).await;
        }
        let hash = secrets::hash_password_off_thread(new)
            .await
            .map_err(|_| ConsoleError::Internal)?;
        let ended = state
            .store
            .change_own_password(me.user.id, &hash, &me.session_digest)
            .await?;
        tracing::info!(user = %me.user.email, sessions_ended = ended, "console: password changed");
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
        let prefs = state.store.user_notify_prefs(me.user.id).await?;
        let mut prefs: Map<String, Value> = serde_json::from_str(&prefs).unwrap_or_default();
        for (notice, _) in AGENT_NOTICES {
            let on = form.iter().any(|(k, v)| k == "on" && v == notice.as_str());
            if on {
                prefs.remove(notice.as_str());
            } else {
                prefs.insert(notice.as_str().to_string(), Value::Bool(false));
            }
        }
        state
            .store
            .set_user_notify_prefs(me.user.id, &Value::Object(prefs).to_string())
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
            return Err(ConsoleError::NotFound("such active token of yours".into()));
        }
        Ok(Redirect::to("/console/profile").into_response())
    })
    .await
}
