//! An agent's own settings, as the console's profile page and the API's
//! `/api/v1/me` share them: which notices they get by mail, and changing
//! their own password (the current one required, checked under the sign-in
//! page's bound; at least [`MIN_PASSWORD`] characters; every other session
//! of theirs ends, API tokens go on).

use serde_json::{Map, Value, json};

use super::AppState;
use super::error::WebError;
use crate::domain::notify::Notice;
use crate::secrets;
use crate::store::User;

/// The notices an agent gets by mail and may switch off, as they read.
pub const AGENT_NOTICES: [(Notice, &str); 4] = [
    (Notice::TeamNewTicket, "A new ticket arrives"),
    (Notice::Assigned, "A ticket is assigned to me"),
    (
        Notice::RequesterReply,
        "A requester writes on a ticket assigned to me",
    ),
    (Notice::Mentioned, "Someone @mentions me in a note"),
];

/// The shortest new password accepted.
pub const MIN_PASSWORD: usize = 10;

/// The agent's notices: (name, words, on).
pub async fn notices(
    state: &AppState,
    me: &User,
) -> Result<Vec<(Notice, &'static str, bool)>, WebError> {
    let prefs = state.store.user_notify_prefs(me.id).await?;
    let prefs: Map<String, Value> = serde_json::from_str(&prefs).unwrap_or_default();
    Ok(AGENT_NOTICES
        .iter()
        .map(|(n, words)| {
            (
                *n,
                *words,
                prefs.get(n.as_str()) != Some(&Value::Bool(false)),
            )
        })
        .collect())
}

/// Switches the agent's notices: `on(name)` is `Some(true/false)` for each
/// one to set, `None` to leave. A notice switched off is stored as
/// `{"notice": false}` (decision 0014).
pub async fn set_notices(
    state: &AppState,
    me: &User,
    on: impl Fn(&str) -> Option<bool>,
) -> Result<(), WebError> {
    let prefs = state.store.user_notify_prefs(me.id).await?;
    let mut prefs: Map<String, Value> = serde_json::from_str(&prefs).unwrap_or_default();
    for (notice, _) in AGENT_NOTICES {
        match on(notice.as_str()) {
            Some(true) => {
                prefs.remove(notice.as_str());
            }
            Some(false) => {
                prefs.insert(notice.as_str().to_string(), Value::Bool(false));
            }
            None => {}
        }
    }
    state
        .store
        .set_user_notify_prefs(me.id, &Value::Object(prefs).to_string())
        .await?;
    Ok(())
}

/// The notices as JSON (`{"assigned": true, …}`).
pub fn notices_json(list: &[(Notice, &'static str, bool)]) -> Value {
    Value::Object(
        list.iter()
            .map(|(n, _, on)| (n.as_str().to_string(), json!(on)))
            .collect(),
    )
}

/// Changes `me`'s password from `current` to `new`, ending every session
/// of theirs but `keep` (a session digest; empty: none). `Ok(Err(why))`
/// when refused, with a sentence for them; else how many sessions ended.
pub async fn change_password(
    state: &AppState,
    me: &User,
    current: &str,
    new: &str,
    keep: &str,
) -> Result<Result<u64, String>, WebError> {
    let new: String = new.chars().take(1024).collect();
    if new.chars().count() < MIN_PASSWORD {
        return Ok(Err(format!(
            "The new password needs at least {MIN_PASSWORD} characters."
        )));
    }
    let Some(hash) = state.store.user_password_hash(me.id).await? else {
        return Ok(Err("This account signs in with no password.".into()));
    };
    let wait = std::time::Duration::from_secs(2);
    let Some(right) = state.signin.verify(current, hash, wait).await else {
        return Err(WebError::Unavailable);
    };
    if !right {
        tracing::info!(user = %me.email, "password change refused (current password wrong)");
        return Ok(Err("The current password is not right.".into()));
    }
    let hash = secrets::hash_password_off_thread(new)
        .await
        .map_err(|_| WebError::Internal)?;
    let ended = state.store.change_own_password(me.id, &hash, keep).await?;
    tracing::info!(user = %me.email, sessions_ended = ended, "password changed");
    Ok(Ok(ended))
}
