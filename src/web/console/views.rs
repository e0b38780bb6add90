//! Saved views in the console: saved from the queue ("Save this filter as
//! a view"), listed above it with their counts, and changed or deleted on
//! `/console/views` (the built-in presets are shared views an admin edits).

use super::*;
use crate::web::views::{check_name, check_query, listed, may_change, may_see};

#[derive(Debug, Deserialize)]
pub(super) struct ViewForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    shared: String,
}

/// `GET /console/views`
pub(super) async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state, &headers, async |me: &Staff| {
        render(&state, me, None).await
    })
    .await
}

async fn render(state: &AppState, me: &Staff, error: Option<String>) -> Result<Response, WebError> {
    let mut c = base(state, "Views", Some(me));
    c.insert("views".into(), json!(listed(state, &me.user).await?));
    c.insert("error".into(), json!(error));
    let code = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(state.pages.render(code, "console_views", &Value::Object(c)))
}

/// The checked name, filter and owner of a form, or the page saying why not.
async fn checked(
    state: &AppState,
    me: &Staff,
    form: &ViewForm,
) -> Result<Result<(String, String, Option<i64>), Response>, WebError> {
    let checked = async {
        let name = check_name(&form.name)?;
        let query = check_query(state, &me.user, &form.query).await?;
        Ok::<_, WebError>((name, query))
    };
    match checked.await {
        Ok((name, query)) => {
            let owner = if form.shared == "yes" {
                None
            } else {
                Some(me.user.id)
            };
            Ok(Ok((name, query, owner)))
        }
        Err(WebError::BadRequest(why)) => Ok(Err(render(state, me, Some(why)).await?)),
        Err(e) => Err(e),
    }
}

/// `POST /console/views`: saves the queue's filter as a view, then shows it.
pub(super) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ViewForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        me.check(&form.csrf)?;
        let (name, query, owner) = match checked(&state, me, &form).await? {
            Ok(ok) => ok,
            Err(page) => return Ok(page),
        };
        state
            .store
            .create_view(me.user.id, owner, &name, &query, now_millis())
            .await?;
        Ok(Redirect::to(&format!("/console?{query}")).into_response())
    })
    .await
}

/// A view `me` may change.
async fn changeable(
    state: &AppState,
    me: &Staff,
    id: i64,
) -> Result<crate::store::views::SavedView, WebError> {
    let v = state
        .store
        .view(id)
        .await?
        .filter(|v| may_see(v, &me.user))
        .ok_or_else(|| WebError::NotFound(format!("view {id}")))?;
    if !may_change(&v, &me.user) {
        return Err(WebError::Forbidden(
            "A shared view is changed by the agent who made it or an admin.".into(),
        ));
    }
    Ok(v)
}

/// `POST /console/views/{id}`: renames, refilters, shares or unshares.
pub(super) async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<ViewForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        me.check(&form.csrf)?;
        changeable(&state, me, id).await?;
        let (name, query, owner) = match checked(&state, me, &form).await? {
            Ok(ok) => ok,
            Err(page) => return Ok(page),
        };
        state.store.update_view(id, owner, &name, &query).await?;
        Ok(Redirect::to("/console/views").into_response())
    })
    .await
}

/// `POST /console/views/{id}/delete`
pub(super) async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        me.check(&form.csrf)?;
        changeable(&state, me, id).await?;
        state.store.delete_view(id).await?;
        Ok(Redirect::to("/console/views").into_response())
    })
    .await
}
