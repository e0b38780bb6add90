//! The requester portal (SPEC §7): the magic link from every notification
//! signs the requester in; then their requests, the conversation as chat
//! bubbles, reply, close, reopen by replying, a new request, help, and a
//! fresh link by mail. Every change goes through `actions`; every form
//! carries the session's CSRF token; a requester sees only tickets they are
//! on, whatever the URL.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Router;
use axum::extract::{Form, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{self, csrf_ok};
use super::error::WebError;
use super::files::{self, human_size, previewable, read_upload};
use crate::actions::{ActionError, Change, OpenTicket, ReplyInput, ReplyOutcome};
use crate::domain::notify::Notice;
use crate::domain::{
    Actor, AuthorKind, Channel, EmailAddress, MessageKind, Priority, Status, TicketRef,
};
use crate::store::sessions::{Profile, WebSession};
use crate::store::{StoreError, Ticket, now_millis};

mod account;
mod memory;
mod new;
mod thread;

use account::{logout, magic_link, profile, request_link, save_profile};
pub use memory::{LinkLimiter, PortalMemory, Thread, ThreadCache};
use new::{help, new_form, new_ticket};
use thread::{close, download, my_tickets, reply, ticket_page};

/// The portal's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/portal", get(my_tickets))
        .route("/portal/t/{token}", get(magic_link))
        .route("/portal/tickets/{reference}", get(ticket_page))
        .route("/portal/tickets/{reference}/reply", post(reply))
        .route("/portal/tickets/{reference}/close", post(close))
        .route("/portal/attachments/{id}", get(download))
        .route("/portal/new", get(new_form).post(new_ticket))
        .route("/portal/help", get(help))
        .route("/portal/profile", get(profile).post(save_profile))
        .route("/portal/link", post(request_link))
        .route("/portal/logout", post(logout))
}

fn base(state: &AppState, title: &str, signed_in: bool) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("title".into(), json!(title));
    m.insert("team".into(), json!(state.settings().outbound.team_name));
    m.insert("signed_in".into(), json!(signed_in));
    m.insert(
        "support_url".into(),
        json!(state.settings().http.support_url),
    );
    // Pages of a signed-in person set it: the sign-out form needs it.
    m.insert("csrf".into(), Value::Null);
    m
}

fn message_page(
    state: &AppState,
    status: StatusCode,
    heading: &str,
    text: &str,
    offer_link: bool,
    signed_in: bool,
) -> Response {
    let mut c = base(state, heading, signed_in);
    c.insert("heading".into(), json!(heading));
    c.insert("text".into(), json!(text));
    c.insert("offer_link".into(), json!(offer_link));
    state
        .pages
        .render(status, "portal_message", &Value::Object(c))
}

/// The portal shows what the API would answer as a page: a ticket the
/// requester may not see is not found, a refusal is said on the form.
impl WebError {
    fn portal_page(self, state: &AppState) -> Response {
        match self {
            WebError::Unauthorized => message_page(
                state,
                StatusCode::UNAUTHORIZED,
                "Sign in with your link",
                "Open the link in any mail we sent you about your request, or ask for a fresh one.",
                true,
                false,
            ),
            WebError::AddressWide => message_page(
                state,
                StatusCode::FORBIDDEN,
                "This link opens one request",
                "The link in a mail about a request opens that request only (mails get forwarded). To see all your requests, enter your address and we will mail you a link to them.",
                true,
                true,
            ),
            WebError::NotFound(_) => message_page(
                state,
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such request among yours.",
                false,
                true,
            ),
            WebError::Forbidden(m)
            | WebError::BadRequest(m)
            | WebError::Unprocessable(m)
            | WebError::Conflict(m) => message_page(
                state,
                StatusCode::BAD_REQUEST,
                "That did not work",
                &m,
                false,
                true,
            ),
            WebError::TooLarge(m) => message_page(
                state,
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                &m,
                false,
                true,
            ),
            WebError::Unavailable | WebError::Internal => message_page(
                state,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again in a moment.",
                false,
                false,
            ),
        }
    }
}

/// Refuses a form whose CSRF token is not this session's.
fn form_from_this_session(session: &WebSession, sent: &str) -> Result<(), WebError> {
    if csrf_ok(session, sent) {
        Ok(())
    } else {
        Err(WebError::BadRequest(
            "The form expired; please go back and try again.".into(),
        ))
    }
}

/// Refuses a session opened by one ticket's link on a page that shows or
/// changes more than that ticket (the list, a new request, the profile).
fn address_wide(session: &WebSession) -> Result<(), WebError> {
    match session.ticket_id {
        None => Ok(()),
        Some(_) => Err(WebError::AddressWide),
    }
}

/// Whether a session may see ticket `t`: every ticket of the requester for
/// an address-wide session, else the one it was opened for and its follow-ups.
fn in_scope(session: &WebSession, t: &Ticket) -> bool {
    session
        .ticket_id
        .is_none_or(|scope| t.id == scope || t.linked_ticket_id == Some(scope))
}

/// The signed-in requester of a request.
async fn requester(state: &AppState, headers: &HeaderMap) -> Result<(i64, WebSession), WebError> {
    let now = now_millis();
    if let Some(digest) = auth::cookie_digest(headers)
        && let Some(s) = state.memory.session(&digest, now)
        && let Some(id) = s.requester_id
    {
        return Ok((id, s));
    }
    match auth::current(&state.store, headers, now).await? {
        Some((digest, s)) if s.requester_id.is_some() => {
            state.memory.remember_session(digest, s.clone(), now);
            Ok((s.requester_id.expect("checked"), s))
        }
        _ => Err(WebError::Unauthorized),
    }
}

/// A ticket by reference, only if the requester is on it (else not found:
/// the portal never tells whether someone else's ticket exists).
async fn my_ticket(
    state: &AppState,
    requester_id: i64,
    session: &WebSession,
    reference: &str,
) -> Result<Ticket, WebError> {
    let r: TicketRef = reference
        .parse()
        .map_err(|_| WebError::NotFound("request".into()))?;
    if r.prefix() != state.settings().tickets.prefix {
        return Err(WebError::NotFound("request".into()));
    }
    let mut ticket = state
        .store
        .ticket_by_ref_untagged(&r)
        .await?
        .ok_or(WebError::NotFound("request".into()))?;
    // A session opened for a ticket since merged reaches where it went.
    let mut reachable = in_scope(session, &ticket);
    if !reachable && let Some(mut at) = session.ticket_id {
        for _ in 0..8 {
            match state.store.ticket(at).await?.and_then(|t| t.merged_into_id) {
                Some(into) if into == ticket.id => {
                    reachable = true;
                    break;
                }
                Some(into) => at = into,
                None => break,
            }
        }
    }
    if !reachable
        || !state
            .store
            .requester_on_ticket(requester_id, ticket.id)
            .await?
    {
        return Err(WebError::NotFound("request".into()));
    }
    // A merged ticket lives on in the one it was merged into: its page,
    // replies and close go there (a few merges deep at most).
    for _ in 0..8 {
        let Some(into) = ticket.merged_into_id else {
            break;
        };
        ticket = state
            .store
            .ticket(into)
            .await?
            .ok_or(WebError::NotFound("request".into()))?;
    }
    Ok(ticket)
}

fn within_reopen_window(state: &AppState, t: &Ticket, now: i64) -> bool {
    t.status != Status::Closed
        || t.closed_at
            .is_some_and(|c| now - c <= state.settings().tickets.reopen_window.as_millis())
}
