//! A new request from the portal, and the help page.

use super::*;

#[derive(Debug, Default)]
pub(super) struct NewForm {
    csrf: String,
    subject: String,
    body: String,
    category: Option<String>,
    priority: Option<String>,
    related_kind: Option<String>,
    related_id: Option<String>,
}

pub(super) fn new_page(
    state: &AppState,
    session: &WebSession,
    form: &NewForm,
    error: Option<&str>,
) -> Response {
    let tickets = &state.settings().tickets;
    let chosen_category = form
        .category
        .clone()
        .unwrap_or_else(|| tickets.default_category().to_string());
    let chosen_priority = form
        .priority
        .clone()
        .unwrap_or_else(|| tickets.default_priority.as_str().to_string());
    let categories: Vec<Value> = tickets
        .categories
        .iter()
        .map(|c| json!({ "name": c, "selected": *c == chosen_category }))
        .collect();
    let priorities: Vec<Value> = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ]
    .into_iter()
    .map(|p| {
        let v = p.as_str();
        let mut label = v.to_string();
        label[..1].make_ascii_uppercase();
        json!({ "value": v, "label": label, "selected": v == chosen_priority })
    })
    .collect();
    let mut c = base(state, "New request", true);
    c.insert("csrf".into(), json!(session.csrf));
    c.insert("categories".into(), json!(categories));
    c.insert("priorities".into(), json!(priorities));
    c.insert("related_kinds".into(), json!(tickets.related_kinds));
    c.insert(
        "max_file".into(),
        json!(human_size(tickets.max_attachment_bytes as i64)),
    );
    c.insert(
        "form".into(),
        json!({ "subject": form.subject, "body": form.body }),
    );
    c.insert("error".into(), json!(error));
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    state.pages.render(status, "portal_new", &Value::Object(c))
}

pub(super) async fn new_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match requester(&state, &headers).await {
        Ok((_, session)) => match address_wide(&session) {
            Ok(()) => new_page(&state, &session, &NewForm::default(), None),
            Err(e) => e.portal_page(&state),
        },
        Err(e) => e.portal_page(&state),
    }
}

pub(super) async fn new_ticket(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let go = async {
        let (me, session) = requester(&state, &headers).await?;
        address_wide(&session)?;
        let mut upload = read_upload(&state, &headers, multipart).await?;
        let text = |name: &str| upload.fields.get(name).cloned();
        let form = NewForm {
            csrf: upload.field("csrf").to_string(),
            subject: upload.field("subject").to_string(),
            body: upload.field("body").to_string(),
            category: text("category"),
            priority: text("priority"),
            related_kind: text("related_kind"),
            related_id: text("related_id"),
        };
        form_from_this_session(&session, &form.csrf)?;
        if let Some(why) = &upload.refused {
            return Ok(new_page(&state, &session, &form, Some(why)));
        }
        let who = state
            .store
            .requester(me)
            .await?
            .ok_or(WebError::Unauthorized)?;
        let priority = match form.priority.as_deref() {
            Some(p) => match p.parse::<Priority>() {
                Ok(p) => Some(p),
                Err(e) => return Ok(new_page(&state, &session, &form, Some(&e.to_string()))),
            },
            None => None,
        };
        let mut input = OpenTicket::new(
            who.email.clone(),
            form.subject.trim(),
            &form.body,
            Channel::Web,
        );
        input.requester_name = Some(who.display_name());
        input.category = form.category.clone();
        input.priority = priority;
        if let (Some(kind), Some(id)) = (&form.related_kind, &form.related_id)
            && !id.trim().is_empty()
        {
            input.related = Some((kind.clone(), id.trim().to_string()));
        }
        if form.subject.trim().is_empty() || form.body.trim().is_empty() {
            return Ok(new_page(
                &state,
                &session,
                &form,
                Some("Please fill in a subject and a message."),
            ));
        }
        input.files = std::mem::take(&mut upload.files);
        let mut tx = state.store.begin().await?;
        match state
            .actions
            .open_in(&mut tx, None, input, now_millis())
            .await
        {
            Ok(opened) => {
                tx.commit().await?;
                Ok(Redirect::to(&format!("/portal/tickets/{}", opened.reference)).into_response())
            }
            Err(ActionError::Invalid(m)) => Ok(new_page(&state, &session, &form, Some(&m))),
            Err(e) => Err(e.into()),
        }
    };
    go.await.unwrap_or_else(|e: WebError| e.portal_page(&state))
}

pub(super) async fn help(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = requester(&state, &headers).await.ok().map(|(_, s)| s);
    let mut c = base(&state, "Help", session.is_some());
    if let Some(s) = session {
        c.insert("csrf".into(), json!(s.csrf));
    }
    c.insert("prefix".into(), json!(state.settings().tickets.prefix));
    c.insert(
        "reopen_window".into(),
        json!(state.settings().tickets.reopen_window.words()),
    );
    state
        .pages
        .render(StatusCode::OK, "portal_help", &Value::Object(c))
}
