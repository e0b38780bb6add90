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
use super::files::{self, FileError, human_size, previewable, read_upload};
use crate::actions::{ActionError, Change, OpenTicket, ReplyInput, ReplyOutcome};
use crate::domain::notify::Notice;
use crate::domain::{
    Actor, AuthorKind, Channel, EmailAddress, MessageKind, Priority, Status, TicketRef,
};
use crate::store::sessions::{Profile, WebSession};
use crate::store::{StoreError, Ticket, now_millis};

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

/// A ticket's public thread as the portal shows it.
pub struct Thread {
    messages: Vec<crate::store::StoredMessage>,
    files: HashMap<i64, Vec<crate::store::sessions::AttachmentInfo>>,
    /// Each HTML message as shown, with the number of images held back
    /// (sanitising is the costly part of a page: done once per thread).
    html: HashMap<i64, (String, usize)>,
    /// The conversation as rendered HTML, per viewer (whose own messages
    /// sit on the right): a repeated page view renders only its frame.
    rendered: Mutex<HashMap<Option<String>, std::sync::Arc<str>>>,
}

/// Threads read recently, each valid while its ticket's `updated_at` and
/// message count stay the same (every change of a thread moves them), so a
/// page viewed again costs no thread query. Per process; bounded.
#[derive(Default)]
pub struct ThreadCache(Mutex<HashMap<i64, Cached>>);

/// A cached thread with the ticket's (updated_at, message_count) it was read at.
type Cached = (i64, i64, std::sync::Arc<Thread>);

/// Sessions and read marks the portal has seen recently, so that viewing a
/// page again costs no session query and no read-mark query. A session is
/// trusted from memory for [`SESSION_MEMORY_MS`]; signing out evicts it
/// here (another daemon may still trust it for those seconds).
#[derive(Default)]
pub struct PortalMemory {
    sessions: Mutex<HashMap<String, (WebSession, i64)>>,
    read: Mutex<HashMap<(i64, i64), i64>>,
}

/// How long a session read from the database is trusted from memory.
const SESSION_MEMORY_MS: i64 = 10_000;
/// Entries kept at most in each map; it starts over when full.
const MEMORY_ENTRIES: usize = 20_000;

impl PortalMemory {
    fn session(&self, digest: &str, now: i64) -> Option<WebSession> {
        let map = self.sessions.lock().expect("memory");
        map.get(digest)
            .filter(|(s, at)| now - at < SESSION_MEMORY_MS && s.expires_at > now)
            .map(|(s, _)| s.clone())
    }

    fn forget_session(&self, digest: &str) {
        self.sessions.lock().expect("memory").remove(digest);
    }

    fn remember_session(&self, digest: String, s: WebSession, now: i64) {
        let mut map = self.sessions.lock().expect("memory");
        if map.len() >= MEMORY_ENTRIES {
            map.clear();
        }
        map.insert(digest, (s, now));
    }

    /// Whether `viewer` is known to have read `ticket` up to `message`.
    fn has_read(&self, ticket: i64, viewer: i64, message: i64) -> bool {
        self.read
            .lock()
            .expect("memory")
            .get(&(ticket, viewer))
            .is_some_and(|m| *m >= message)
    }

    fn remember_read(&self, ticket: i64, viewer: i64, message: i64) {
        let mut map = self.read.lock().expect("memory");
        if map.len() >= MEMORY_ENTRIES {
            map.clear();
        }
        map.insert((ticket, viewer), message);
    }
}

/// Threads kept at most; the cache starts over when full.
const THREADS_CACHED: usize = 2_000;

impl ThreadCache {
    async fn get(
        &self,
        store: &crate::store::Store,
        t: &Ticket,
    ) -> Result<std::sync::Arc<Thread>, StoreError> {
        if let Some((updated, count, thread)) = self.0.lock().expect("cache").get(&t.id)
            && *updated == t.updated_at
            && *count == t.message_count
        {
            return Ok(thread.clone());
        }
        let messages = store.messages(t.id, false).await?;
        let files = store.ticket_attachments(t.id).await?;
        let html = messages
            .iter()
            .filter(|m| m.kind == MessageKind::Reply)
            .filter_map(|m| {
                let h = m.body_html.as_deref().filter(|h| !h.trim().is_empty())?;
                let shown = files::mail_html(
                    h,
                    files.get(&m.id).map_or(&[][..], Vec::as_slice),
                    "/portal/attachments/",
                );
                Some((m.id, shown))
            })
            .collect();
        let thread = std::sync::Arc::new(Thread {
            messages,
            files,
            html,
            rendered: Mutex::default(),
        });
        let mut map = self.0.lock().expect("cache");
        if map.len() >= THREADS_CACHED {
            map.clear();
        }
        map.insert(t.id, (t.updated_at, t.message_count, thread.clone()));
        Ok(thread)
    }
}

/// Link requests allowed per address and per 15 minutes.
const LINKS_PER_WINDOW: u32 = 3;
const LINK_WINDOW_MS: i64 = 15 * 60_000;
/// Addresses the link limiter holds at most.
const LINK_KEYS: usize = 100_000;

fn link_policy(n: u32) -> i64 {
    if n >= LINKS_PER_WINDOW {
        LINK_WINDOW_MS
    } else {
        0
    }
}

/// Rate-limits link requests per address: bounded, and a flood of other
/// addresses never makes it forget a recent one (see [`Throttle`]).
#[derive(Debug)]
pub struct LinkLimiter(super::throttle::Throttle);

impl Default for LinkLimiter {
    fn default() -> Self {
        LinkLimiter(super::throttle::Throttle::new(
            LINK_KEYS,
            LINK_WINDOW_MS,
            link_policy,
        ))
    }
}

impl LinkLimiter {
    /// Whether one more request under `key` at `now` is allowed (and counts it).
    pub fn allow(&self, key: &str, now: i64) -> bool {
        self.0.attempt(key, now).is_ok()
    }
}

/// A portal failure, answered as a page.
enum PortalError {
    SignIn,
    /// The session was opened by one ticket's link: this page needs an
    /// address-wide link.
    AddressWide,
    NotFound,
    BadForm(String),
    TooLarge(String),
    Internal,
}

impl From<StoreError> for PortalError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "portal: store error");
        PortalError::Internal
    }
}

impl From<FileError> for PortalError {
    fn from(e: FileError) -> Self {
        match e {
            FileError::TooLarge(m) => PortalError::TooLarge(m),
            FileError::Bad(m) => PortalError::BadForm(m),
        }
    }
}

impl From<ActionError> for PortalError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::NotFound(_) => PortalError::NotFound,
            ActionError::Forbidden(m) | ActionError::Invalid(m) => PortalError::BadForm(m),
            ActionError::Store(e) => e.into(),
        }
    }
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

impl PortalError {
    fn page(self, state: &AppState) -> Response {
        match self {
            PortalError::SignIn => message_page(
                state,
                StatusCode::UNAUTHORIZED,
                "Sign in with your link",
                "Open the link in any mail we sent you about your request, or ask for a fresh one.",
                true,
                false,
            ),
            PortalError::AddressWide => message_page(
                state,
                StatusCode::FORBIDDEN,
                "This link opens one request",
                "The link in a mail about a request opens that request only (mails get forwarded). To see all your requests, enter your address and we will mail you a link to them.",
                true,
                true,
            ),
            PortalError::NotFound => message_page(
                state,
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such request among yours.",
                false,
                true,
            ),
            PortalError::BadForm(m) => message_page(
                state,
                StatusCode::BAD_REQUEST,
                "That did not work",
                &m,
                false,
                true,
            ),
            PortalError::TooLarge(m) => message_page(
                state,
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                &m,
                false,
                true,
            ),
            PortalError::Internal => message_page(
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
fn form_from_this_session(session: &WebSession, sent: &str) -> Result<(), PortalError> {
    if csrf_ok(session, sent) {
        Ok(())
    } else {
        Err(PortalError::BadForm(
            "The form expired; please go back and try again.".into(),
        ))
    }
}

/// Refuses a session opened by one ticket's link on a page that shows or
/// changes more than that ticket (the list, a new request, the profile).
fn address_wide(session: &WebSession) -> Result<(), PortalError> {
    match session.ticket_id {
        None => Ok(()),
        Some(_) => Err(PortalError::AddressWide),
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
async fn requester(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(i64, WebSession), PortalError> {
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
        _ => Err(PortalError::SignIn),
    }
}

/// A ticket by reference, only if the requester is on it (else not found:
/// the portal never tells whether someone else's ticket exists).
async fn my_ticket(
    state: &AppState,
    requester_id: i64,
    session: &WebSession,
    reference: &str,
) -> Result<Ticket, PortalError> {
    let r: TicketRef = reference.parse().map_err(|_| PortalError::NotFound)?;
    if r.prefix() != state.settings().tickets.prefix {
        return Err(PortalError::NotFound);
    }
    let mut ticket = state
        .store
        .ticket_by_ref_untagged(&r)
        .await?
        .ok_or(PortalError::NotFound)?;
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
        return Err(PortalError::NotFound);
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
            .ok_or(PortalError::NotFound)?;
    }
    Ok(ticket)
}

fn within_reopen_window(state: &AppState, t: &Ticket, now: i64) -> bool {
    t.status != Status::Closed
        || t.closed_at
            .is_some_and(|c| now - c <= state.settings().tickets.reopen_window.as_millis())
}

async fn magic_link(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let now = now_millis();
    let grant = match state.key.verify_portal_token(&token, now / 1000) {
        Ok(g) => g,
        Err(Some(_)) => {
            return message_page(
                &state,
                StatusCode::GONE,
                "This link has expired",
                "Links in our mails stay valid for a while, then expire. Enter your address and we will mail you a fresh one.",
                true,
                false,
            );
        }
        Err(None) => {
            return message_page(
                &state,
                StatusCode::NOT_FOUND,
                "This link is not valid",
                "Please open the link exactly as it is in the mail, or ask for a fresh one.",
                true,
                false,
            );
        }
    };
    let go = async {
        let secure = state.settings().http.public_url.starts_with("https://");
        if grant.ticket_number == 0 {
            // The address-wide link asked for on the portal: every request.
            state
                .store
                .requester(grant.requester_id)
                .await?
                .ok_or(PortalError::NotFound)?;
            let cookie =
                auth::start_requester_session(&state.store, grant.requester_id, None, secure, now)
                    .await?;
            let mut response = Redirect::to("/portal").into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response.headers_mut().insert(
                header::REFERRER_POLICY,
                header::HeaderValue::from_static("no-referrer"),
            );
            return Ok(response);
        }
        let r = TicketRef::new(&state.settings().tickets.prefix, grant.ticket_number);
        let ticket = state
            .store
            .ticket_by_ref(&r)
            .await?
            .ok_or(PortalError::NotFound)?;
        if !state
            .store
            .requester_on_ticket(grant.requester_id, ticket.id)
            .await?
        {
            return Err(PortalError::NotFound);
        }
        let cookie = auth::start_requester_session(
            &state.store,
            grant.requester_id,
            Some(ticket.id),
            secure,
            now,
        )
        .await?;
        let mut response = Redirect::to(&format!("/portal/tickets/{r}")).into_response();
        response.headers_mut().insert(header::SET_COOKIE, cookie);
        response.headers_mut().insert(
            header::REFERRER_POLICY,
            header::HeaderValue::from_static("no-referrer"),
        );
        Ok(response)
    };
    go.await.unwrap_or_else(|e: PortalError| e.page(&state))
}

async fn my_tickets(State(state): State<AppState>, headers: HeaderMap) -> Response {
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
    go.await.unwrap_or_else(|e: PortalError| e.page(&state))
}

/// The conversation of a ticket page for the viewer `my_email`: rendered
/// once per cached thread and viewer, then reused until the thread changes.
fn conversation(
    state: &AppState,
    thread: &Thread,
    my_email: Option<String>,
) -> Result<std::sync::Arc<str>, PortalError> {
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
            PortalError::Internal
        })?
        .into();
    let mut rendered = thread.rendered.lock().expect("thread");
    if rendered.len() >= 16 {
        rendered.clear();
    }
    rendered.insert(my_email, html.clone());
    Ok(html)
}

async fn ticket_page(
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
    go.await.unwrap_or_else(|e: PortalError| e.page(&state))
}

/// A reply the portal refused, shown again as typed with the reason.
struct Refusal<'a> {
    body: &'a str,
    why: &'a str,
}

/// The requester's ticket page; after a refused reply, with the text as
/// typed and the reason beside the file input.
async fn show_ticket(
    state: &AppState,
    me: i64,
    session: &WebSession,
    t: &Ticket,
    refused: Option<Refusal<'_>>,
) -> Result<Response, PortalError> {
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

async fn reply(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    multipart: Multipart,
) -> Response {
    let go = async {
        let (me, session) = requester(&state, &headers).await?;
        let t = my_ticket(&state, me, &session, &reference).await?;
        let form = read_upload(&state, &headers, multipart).await?;
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
                ReplyInput::text(form.field("body")),
                now_millis(),
            )
            .await?;
        let message_id = match &outcome {
            ReplyOutcome::Added { message_id, .. } => *message_id,
            ReplyOutcome::NewTicket { ticket_id, .. } => tx.first_message_id(*ticket_id).await?,
        };
        for file in &form.files {
            tx.insert_attachment(message_id, file).await?;
        }
        tx.commit().await?;
        let to = match outcome {
            ReplyOutcome::Added { .. } => t.reference.to_string(),
            ReplyOutcome::NewTicket { reference, .. } => reference.to_string(),
        };
        Ok(Redirect::to(&format!("/portal/tickets/{to}")).into_response())
    };
    go.await.unwrap_or_else(|e: PortalError| e.page(&state))
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// The close form: the CSRF token and the box that confirms it.
#[derive(Debug, Deserialize)]
struct CloseForm {
    csrf: String,
    #[serde(default)]
    confirm: String,
}

async fn close(
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
            return Err(PortalError::BadForm(
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
    go.await.unwrap_or_else(|e: PortalError| e.page(&state))
}

#[derive(Debug, Default)]
struct NewForm {
    csrf: String,
    subject: String,
    body: String,
    category: Option<String>,
    priority: Option<String>,
    related_kind: Option<String>,
    related_id: Option<String>,
}

fn new_page(
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

async fn new_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match requester(&state, &headers).await {
        Ok((_, session)) => match address_wide(&session) {
            Ok(()) => new_page(&state, &session, &NewForm::default(), None),
            Err(e) => e.page(&state),
        },
        Err(e) => e.page(&state),
    }
}

async fn new_ticket(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let go = async {
        let (me, session) = requester(&state, &headers).await?;
        address_wide(&session)?;
        let upload = read_upload(&state, &headers, multipart).await?;
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
            .ok_or(PortalError::SignIn)?;
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
        let mut tx = state.store.begin().await?;
        match state
            .actions
            .open_in(&mut tx, None, input, now_millis())
            .await
        {
            Ok(opened) => {
                let first = tx.first_message_id(opened.ticket_id).await?;
                for file in &upload.files {
                    tx.insert_attachment(first, file).await?;
                }
                tx.commit().await?;
                Ok(Redirect::to(&format!("/portal/tickets/{}", opened.reference)).into_response())
            }
            Err(ActionError::Invalid(m)) => Ok(new_page(&state, &session, &form, Some(&m))),
            Err(e) => Err(e.into()),
        }
    };
    go.await.unwrap_or_else(|e: PortalError| e.page(&state))
}

async fn help(State(state): State<AppState>, headers: HeaderMap) -> Response {
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

async fn download(
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
            .ok_or(PortalError::NotFound)?;
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
            return Err(PortalError::NotFound);
        }
        Ok(files::file_response(&file, data))
    };
    go.await.unwrap_or_else(|e: PortalError| e.page(&state))
}

/// The notices a requester can switch off, with how the profile names them.
const REQUESTER_TOGGLES: [(Notice, &str); 3] = [
    (Notice::Receipt, "I open a request (a receipt)"),
    (Notice::AgentReply, "the team replies"),
    (Notice::StatusChanged, "a request is resolved or closed"),
];

fn profile_page(state: &AppState, session: &WebSession, p: &Profile, saved: bool) -> Response {
    let toggles: Vec<Value> = REQUESTER_TOGGLES
        .iter()
        .map(|(n, label)| {
            json!({
                "name": n.as_str(),
                "label": label,
                "on": !p.switched_off.iter().any(|s| s == n.as_str()),
            })
        })
        .collect();
    let mut c = base(state, "Your profile", true);
    c.insert("csrf".into(), json!(session.csrf));
    c.insert(
        "profile".into(),
        json!({
            "email": p.email,
            "first_name": p.first_name,
            "last_name": p.last_name,
            "phone": p.phone,
            "organisation": p.organisation,
        }),
    );
    c.insert("toggles".into(), json!(toggles));
    c.insert("saved".into(), json!(saved));
    state
        .pages
        .render(StatusCode::OK, "portal_profile", &Value::Object(c))
}

async fn profile(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let go = async {
        let (me, session) = requester(&state, &headers).await?;
        address_wide(&session)?;
        let p = state
            .store
            .requester_profile(me)
            .await?
            .ok_or(PortalError::SignIn)?;
        Ok(profile_page(&state, &session, &p, false))
    };
    go.await.unwrap_or_else(|e: PortalError| e.page(&state))
}

async fn save_profile(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let go = async {
        let (me, session) = requester(&state, &headers).await?;
        address_wide(&session)?;
        form_from_this_session(&session, form.get("csrf").map_or("", String::as_str))?;
        let mut p = state
            .store
            .requester_profile(me)
            .await?
            .ok_or(PortalError::SignIn)?;
        let field = |name: &str, max: usize| -> String {
            form.get(name)
                .map(|v| {
                    v.trim()
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(max)
                        .collect()
                })
                .unwrap_or_default()
        };
        p.first_name = field("first_name", 100);
        p.last_name = field("last_name", 100);
        p.phone = field("phone", 50);
        p.organisation = field("organisation", 200);
        // Unchecked boxes are absent from the form: those notices are off.
        p.switched_off
            .retain(|n| !REQUESTER_TOGGLES.iter().any(|(t, _)| t.as_str() == n));
        for (n, _) in REQUESTER_TOGGLES {
            if form
                .get(&format!("notify_{}", n.as_str()))
                .map(String::as_str)
                != Some("on")
            {
                p.switched_off.push(n.as_str().to_string());
            }
        }
        state.store.save_requester_profile(me, &p).await?;
        Ok(profile_page(&state, &session, &p, true))
    };
    go.await.unwrap_or_else(|e: PortalError| e.page(&state))
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let go = async {
        let (_, session) = requester(&state, &headers).await?;
        form_from_this_session(&session, &form.csrf)?;
        if let Some(digest) = auth::cookie_digest(&headers) {
            state.store.delete_session(&digest).await?;
            state.memory.forget_session(&digest);
        }
        let mut r = message_page(
            &state,
            StatusCode::OK,
            "Signed out",
            "The link in any of our mails signs you in again.",
            false,
            false,
        );
        r.headers_mut().insert(
            header::SET_COOKIE,
            header::HeaderValue::from_static(
                "pd_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
            ),
        );
        Ok(r)
    };
    go.await.unwrap_or_else(|e: PortalError| e.page(&state))
}

#[derive(Debug, Deserialize)]
struct LinkForm {
    email: String,
}

async fn request_link(State(state): State<AppState>, Form(form): Form<LinkForm>) -> Response {
    let now = now_millis();
    let answer = || {
        message_page(
            &state,
            StatusCode::OK,
            "Check your mail",
            "If we have requests from this address, a fresh link is on its way.",
            false,
            false,
        )
    };
    let Ok(email) = form.email.parse::<EmailAddress>() else {
        return answer();
    };
    if !state.link_limiter.allow(email.as_str(), now) {
        // The same answer: the page must not tell who is known, nor how often asked.
        return answer();
    }
    // The answer goes at once; the lookup and the mail follow it, so that
    // a known address answers no slower than an unknown one.
    let actions = state.actions.clone();
    state.tasks.spawn(async move {
        if let Err(e) = actions.send_portal_link(&email, now).await {
            tracing::warn!(error = %e, "portal: queueing a sign-in link failed");
        }
    });
    answer()
}
