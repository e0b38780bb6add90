//! The JSON API under `/api/v1` (SPEC §7), behind `Authorization: Bearer`
//! tokens of staff accounts. Each handler extracts, calls an action, answers.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

mod bulk;
mod canned;
mod json;
mod manage;
mod me;
mod reports;
mod requesters;
mod views;

use super::AppState;
use super::error::WebError;
use super::queue::QueueParams;
use crate::actions::{Change, OpenTicket, ReplyInput, ReplyOutcome};
use crate::domain::{Actor, Channel, EmailAddress, Priority, Status, parse_time, rfc3339};
use crate::secrets::token_digest;
use crate::store::{StoredMessage, Ticket, TicketSummary, User, now_millis};
use bulk::bulk;
use json::{summary_json, ticket_json};

/// The API routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/tickets", get(list).post(create))
        .route("/tickets/bulk", post(bulk))
        .route(
            "/tickets/{reference}",
            get(show).patch(update).delete(delete),
        )
        .route("/tickets/{reference}/replies", post(reply))
        .route("/tickets/{reference}/notes", post(note))
        .route("/tickets/{reference}/merge", post(merge))
        .route("/attachments/{id}", get(attachment))
        .route("/events", get(super::live::stream))
        .route(
            "/tickets/{reference}/presence",
            post(super::live::api_presence),
        )
        .merge(manage::router())
        .merge(canned::router())
        .merge(requesters::router())
        .merge(views::router())
        .merge(reports::router())
        .merge(me::router())
}

/// The OpenAPI 3.1 description of this API (docs/openapi.json).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// The staff member a bearer token belongs to.
pub struct ApiUser(pub User);

impl ApiUser {
    fn actor(&self) -> Actor {
        Actor::Staff {
            user_id: self.0.id,
            role: self.0.role,
        }
    }
}

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = WebError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256);
        let token = token.ok_or(WebError::Unauthorized)?;
        if let Some(user) = state.store.user_by_token_hash(&token_digest(token)).await? {
            return Ok(ApiUser(user));
        }
        // A requester's portal token is a real identity, but not staff.
        if state
            .key
            .verify_portal_token(token, now_millis() / 1000)
            .is_ok()
        {
            return Err(WebError::Forbidden(
                "this API is for staff; requesters use the portal".into(),
            ));
        }
        Err(WebError::Unauthorized)
    }
}

impl ApiUser {
    /// Refuses anyone but an admin.
    fn admin(&self) -> Result<(), WebError> {
        if self.0.role == crate::domain::Role::Admin {
            Ok(())
        } else {
            Err(WebError::Forbidden("only admins may do this".into()))
        }
    }
}

fn bad(e: impl std::fmt::Display) -> WebError {
    WebError::BadRequest(e.to_string())
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, WebError> {
    body.map(|Json(b)| b).map_err(|e| bad(e.body_text()))
}

async fn list(
    State(state): State<AppState>,
    ApiUser(me): ApiUser,
    params: Result<Query<QueueParams>, QueryRejection>,
) -> Result<Json<Value>, WebError> {
    let Query(p) = params.map_err(|e| bad(e.body_text()))?;
    let filter = p.filter(&state, &me).await?;
    let sort = p.sort()?;
    let (page, per_page) = p.page();
    let (total, tickets) = state
        .store
        .list_tickets(&filter, sort, page, per_page)
        .await?;
    Ok(Json(json!({
        "total": total,
        "page": page,
        "per_page": per_page,
        "tickets": tickets.iter().map(summary_json).collect::<Vec<_>>(),
    })))
}

async fn find(state: &AppState, reference: &str) -> Result<Ticket, WebError> {
    super::error::ticket_by_reference(state, reference).await
}

async fn ticket_response(state: &AppState, id: i64) -> Result<Json<Value>, WebError> {
    let ticket = state
        .store
        .ticket(id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("ticket {id}")))?;
    let messages = state.store.messages(id, true).await?;
    let files = state.store.ticket_attachments(id).await?;
    let ratings = state.store.ratings(id).await?;
    Ok(Json(ticket_json(&ticket, &messages, &files, &ratings)))
}

async fn show(
    State(state): State<AppState>,
    _me: ApiUser,
    Path(reference): Path<String>,
) -> Result<Json<Value>, WebError> {
    let ticket = find(&state, &reference).await?;
    ticket_response(&state, ticket.id).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequesterBody {
    email: String,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    requester: RequesterBody,
    subject: String,
    body: String,
    channel: Option<Channel>,
    priority: Option<Priority>,
    category: Option<String>,
    assignee: Option<String>,
    #[serde(default)]
    cc: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
}

async fn create(
    State(state): State<AppState>,
    me: ApiUser,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), WebError> {
    let b = json_body(body)?;
    let requester: EmailAddress = b.requester.email.parse().map_err(bad)?;
    if b.subject.trim().is_empty() && b.body.trim().is_empty() {
        return Err(WebError::Unprocessable(
            "a ticket needs a subject or a message: both are empty".into(),
        ));
    }
    let mut open = OpenTicket::new(
        requester,
        &b.subject,
        &b.body,
        b.channel.unwrap_or(Channel::Phone),
    );
    open.requester_name = b.requester.name;
    open.priority = b.priority;
    open.category = b.category;
    open.assignee = b
        .assignee
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(bad)?;
    open.cc =
        b.cc.iter()
            .map(|c| c.parse())
            .collect::<Result<_, _>>()
            .map_err(bad)?;
    let now = now_millis();
    // The ticket and its tags in one transaction: a refused tag list
    // leaves no ticket behind.
    let mut tx = state.store.begin().await?;
    let opened = state
        .actions
        .open_in(&mut tx, Some(me.actor()), open, now)
        .await?;
    if !b.tags.is_empty() {
        state
            .actions
            .change_all_in(
                &mut tx,
                me.actor(),
                opened.ticket_id,
                vec![Change::Tags(b.tags)],
                now,
            )
            .await?;
    }
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        ticket_response(&state, opened.ticket_id).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    status: Option<Status>,
    priority: Option<Priority>,
    category: Option<String>,
    /// An agent's address, or `null`/"" to unassign.
    #[serde(default, deserialize_with = "present")]
    assignee: Option<Option<String>>,
    tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    due_at: Option<Option<String>>,
}

/// Tells a field that is absent (`None`) from one set to null (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?))
}

async fn update(
    State(state): State<AppState>,
    me: ApiUser,
    Path(reference): Path<String>,
    body: Result<Json<UpdateBody>, JsonRejection>,
) -> Result<Json<Value>, WebError> {
    let b = json_body(body)?;
    let ticket = find(&state, &reference).await?;
    let now = now_millis();
    // Every field of the body in one transaction: all of them or none.
    state
        .actions
        .change_all(me.actor(), ticket.id, changes_of(&b)?, now)
        .await?;
    ticket_response(&state, ticket.id).await
}

/// The changes an update body asks for, in a fixed order.
fn changes_of(b: &UpdateBody) -> Result<Vec<Change>, WebError> {
    let mut changes = Vec::new();
    if let Some(s) = b.status {
        changes.push(Change::Status(s));
    }
    if let Some(p) = b.priority {
        changes.push(Change::Priority(p));
    }
    if let Some(c) = &b.category {
        changes.push(Change::Category(c.clone()));
    }
    if let Some(a) = &b.assignee {
        let a = a
            .as_deref()
            .filter(|a| !a.trim().is_empty())
            .map(|a| a.parse::<EmailAddress>())
            .transpose()
            .map_err(bad)?;
        changes.push(Change::Assignee(a));
    }
    if let Some(t) = &b.tags {
        changes.push(Change::Tags(t.clone()));
    }
    if let Some(d) = &b.due_at {
        let d = d
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .map(parse_time)
            .transpose()
            .map_err(bad)?;
        changes.push(Change::DueDate(d));
    }
    Ok(changes)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyBody {
    body: String,
    status: Option<Status>,
    /// The newest message the caller has seen: a newer one from someone
    /// else stops the reply with 409, so nobody answers blind.
    last_message_id: Option<i64>,
}

/// Refuses (409) when messages from others arrived after `seen`.
async fn refuse_unseen(
    state: &AppState,
    tx: &mut crate::store::Tx,
    actor: Actor,
    ticket_id: i64,
    seen: i64,
) -> Result<(), WebError> {
    let unseen = state.actions.unseen_in(tx, actor, ticket_id, seen).await?;
    if unseen.0.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = unseen.0.iter().map(|(id, _)| id.to_string()).collect();
    let newest = unseen.0.last().map_or(seen, |(id, _)| *id);
    Err(WebError::Conflict(format!(
        "{} new message(s) arrived after message {seen} (ids {}): read them, then send again with last_message_id {newest}",
        ids.len(),
        ids.join(", ")
    )))
}

/// Where a reply went, as the API answers it.
fn reply_outcome_json(ticket: &Ticket, outcome: &ReplyOutcome) -> Value {
    match outcome {
        ReplyOutcome::Added { message_id, status } => {
            json!({ "reference": ticket.reference.to_string(), "message": message_id, "status": status })
        }
        ReplyOutcome::NewTicket { reference, .. } => {
            json!({ "reference": reference.to_string(), "status": Status::Open })
        }
    }
}

async fn reply(
    State(state): State<AppState>,
    me: ApiUser,
    Path(reference): Path<String>,
    body: Result<Json<ReplyBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), WebError> {
    let b = json_body(body)?;
    let ticket = find(&state, &reference).await?;
    let input = ReplyInput {
        status: b.status,
        ..ReplyInput::text(&b.body)
    };
    let mut tx = state.store.begin().await?;
    if let Some(seen) = b.last_message_id {
        refuse_unseen(&state, &mut tx, me.actor(), ticket.id, seen).await?;
    }
    let outcome = state
        .actions
        .reply_in(&mut tx, me.actor(), ticket.id, input, now_millis())
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(reply_outcome_json(&ticket, &outcome)),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    body: String,
}

async fn note(
    State(state): State<AppState>,
    me: ApiUser,
    Path(reference): Path<String>,
    body: Result<Json<NoteBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), WebError> {
    let b = json_body(body)?;
    let ticket = find(&state, &reference).await?;
    let id = state
        .actions
        .note(me.actor(), ticket.id, &b.body, now_millis())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "reference": ticket.reference.to_string(), "message": id })),
    ))
}

async fn delete(
    State(state): State<AppState>,
    me: ApiUser,
    Path(reference): Path<String>,
) -> Result<StatusCode, WebError> {
    me.admin()?;
    let ticket = find(&state, &reference).await?;
    state.actions.delete(me.actor(), ticket.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeBody {
    into: String,
}

async fn merge(
    State(state): State<AppState>,
    me: ApiUser,
    Path(reference): Path<String>,
    body: Result<Json<MergeBody>, JsonRejection>,
) -> Result<Json<Value>, WebError> {
    let b = json_body(body)?;
    let from = find(&state, &reference).await?;
    let into = find(&state, &b.into).await?;
    state
        .actions
        .merge(me.actor(), from.id, into.id, now_millis())
        .await?;
    ticket_response(&state, into.id).await
}

async fn attachment(
    State(state): State<AppState>,
    _me: ApiUser,
    Path(id): Path<i64>,
) -> Result<axum::response::Response, WebError> {
    let (_, _, file, data) = state
        .store
        .attachment_download(id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("attachment {id}")))?;
    Ok(super::files::file_response(&file, data))
}
