//! Canned replies and macros in the console: the page that lists, writes,
//! edits and deletes them (`/console/canned`), the picker beside the reply
//! box (a list filtered as the agent types; "Insert" puts the text, filled
//! for this ticket, into the reply, without script as with it), and
//! applying a macro to a ticket in one go.

use axum::Router;
use axum::extract::{Form, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::ticket::{Draft, back_to, find, ticket_page};
use super::{Choices, Staff, WebError, base, choices, options, page};
use crate::actions::ReplyInput;
use crate::domain::canned::fill;
use crate::store::canned::CannedResponse;
use crate::store::{Ticket, now_millis};
use crate::web::AppState;
use crate::web::canned::{CannedDraft, check, fill_with, may_change, may_see, placeholders_json};
use crate::web::files::read_upload;

/// The canned responses' pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/canned", get(list).post(create))
        .route("/console/canned/{id}", get(edit).post(save))
        .route("/console/canned/{id}/delete", post(delete))
}

/// A canned response `me` may use (others' personal ones are not found).
pub(crate) async fn usable(
    state: &AppState,
    me: &Staff,
    id: i64,
) -> Result<CannedResponse, WebError> {
    state
        .store
        .canned(id)
        .await?
        .filter(|c| may_see(c, &me.user))
        .ok_or_else(|| WebError::NotFound(format!("canned reply {id}")))
}

/// The ticket page's picker and macro list: every canned response `me`
/// may use, its text filled for `t`, and the macro going with the draft.
pub(crate) async fn canned_context(
    state: &AppState,
    me: &Staff,
    t: &Ticket,
    draft: &Draft,
    c: &mut Map<String, Value>,
) -> Result<(), WebError> {
    let list = state.store.canned_for(me.user.id).await?;
    let with = fill_with(t, &me.user);
    let item = |r: &CannedResponse| {
        json!({
            "id": r.id,
            "title": r.title,
            "text": fill(&r.body, &with),
            "changes": r.changes.describe(),
        })
    };
    c.insert(
        "canned".into(),
        json!(list.iter().map(item).collect::<Vec<_>>()),
    );
    c.insert(
        "macros".into(),
        json!(
            list.iter()
                .filter(|r| !r.changes.is_empty())
                .map(item)
                .collect::<Vec<_>>()
        ),
    );
    let chosen = draft
        .macro_id
        .and_then(|id| list.iter().find(|r| r.id == id && !r.changes.is_empty()));
    c.insert(
        "draft_macro".into(),
        chosen.map_or(
            Value::Null,
            |r| json!({ "id": r.id, "title": r.title, "changes": r.changes.describe() }),
        ),
    );
    Ok(())
}

/// The canned response a picker's words name: the one titled so (any
/// case), else the only one whose title contains them.
fn picked<'a>(list: &'a [CannedResponse], words: &str) -> Result<&'a CannedResponse, WebError> {
    let words = words.trim().to_lowercase();
    if words.is_empty() {
        return Err(WebError::BadRequest(
            "Type the name of a canned reply to insert.".into(),
        ));
    }
    if let Some(c) = list.iter().find(|c| c.title.to_lowercase() == words) {
        return Ok(c);
    }
    let mut like = list
        .iter()
        .filter(|c| c.title.to_lowercase().contains(&words));
    match (like.next(), like.next()) {
        (Some(c), None) => Ok(c),
        (None, _) => Err(WebError::BadRequest(format!(
            "No canned reply is called “{words}”."
        ))),
        (Some(_), Some(_)) => Err(WebError::BadRequest(format!(
            "Several canned replies match “{words}”: type more of the name."
        ))),
    }
}

/// `POST /console/tickets/{ref}/canned` (the reply form's "Insert"): the
/// page again, the picked text filled for the ticket and added to the
/// reply as typed so far; a macro's changes noted to go with it.
pub(crate) async fn insert(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    multipart: Multipart,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        let t = find(&state, &reference).await?;
        let form = read_upload(&state, &headers, multipart).await?;
        me.check(form.field("csrf"))?;
        let list = state.store.canned_for(me.user.id).await?;
        let c = picked(&list, form.field("canned"))?;
        let text = fill(&c.body, &fill_with(&t, &me.user));
        let typed = form.field("body").trim_end();
        let body = match (typed.is_empty(), text.is_empty()) {
            (true, _) => text,
            (false, true) => typed.to_string(),
            (false, false) => format!("{typed}\n\n{text}"),
        };
        let draft = Draft {
            body,
            status: form.field("status").trim().to_string(),
            macro_id: if c.changes.is_empty() {
                form.field("macro").trim().parse().ok()
            } else {
                Some(c.id)
            },
            seen: form.field("seen").trim().parse().ok(),
            unseen: Vec::new(),
            dropped_files: !form.files.is_empty() || form.refused.is_some(),
        };
        ticket_page(&state, me, &t, draft, StatusCode::OK).await
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct MacroForm {
    csrf: String,
    #[serde(rename = "macro")]
    id: i64,
    seen: Option<i64>,
}

/// `POST /console/tickets/{ref}/macro`: applies a macro as it is, its text
/// (if any) sent as the reply, in one transaction; a reply over messages
/// not seen comes back as a draft instead.
pub(crate) async fn apply(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    Form(form): Form<MacroForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        me.check(&form.csrf)?;
        let t = find(&state, &reference).await?;
        let m = usable(&state, me, form.id).await?;
        let text = fill(&m.body, &fill_with(&t, &me.user));
        let reply = (!text.trim().is_empty()).then(|| ReplyInput::text(&text));
        let now = now_millis();
        let mut tx = state.store.begin().await?;
        if let (Some(seen), true) = (form.seen, reply.is_some()) {
            let unseen = state
                .actions
                .unseen_in(&mut tx, me.actor(), t.id, seen)
                .await?;
            if !unseen.0.is_empty() {
                drop(tx);
                let draft = Draft {
                    body: text,
                    macro_id: Some(m.id),
                    unseen: unseen.0,
                    ..Draft::default()
                };
                return ticket_page(&state, me, &t, draft, StatusCode::CONFLICT).await;
            }
        }
        state
            .actions
            .apply_macro_in(&mut tx, me.actor(), t.id, reply, &m.changes, now)
            .await?;
        tx.commit().await?;
        Ok(back_to(&state, &t))
    })
    .await
}

/// The management form as sent.
#[derive(Debug, Deserialize)]
struct CannedForm {
    csrf: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    shared: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    tags: String,
}

impl CannedForm {
    fn draft(&self) -> CannedDraft {
        CannedDraft {
            title: self.title.clone(),
            body: self.body.clone(),
            shared: self.shared == "yes",
            status: self.status.clone(),
            priority: self.priority.clone(),
            category: self.category.clone(),
            assignee: self.assignee.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// The page: the list, and the form (a new one, or `editing`).
async fn render(
    state: &AppState,
    me: &Staff,
    form: &CannedDraft,
    editing: Option<i64>,
    error: Option<String>,
) -> Result<Response, WebError> {
    let list = state.store.canned_for(me.user.id).await?;
    let rows: Vec<Value> = list
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "title": c.title,
                "shared": c.owner_id.is_none(),
                "changes": c.changes.describe(),
                "excerpt": c.body.chars().take(120).collect::<String>(),
                "editable": may_change(c, &me.user),
            })
        })
        .collect();
    let settings = state.settings();
    let agents = state.store.users().await?;
    let Choices {
        statuses,
        priorities,
        categories,
        agents: agent_items,
    } = choices(&settings, &agents, "");
    let mut assignees = vec![
        ("me", "Whoever applies it"),
        ("nobody", "Nobody (unassign)"),
    ];
    assignees.extend(agent_items);
    let mut c = base(state, "Canned replies and macros", Some(me));
    c.insert("list".into(), json!(rows));
    c.insert(
        "form".into(),
        json!({
            "action": editing.map_or("/console/canned".to_string(), |id| format!("/console/canned/{id}")),
            "editing": editing.is_some(),
            "title": form.title,
            "body": form.body,
            "shared": form.shared,
            "tags": form.tags,
            "error": error,
        }),
    );
    c.insert(
        "status_select".into(),
        json!(options(statuses, &form.status)),
    );
    c.insert(
        "priority_select".into(),
        json!(options(priorities, &form.priority)),
    );
    c.insert(
        "category_select".into(),
        json!(options(categories, &form.category)),
    );
    c.insert(
        "assignee_select".into(),
        json!(options(assignees, &form.assignee)),
    );
    c.insert("placeholders".into(), placeholders_json());
    let code = if c["form"]["error"].is_null() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok(state
        .pages
        .render(code, "console_canned", &Value::Object(c)))
}

async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state, &headers, async |me: &Staff| {
        render(&state, me, &CannedDraft::default(), None, None).await
    })
    .await
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CannedForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        me.check(&form.csrf)?;
        let draft = form.draft();
        match check(&state, &me.user, &draft).await {
            Ok(new) => {
                state
                    .store
                    .create_canned(me.user.id, &new, now_millis())
                    .await?;
                Ok(Redirect::to("/console/canned").into_response())
            }
            Err(crate::web::error::WebError::BadRequest(why)) => {
                render(&state, me, &draft, None, Some(why)).await
            }
            Err(e) => Err(e),
        }
    })
    .await
}

/// A canned response `me` may change.
async fn changeable(state: &AppState, me: &Staff, id: i64) -> Result<CannedResponse, WebError> {
    let c = usable(state, me, id).await?;
    if !may_change(&c, &me.user) {
        return Err(WebError::Forbidden(
            "A shared canned reply is changed by the agent who wrote it or an admin.".into(),
        ));
    }
    Ok(c)
}

async fn edit(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    page(&state, &headers, async |me: &Staff| {
        let c = changeable(&state, me, id).await?;
        render(&state, me, &CannedDraft::of(&c), Some(id), None).await
    })
    .await
}

async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CannedForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        me.check(&form.csrf)?;
        changeable(&state, me, id).await?;
        let draft = form.draft();
        match check(&state, &me.user, &draft).await {
            Ok(new) => {
                state.store.update_canned(id, &new, now_millis()).await?;
                Ok(Redirect::to("/console/canned").into_response())
            }
            Err(crate::web::error::WebError::BadRequest(why)) => {
                render(&state, me, &draft, Some(id), Some(why)).await
            }
            Err(e) => Err(e),
        }
    })
    .await
}

async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<super::CsrfForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        me.check(&form.csrf)?;
        changeable(&state, me, id).await?;
        state.store.delete_canned(id).await?;
        Ok(Redirect::to("/console/canned").into_response())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::canned::MacroChanges;

    fn named(id: i64, title: &str) -> CannedResponse {
        CannedResponse {
            id,
            owner_id: None,
            created_by: None,
            title: title.into(),
            body: String::new(),
            changes: MacroChanges::default(),
            updated_at: 0,
        }
    }

    #[test]
    fn the_picker_finds_by_title_then_by_part() {
        let list = [
            named(1, "Thanks"),
            named(2, "Thanks for waiting"),
            named(3, "Refund"),
        ];
        assert_eq!(picked(&list, "thanks").unwrap().id, 1);
        assert_eq!(picked(&list, " refu").unwrap().id, 3);
        assert_eq!(picked(&list, "waiting").unwrap().id, 2);
        assert!(picked(&list, "than").is_err(), "two match");
        assert!(picked(&list, "nothing").is_err());
        assert!(picked(&list, "  ").is_err());
    }
}
