//! A requester's tickets: the list, a ticket's conversation as chat
//! bubbles, reply (files included), close, and attachment downloads.

use super::*;

pub(super) async fn my_tickets(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let go = async {
        let (me, session) = requester(&state, &headers).await?;
        address_wide(&session)?;
        let tickets: Vec<Value> = state
            .store
            .requester_tickets(me, 500)
            .await?
            .into_iter()
            .map(|t| {
                json!({
                    "ref": t.reference.to_string(),
                    "subject": t.subject,
                    "status": t.status.as_str(),
                    "status_label": t.status.requester_label(),
                    "updated": t.updated_at,
                    "unread": t.unread,
                })
            })
            .collect();
        let mut c = base(&state, "My requests", true);
        c.insert("tickets".into(), json!(tickets));
        c.insert("csrf".into(), json!(session.csrf));
        Ok(state
            .pages
            .render(StatusCode::OK, "portal_tickets", &Value::Object(c)))
    };
    go.await.unwrap_or_else(|e: WebError| e.portal_page(&state))
}

/// The conversation of a ticket page for the viewer `my_email`: rendered
/// once per cached thread and viewer, then reused until the thread changes.
pub(super) fn conversation(
    state: &AppState,
    thread: &Thread,
    my_email: Option<String>,
) -> Result<std::sync::Arc<str>, WebError> {
    if let Some(html) = thread.rendered.lock().expect("thread").get(&my_email) {
        return Ok(html.clone());
    }
    let mut messages = Vec::new();
    for m in &thread.messages {
        if m.kind != MessageKind::Reply {
            continue;
        }
        let mine = m.author_kind == AuthorKind::Requester
            && m.author_email.as_deref() == my_email.as_deref();
        let staff = m.author_kind == AuthorKind::Agent;
        let author = if staff {
            m.author_name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| state.settings().outbound.team_name.clone())
        } else {
            m.author_name
                .clone()
                .filter(|n| !n.is_empty())
                .or(m.author_email.clone())
                .unwrap_or_default()
        };
        let full = m
            .full_text
            .as_deref()
            .map(str::trim)
            .filter(|f| *f != m.body_text.trim())
            .map(str::to_string);
        let (html, held_images) = match thread.html.get(&m.id) {
            Some((html, held)) => (Some(html.as_str()), *held),
            None => (None, 0),
        };
        messages.push(json!({
            "html": html,
            "held_images": held_images,
            "system": false,
            "mine": mine,
            "staff": staff,
            "author": author,
            "when": m.created_at,
            "text": m.body_text,
            "full": full,
            "attachments": thread.files.get(&m.id).into_iter().flatten().map(|a| json!({
                "id": a.id,
                "name": a.filename,
                "size": human_size(a.size),
                "image": previewable(&a.content_type),
            })).collect::<Vec<_>>(),
        }));
    }
    let html: std::sync::Arc<str> = state
        .pages
        .fragment("portal_conversation", &json!({ "messages": messages }))
        .map_err(|e| {
            tracing::error!(error = %e, "the conversation did not render");
            WebError::Internal
        })?
        .into();
    let mut rendered = thread.rendered.lock().expect("thread");
    if rendered.len() >= 16 {
        rendered.clear();
    }
    rendered.insert(my_email, html.clone());
    Ok(html)
}

pub(super) async fn ticket_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Response {
    let go = async {
        let (me, session) = requester(&state, &headers).await?;
        let t = my_ticket(&state, me, &session, &reference).await?;
        if !t
            .reference
            .to_string()
            .eq_ignore_ascii_case(reference.trim())
        {
            // Merged: the conversation continues on the ticket it went into.
            return Ok(Redirect::to(&format!(
                "/portal/tickets/{}?merged={reference}",
                t.reference
            ))
            .into_response());
        }
        show_ticket(&state, me, &session, &t, None).await
    };
    go.await.unwrap_or_else(|e: WebError| e.portal_page(&state))
}

/// A reply the portal refused, shown again as typed with the reason.
pub(super) struct Refusal<'a> {
    body: &'a str,
    why: &'a str,
}

/// The requester's ticket page; after a refused reply, with the text as
/// typed and the reason beside the file input.
pub(super) async fn show_ticket(
    state: &AppState,
    me: i64,
    session: &WebSession,
    t: &Ticket,
    refused: Option<Refusal<'_>>,
) -> Result<Response, WebError> {
    let my_email = state
        .store
        .requester(me)
        .await?
        .map(|r| r.email.to_string());
    let thread = state.threads.get(&state.store, t).await?;
    let last = thread
        .messages
        .iter()
        .rev()
        .find(|m| m.kind == MessageKind::Reply)
        .map(|m| m.id);
    let conversation = conversation(state, &thread, my_email)?;
    if let Some(id) = last
        && !state.memory.has_read(t.id, me, id)
    {
        state
            .store
            .mark_read(t.id, &format!("requester:{me}"), id)
            .await?;
        state.memory.remember_read(t.id, me, id);
    }
    let now = now_millis();
    let notice = match t.status {
        Status::Pending => Some("We are waiting for your answer.".to_string()),
        Status::Resolved => {
            Some("We think this is solved. Reply if it is not, or close the request.".to_string())
        }
        _ => None,
    };
    let mut c = base(state, &t.subject, true);
    c.insert(
        "ticket".into(),
        json!({
            "ref": t.reference.to_string(),
            "subject": t.subject,
            "status": t.status.as_str(),
            "status_label": t.status.requester_label(),
            "created": t.created_at,
        }),
    );
    c.insert("conversation".into(), json!(&*conversation));
    c.insert("csrf".into(), json!(session.csrf));
    c.insert(
        "max_file".into(),
        json!(human_size(
            state.settings().tickets.max_attachment_bytes as i64
        )),
    );
    c.insert("closed".into(), json!(t.status == Status::Closed));
    c.insert("may_close".into(), json!(t.requester.id == me));
    c.insert(
        "can_reply".into(),
        json!(within_reopen_window(state, t, now)),
    );
    c.insert("notice".into(), json!(notice));
    c.insert("typed_body".into(), json!(""));
    c.insert("file_error".into(), Value::Null);
    let status = match &refused {
        Some(r) => {
            c.insert("typed_body".into(), json!(r.body));
            c.insert("file_error".into(), json!(r.why));
            StatusCode::PAYLOAD_TOO_LARGE
        }
        None => StatusCode::OK,
    };
    Ok(state
        .pages
        .render(status, "portal_ticket", &Value::Object(c)))
}

pub(super) async fn reply(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    multipart: Multipart,
) -> Response {
    let go = async {
        let (me, session) = requester(&state, &headers).await?;
        let t = my_ticket(&state, me, &session, &reference).await?;
        let mut form = read_upload(&state, &headers, multipart).await?;
        form_from_this_session(&session, form.field("csrf"))?;
        if let Some(why) = &form.refused {
            let typed = Refusal {
                body: form.field("body"),
                why,
            };
            return show_ticket(&state, me, &session, &t, Some(typed)).await;
        }
        let mut tx = state.store.begin().await?;
        let outcome = state
            .actions
            .reply_in(
                &mut tx,
                Actor::Requester { requester_id: me },
                t.id,
                ReplyInput {
                    files: std::mem::take(&mut form.files),
                    ..ReplyInput::text(form.field("body"))
                },
                now_millis(),
            )
            .await?;
        tx.commit().await?;
        let to = match outcome {
            ReplyOutcome::Added { .. } => t.reference.to_string(),
            ReplyOutcome::NewTicket { reference, .. } => reference.to_string(),
        };
        Ok(Redirect::to(&format!("/portal/tickets/{to}")).into_response())
    };
    go.await.unwrap_or_else(|e: WebError| e.portal_page(&state))
}

#[derive(Debug, Deserialize)]
pub(super) struct CsrfForm {
    pub(super) csrf: String,
}

/// The close form: the CSRF token and the box that confirms it.
#[derive(Debug, Deserialize)]
pub(super) struct CloseForm {
    csrf: String,
    #[serde(default)]
    confirm: String,
}

pub(super) async fn close(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    Form(form): Form<CloseForm>,
) -> Response {
    let go = async {
        let (me, session) = requester(&state, &headers).await?;
        form_from_this_session(&session, &form.csrf)?;
        let t = my_ticket(&state, me, &session, &reference).await?;
        if form.confirm != "yes" {
            return Err(WebError::BadRequest(
                "Tick the box to confirm that the request can be closed; nothing was changed."
                    .into(),
            ));
        }
        state
            .actions
            .change(
                Actor::Requester { requester_id: me },
                t.id,
                Change::Status(Status::Closed),
                now_millis(),
            )
            .await?;
        Ok(Redirect::to(&format!("/portal/tickets/{}", t.reference)).into_response())
    };
    go.await.unwrap_or_else(|e: WebError| e.portal_page(&state))
}

pub(super) async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let go = async {
        let (me, session) = requester(&state, &headers).await?;
        let (ticket_id, public, file, data) = state
            .store
            .attachment_download(id)
            .await?
            .ok_or(WebError::NotFound("request".into()))?;
        let scoped = match session.ticket_id {
            None => true,
            Some(scope) => {
                scope == ticket_id
                    || state
                        .store
                        .ticket(ticket_id)
                        .await?
                        .is_some_and(|t| in_scope(&session, &t))
            }
        };
        if !public || !scoped || !state.store.requester_on_ticket(me, ticket_id).await? {
            return Err(WebError::NotFound("request".into()));
        }
        Ok(files::file_response(&file, data))
    };
    go.await.unwrap_or_else(|e: WebError| e.portal_page(&state))
}
