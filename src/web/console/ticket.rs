//! The console's ticket page: the whole thread (replies, internal notes
//! set apart, system messages), reply with an optional status, internal
//! note, attachments, the field controls, merge and delete (admins), and
//! attachment downloads. Reading the page clears the agent's unread dot.

use axum::Router;
use axum::extract::{Form, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Choices, Staff, WebError, base, choices, message, options, page, status_label};
use crate::actions::{Change, ReplyInput};
use crate::domain::{EmailAddress, MessageKind, Priority, Status, parse_time, rfc3339};
use crate::store::{Ticket, now_millis};
use crate::web::AppState;
use crate::web::files::{file_response, human_size, mail_html, previewable, read_upload, when};

mod change;
use change::{delete, merge, update};

/// The ticket page's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/tickets/{reference}", get(show))
        .route("/console/tickets/{reference}/reply", post(reply))
        .route("/console/tickets/{reference}/note", post(note))
        .route("/console/tickets/{reference}/update", post(update))
        .route("/console/tickets/{reference}/merge", post(merge))
        .route("/console/tickets/{reference}/delete", post(delete))
        .route(
            "/console/tickets/{reference}/canned",
            post(super::canned::insert),
        )
        .route(
            "/console/tickets/{reference}/presence",
            post(crate::web::live::console_presence),
        )
        .route(
            "/console/tickets/{reference}/macro",
            post(super::canned::apply),
        )
        .route(
            "/console/tickets/{reference}/outbox/{id}/retry",
            post(retry_delivery),
        )
        .route("/console/attachments/{id}", get(download))
}

/// A notice as people name it.
pub(crate) fn notice_words(name: &str) -> &str {
    match name {
        "receipt" => "Receipt",
        "team_new_ticket" => "New-ticket alert to the team",
        "agent_reply" => "Agent's reply",
        "status_changed" => "Resolved/closed notice",
        "assigned" => "Assignment notice",
        "requester_reply" => "Requester's reply notice",
        "portal_link" => "Portal link",
        "mentioned" => "Mention in a note",
        other => other,
    }
}

/// An outbox row for the pages: what, to whom, its state and why.
pub(crate) fn delivery_json(o: &crate::store::outbox::OutboxRow) -> Value {
    json!({
        "id": o.id,
        "notice": notice_words(&o.notice),
        "recipient": o.recipient,
        "state": match o.state.as_str() {
            "failed" => "failed",
            "held" => "held back by the loop guard",
            "suppressed" => "not sent",
            other => other,
        },
        "attempts": o.attempts,
        "why": o.last_error,
        "retry": matches!(o.state.as_str(), "failed" | "held" | "suppressed"),
    })
}

/// `POST /console/tickets/{ref}/outbox/{id}/retry`: queues a mail of this
/// ticket that failed, was held or suppressed again.
async fn retry_delivery(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((reference, id)): Path<(String, i64)>,
    Form(form): Form<super::CsrfForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        me.check(&form.csrf)?;
        let t = find(&state, &reference).await?;
        if !state
            .store
            .outbox_for_ticket(t.id)
            .await?
            .iter()
            .any(|o| o.id == id)
        {
            return Err(WebError::NotFound(format!("mail {id} of {reference}")));
        }
        state.store.outbox_retry(Some(id), now_millis()).await?;
        Ok(back_to(&state, &t))
    })
    .await
}

/// A ticket by reference (of this install's prefix).
pub(crate) async fn find(state: &AppState, reference: &str) -> Result<Ticket, WebError> {
    crate::web::error::ticket_by_reference(state, reference).await
}

/// Back to the ticket's page after a change (the badges may have moved).
pub(crate) fn back_to(state: &AppState, t: &Ticket) -> Response {
    state.badges.clear();
    Redirect::to(&format!("/console/tickets/{}", t.reference)).into_response()
}

async fn reference_of(state: &AppState, id: Option<i64>) -> Result<Option<String>, WebError> {
    Ok(match id {
        Some(id) => state
            .store
            .ticket(id)
            .await?
            .map(|t| t.reference.to_string()),
        None => None,
    })
}

fn date_only(ms: i64) -> String {
    rfc3339(ms).chars().take(10).collect()
}

async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        let t = find(&state, &reference).await?;
        ticket_page(&state, me, &t, Draft::default(), StatusCode::OK).await
    })
    .await
}

/// A reply being written, shown again on the ticket's page: after a
/// canned text was inserted, or when messages arrived that its author has
/// not seen.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    pub body: String,
    /// The status chosen with it (empty: automatic).
    pub status: String,
    /// The macro whose changes go with it.
    pub macro_id: Option<i64>,
    /// The newest message the writer had seen (`None`: the newest now).
    pub seen: Option<i64>,
    /// Messages from others the writer had not seen: (id, who).
    pub unseen: Vec<(i64, String)>,
    /// Files were attached and must be attached again.
    pub dropped_files: bool,
}

/// The ticket's page, with a reply being written (empty for a fresh page).
///
/// Long because it fills one page's context, field by field; the pieces with logic of
/// their own (`reference_of`, `date_only`, the customer panel) are functions.
pub(crate) async fn ticket_page(
    state: &AppState,
    me: &Staff,
    t: &Ticket,
    draft: Draft,
    code: StatusCode,
) -> Result<Response, WebError> {
    let messages = state.store.messages(t.id, true).await?;
    let files = state.store.ticket_attachments(t.id).await?;
    let cc = state.store.cc_addresses(t.id).await?;
    let agents = state.store.users().await?;
    if let Some(last) = messages.last() {
        state.store.mark_read(t.id, &me.viewer(), last.id).await?;
    }
    // Opening the ticket is looking at its mentions of this agent.
    let mentions_left = if me.mentions > 0 {
        state
            .store
            .mentions_seen(me.user.id, t.id, crate::store::now_millis())
            .await?;
        state.store.mentions_unseen(me.user.id).await?
    } else {
        0
    };
    let thread: Vec<Value> = messages
            .iter()
            .map(|m| {
                let full = m
                    .full_text
                    .as_deref()
                    .filter(|f| f.trim() != m.body_text.trim() && !f.trim().is_empty());
                let role = m.author_role.map(|r| r.as_str());
                let mine = files.get(&m.id).map_or(&[][..], Vec::as_slice);
                // The mail's formatted view, its inline images in place.
                let (html, held_images) = match m.body_html.as_deref() {
                    Some(h) if !h.trim().is_empty() => {
                        let (html, held) = mail_html(h, mine, "/console/attachments/");
                        (Some(html), held)
                    }
                    _ => (None, 0),
                };
                json!({
                    "id": m.id,
                    "kind": m.kind.as_str(),
                    "system": m.kind == MessageKind::System,
                    "note": m.kind == MessageKind::Note,
                    "author": m.author_name.clone().or(m.author_email.clone()).unwrap_or_else(|| "postdesk".into()),
                    "staff": role.is_some(),
                    "role": role,
                    "when": m.created_at,
                    "text": m.body_text,
                    "full": full,
                    "mail_id": m.mail_message_id,
                    "notice": m.notice,
                    "verification": m.verification_json(),
                    "html": html,
                    "held_images": held_images,
                    "files": mine.iter().map(|f| json!({
                        "id": f.id, "name": f.filename, "size": human_size(f.size),
                        "image": previewable(&f.content_type),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
    let settings = state.settings();
    let assignee = t.assignee.as_ref().map(|u| u.email.as_str()).unwrap_or("");
    let Choices {
        statuses,
        priorities,
        mut categories,
        agents: agent_items,
    } = choices(&settings, &agents, assignee);
    if !categories.iter().any(|c| c.0 == t.category) {
        categories.push((&t.category, &t.category));
    }
    let related_kind = t.related.as_ref().map(|r| r.0.as_str()).unwrap_or("");
    let related_kinds: Vec<(&str, &str)> = settings
        .tickets
        .related_kinds
        .iter()
        .map(|k| (k.as_str(), k.as_str()))
        .collect();
    let mut c = base(state, &t.subject, Some(me));
    if let Some(m) = c.get_mut("me").and_then(Value::as_object_mut) {
        m.insert("mentions".into(), json!(mentions_left));
    }
    c.insert(
        "t".into(),
        json!({
            "ref": t.reference.to_string(),
            "subject": t.subject,
            "status": t.status.as_str(),
            "status_label": status_label(t.status),
            "priority": t.priority.as_str(),
            "category": t.category,
            "channel": t.channel.as_str(),
            "created": t.created_at,
            "requester": t.requester.display_name(),
            "requester_email": t.requester.email.as_str(),
            "undeliverable": t.requester.undeliverable_at.is_some(),
            "cc": cc.join(", "),
            "sla": t.sla_state.as_str(),
            "sla_due": t.sla_due_at.map(when),
            "first_response": t.first_response_at.map(when),
            "due": t.due_at.map(when),
            "due_date": t.due_at.map(date_only).unwrap_or_default(),
            "tags": t.tags.join(", "),
            "related_id": t.related.as_ref().map(|r| r.1.clone()).unwrap_or_default(),
            "merged_into": reference_of(state, t.merged_into_id).await?,
            "linked": reference_of(state, t.linked_ticket_id).await?,
        }),
    );
    c.insert("messages".into(), json!(thread));
    // Mail about this ticket that did not go out, and why.
    let deliveries: Vec<Value> = state
        .store
        .outbox_for_ticket(t.id)
        .await?
        .iter()
        .filter(|o| matches!(o.state.as_str(), "failed" | "held" | "suppressed"))
        .map(delivery_json)
        .collect();
    c.insert("deliveries".into(), json!(deliveries));
    c.insert("prefix".into(), json!(state.settings().tickets.prefix));
    c.insert(
        "status_select".into(),
        json!(options(statuses.iter().copied(), t.status.as_str())),
    );
    c.insert(
        "priority_select".into(),
        json!(options(priorities, t.priority.as_str())),
    );
    c.insert(
        "category_select".into(),
        json!(options(categories.iter().copied(), &t.category)),
    );
    c.insert(
        "assignee_select".into(),
        json!(options(agent_items, assignee)),
    );
    c.insert(
        "related_kinds".into(),
        if related_kinds.is_empty() {
            Value::Null
        } else {
            json!(options(related_kinds, related_kind))
        },
    );
    let newest = messages.last().map_or(0, |m| m.id);
    super::canned::canned_context(state, me, t, &draft, &mut c).await?;
    let ratings = state.store.ratings(t.id).await?;
    c.insert(
        "ratings".into(),
        json!(
            ratings
                .iter()
                .map(|r| json!({
                    "good": r.good,
                    "comment": r.comment,
                    "when": r.updated_at,
                }))
                .collect::<Vec<_>>()
        ),
    );
    let reference = t.reference.to_string();
    let customer = crate::web::customer::glance(state, t.requester.id, Some(&reference)).await?;
    c.insert("customer".into(), customer.unwrap_or(Value::Null));
    c.insert(
            "draft".into(),
            json!({
                "body": draft.body,
                "seen": draft.seen.unwrap_or(newest),
                "unseen": draft.unseen.iter().map(|(id, who)| json!({ "id": id, "who": who })).collect::<Vec<_>>(),
                "dropped_files": draft.dropped_files,
            }),
        );
    c.insert(
        "statuses".into(),
        json!(options(statuses.iter().copied(), &draft.status)),
    );
    Ok(state
        .pages
        .render(code, "console_ticket", &Value::Object(c)))
}

async fn reply(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    multipart: Multipart,
) -> Response {
    write(&state, &headers, &reference, multipart, MessageKind::Reply).await
}

async fn note(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    multipart: Multipart,
) -> Response {
    write(&state, &headers, &reference, multipart, MessageKind::Note).await
}

/// A reply (with an optional status, and a macro's changes when one was
/// picked) or an internal note, with its files, in one transaction. A
/// reply written over messages from others that its author had not seen
/// is not sent: the page comes back with them marked and the reply kept.
async fn write(
    state: &AppState,
    headers: &HeaderMap,
    reference: &str,
    multipart: Multipart,
    kind: MessageKind,
) -> Response {
    page(state, headers, async |me: &Staff| {
        let t = find(state, reference).await?;
        let mut form = read_upload(state, headers, multipart).await?.accepted()?;
        me.check(form.field("csrf"))?;
        let now = now_millis();
        let mut tx = state.store.begin().await?;
        if kind == MessageKind::Note {
            state
                .actions
                .note_in(
                    &mut tx,
                    me.actor(),
                    t.id,
                    form.field("body"),
                    &form.files,
                    now,
                )
                .await?;
        } else {
            let draft = Draft {
                body: form.field("body").to_string(),
                status: form.field("status").trim().to_string(),
                macro_id: form.field("macro").trim().parse().ok(),
                seen: form.field("seen").trim().parse().ok(),
                unseen: Vec::new(),
                dropped_files: !form.files.is_empty(),
            };
            if let Some(seen) = draft.seen {
                let unseen = state
                    .actions
                    .unseen_in(&mut tx, me.actor(), t.id, seen)
                    .await?;
                if !unseen.0.is_empty() {
                    drop(tx);
                    let draft = Draft {
                        unseen: unseen.0,
                        seen: None,
                        ..draft
                    };
                    return ticket_page(state, me, &t, draft, StatusCode::CONFLICT).await;
                }
            }
            let status = match draft.status.as_str() {
                "" => None,
                s => Some(
                    s.parse::<Status>()
                        .map_err(|e| WebError::BadRequest(e.to_string()))?,
                ),
            };
            let input = ReplyInput {
                status,
                files: std::mem::take(&mut form.files),
                ..ReplyInput::text(&draft.body)
            };
            match draft.macro_id {
                Some(id) => {
                    let m = super::canned::usable(state, me, id).await?;
                    state
                        .actions
                        .apply_macro_in(&mut tx, me.actor(), t.id, Some(input), &m.changes, now)
                        .await?
                        .reply
                        .ok_or(WebError::Internal)?;
                }
                None => {
                    state
                        .actions
                        .reply_in(&mut tx, me.actor(), t.id, input, now)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(back_to(state, &t))
    })
    .await
}

async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    page(&state, &headers, async |_me: &Staff| {
        let (_, _, file, data) = state
            .store
            .attachment_download(id)
            .await?
            .ok_or_else(|| WebError::NotFound(format!("attachment {id}")))?;
        Ok(file_response(&file, data))
    })
    .await
}
