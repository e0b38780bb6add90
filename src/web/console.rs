//! The agent console (SPEC §7): password sign-in (throttled, see web::signin), the queue
//! (status badges, search, filters and sort kept in the URL, presets,
//! pagination, unread dots), bulk updates, CSV and PDF export, and the
//! agent's profile with API tokens. The ticket page lives in
//! `console/ticket.rs`, administration in `console/admin.rs`. Every change
//! goes through `actions`; every form carries the session's CSRF token.

pub mod admin;
mod canned;
mod customer;
mod export;
mod login;
mod mentions;
mod profile;
mod queue;
mod reports;
pub mod settings;
pub mod ticket;
mod views;

pub(crate) use login::CsrfForm;
use login::{login, login_form, logout};
use profile::{change_password, create_token, notifications, profile, revoke_token};
use queue::{bulk, queue};

use std::sync::OnceLock;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::auth::{self, SessionOf, csrf_ok};
use super::error::WebError;
use super::queue::QueueParams;
use super::signin::{Admission, ClientAddr, same_origin};
use crate::actions::{ActionError, Change};
use crate::domain::{Actor, Channel, EmailAddress, Priority, Role, SlaState, Status};
use crate::secrets;
use crate::store::sessions::WebSession;
use crate::store::{StoreError, User, now_millis};

/// The most tickets one bulk update touches ("all matching" included).
pub const BULK_LIMIT: i64 = 10_000;

/// The console's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(queue))
        .route("/console/login", get(login_form).post(login))
        .route("/console/logout", post(logout))
        .route("/console/bulk", post(bulk))
        .route("/console/export.csv", get(export::csv))
        .route("/console/export.pdf", get(export::pdf))
        .route("/console/profile", get(profile))
        .route("/console/mentions", get(mentions::list))
        .route("/console/reports", get(reports::show))
        .route("/console/reports.csv", get(reports::csv))
        .route("/console/requesters/{id}", post(customer::save))
        .route("/console/views", get(views::list).post(views::create))
        .route("/console/views/{id}", post(views::save))
        .route("/console/views/{id}/delete", post(views::delete))
        .route("/console/profile/tokens", post(create_token))
        .route("/console/profile/password", post(change_password))
        .route("/console/profile/notifications", post(notifications))
        .route("/console/profile/tokens/{id}/revoke", post(revoke_token))
        .merge(ticket::router())
        .merge(canned::router())
        .merge(admin::router())
        .merge(settings::router())
}

/// The status badges' counts, shared by the console's requests for a
/// moment: counting 100,000 tickets by status on every queue page would be
/// most of its time. A change made on this daemon's console clears them.
#[derive(Debug, Default)]
pub struct Badges(std::sync::Mutex<Option<Counted>>);

/// Counts by status, and when they were counted.
type Counted = (std::time::Instant, Vec<(Status, i64)>);

/// How long badge counts are shared.
const BADGES_FOR: std::time::Duration = std::time::Duration::from_secs(2);

impl Badges {
    async fn get(&self, store: &crate::store::Store) -> Result<Vec<(Status, i64)>, StoreError> {
        if let Ok(held) = self.0.lock()
            && let Some((at, counts)) = held.as_ref()
            && at.elapsed() < BADGES_FOR
        {
            return Ok(counts.clone());
        }
        let counts = store.status_counts().await?;
        if let Ok(mut held) = self.0.lock() {
            *held = Some((std::time::Instant::now(), counts.clone()));
        }
        Ok(counts)
    }

    /// Forgets the counts (after a change).
    pub fn clear(&self) {
        if let Ok(mut held) = self.0.lock() {
            *held = None;
        }
    }
}

/// The console answers a failure as a page, or a redirect to sign in.
impl WebError {
    pub(crate) fn console_page(self, state: &AppState, me: Option<&Staff>) -> Response {
        let (status, heading, text) = match self {
            WebError::Unauthorized => return Redirect::to("/console/login").into_response(),
            WebError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m),
            e @ WebError::AddressWide => (StatusCode::FORBIDDEN, "Not allowed", e.to_string()),
            WebError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", format!("No {m}.")),
            WebError::BadRequest(m) | WebError::Unprocessable(m) | WebError::Conflict(m) => {
                (StatusCode::BAD_REQUEST, "That did not work", m)
            }
            WebError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "Too large", m),
            WebError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                "The service is busy; try again in a moment.".to_string(),
            ),
            WebError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again in a moment.".to_string(),
            ),
        };
        message(
            state,
            me,
            status,
            heading,
            &text,
            Some(("/console", "Back to the queue")),
        )
    }
}

/// A signed-in staff member and their session.
pub(crate) struct Staff {
    pub user: User,
    pub session: WebSession,
    /// The digest of this session's cookie (which session is "this one").
    pub session_digest: String,
    /// Mentions of this agent they have not looked at (the menu's mark).
    pub mentions: i64,
}

impl Staff {
    pub fn actor(&self) -> Actor {
        Actor::Staff {
            user_id: self.user.id,
            role: self.user.role,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// The name of this agent's read marks.
    pub fn viewer(&self) -> String {
        format!("user:{}", self.user.id)
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check(&self, sent: &str) -> Result<(), WebError> {
        if csrf_ok(&self.session, sent) {
            Ok(())
        } else {
            Err(WebError::BadRequest(
                "The form expired; go back, reload the page and try again.".into(),
            ))
        }
    }
}

/// The signed-in staff member of a request (an active account only).
pub(crate) async fn staff(state: &AppState, headers: &HeaderMap) -> Result<Staff, WebError> {
    let now = now_millis();
    let Some((session_digest, session)) = auth::current(&state.store, headers, now).await? else {
        return Err(WebError::Unauthorized);
    };
    let Some(user_id) = session.user_id else {
        return Err(WebError::Unauthorized);
    };
    let user = state
        .store
        .active_user(user_id)
        .await?
        .ok_or(WebError::Unauthorized)?;
    let mentions = state.store.mentions_unseen(user.id).await?;
    Ok(Staff {
        user,
        session,
        session_digest,
        mentions,
    })
}

/// The context every console page starts from.
pub(crate) fn base(state: &AppState, title: &str, me: Option<&Staff>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("title".into(), json!(title));
    m.insert("team".into(), json!(state.settings().outbound.team_name));
    m.insert(
        "me".into(),
        me.map_or(Value::Null, |s| {
            json!({
                "id": s.user.id,
                "mentions": s.mentions,
                "email": s.user.email.as_str(),
                "name": if s.user.name.is_empty() { s.user.email.as_str() } else { &s.user.name },
                "role": s.user.role.as_str(),
                "admin": s.is_admin(),
            })
        }),
    );
    m.insert(
        "csrf".into(),
        me.map_or(Value::Null, |s| json!(s.session.csrf)),
    );
    m
}

/// A short page with a heading, a sentence and a way back.
pub(crate) fn message(
    state: &AppState,
    me: Option<&Staff>,
    status: StatusCode,
    heading: &str,
    text: &str,
    back: Option<(&str, &str)>,
) -> Response {
    let mut c = base(state, heading, me);
    c.insert("heading".into(), json!(heading));
    c.insert("text".into(), json!(text));
    c.insert("back".into(), json!(back.map(|b| b.0)));
    c.insert("back_label".into(), json!(back.map(|b| b.1)));
    state
        .pages
        .render(status, "console_message", &Value::Object(c))
}

/// Runs a console handler body, answering its error as a page.
pub(crate) async fn page<F>(state: &AppState, headers: &HeaderMap, body: F) -> Response
where
    F: AsyncFnOnce(&Staff) -> Result<Response, WebError>,
{
    match staff(state, headers).await {
        Ok(me) => match body(&me).await {
            Ok(r) => r,
            Err(e) => e.console_page(state, Some(&me)),
        },
        Err(e) => e.console_page(state, None),
    }
}

/// `(value, label, selected)` options of a select.
pub(crate) fn options<'a>(
    items: impl IntoIterator<Item = (&'a str, &'a str)>,
    current: &str,
) -> Vec<Value> {
    items
        .into_iter()
        .map(|(value, label)| json!({ "value": value, "label": label, "selected": value == current }))
        .collect()
}

/// The choices of the ticket field selects, as (value, label) pairs.
pub(crate) struct Choices<'a> {
    pub statuses: Vec<(&'a str, &'a str)>,
    pub priorities: Vec<(&'a str, &'a str)>,
    pub categories: Vec<(&'a str, &'a str)>,
    /// Active agents (and `keep`, active or not), by name.
    pub agents: Vec<(&'a str, &'a str)>,
}

/// The field choices under `settings`, agents from `users`; `keep` is an
/// address listed even when its account is inactive (a ticket's assignee).
pub(crate) fn choices<'a>(
    settings: &'a crate::config::Settings,
    users: &'a [User],
    keep: &str,
) -> Choices<'a> {
    Choices {
        statuses: Status::ALL
            .iter()
            .map(|s| (s.as_str(), status_label(*s)))
            .collect(),
        priorities: Priority::ALL
            .iter()
            .map(|p| (p.as_str(), p.as_str()))
            .collect(),
        categories: settings
            .tickets
            .categories
            .iter()
            .map(|c| (c.as_str(), c.as_str()))
            .collect(),
        agents: users
            .iter()
            .filter(|u| u.active || (!keep.is_empty() && u.email.as_str() == keep))
            .map(|u| {
                (
                    u.email.as_str(),
                    if u.name.is_empty() {
                        u.email.as_str()
                    } else {
                        u.name.as_str()
                    },
                )
            })
            .collect(),
    }
}

/// How the console names a status.
pub(crate) fn status_label(s: Status) -> &'static str {
    s.label()
}
