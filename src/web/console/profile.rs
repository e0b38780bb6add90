//! The agent's profile page: API tokens, made (shown once) and revoked.

use super::*;

pub(super) async fn profile_page(
    state: &AppState,
    me: &Staff,
    new_token: Option<String>,
) -> Result<Response, ConsoleError> {
    let tokens = state.store.api_tokens(me.user.id).await?;
    let mut c = base(state, "Profile", Some(me));
    c.insert("new_token".into(), json!(new_token));
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
        .render(StatusCode::OK, "console_profile", &Value::Object(c)))
}

pub(super) async fn profile(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state, &headers, async |me: &Staff| {
        profile_page(&state, me, None).await
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
        profile_page(&state, me, Some(token)).await
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
