//! The agent console (SPEC §7): password sign-in (throttled, see web::signin), the queue
//! (status badges, search, filters and sort kept in the URL, presets,
//! pagination, unread dots), bulk updates, CSV and PDF export, and the
//! agent's profile with API tokens. The ticket page lives in
//! `console/ticket.rs`, administration in `console/admin.rs`. Every change
//! goes through `actions`; every form carries the session's CSRF token.

pub mod admin;
mod export;
pub mod settings;
pub mod ticket;

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
use super::files::FileError;
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
        .route("/console/profile/tokens", post(create_token))
        .route("/console/profile/tokens/{id}/revoke", post(revoke_token))
        .merge(ticket::router())
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

/// A console failure, answered as a page (or a redirect to sign in).
#[derive(Debug)]
pub(crate) enum ConsoleError {
    SignIn,
    Forbidden(String),
    NotFound(String),
    BadForm(String),
    TooLarge(String),
    Unavailable,
    Internal,
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "console: store error");
        if e.is_transient() {
            ConsoleError::Unavailable
        } else {
            ConsoleError::Internal
        }
    }
}

impl From<ActionError> for ConsoleError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::NotFound(what) => ConsoleError::NotFound(what),
            ActionError::Forbidden(m) => ConsoleError::Forbidden(m),
            ActionError::Invalid(m) => ConsoleError::BadForm(m),
            ActionError::Store(e) => e.into(),
        }
    }
}

impl From<WebError> for ConsoleError {
    fn from(e: WebError) -> Self {
        match e {
            WebError::Unauthorized => ConsoleError::SignIn,
            WebError::Forbidden(m) => ConsoleError::Forbidden(m),
            WebError::NotFound(m) => ConsoleError::NotFound(m),
            WebError::BadRequest(m) | WebError::Unprocessable(m) => ConsoleError::BadForm(m),
            WebError::Unavailable => ConsoleError::Unavailable,
            WebError::Internal => ConsoleError::Internal,
        }
    }
}

impl From<FileError> for ConsoleError {
    fn from(e: FileError) -> Self {
        match e {
            FileError::TooLarge(m) => ConsoleError::TooLarge(m),
            FileError::Bad(m) => ConsoleError::BadForm(m),
        }
    }
}

impl ConsoleError {
    pub(crate) fn page(self, state: &AppState, me: Option<&Staff>) -> Response {
        let (status, heading, text) = match self {
            ConsoleError::SignIn => return Redirect::to("/console/login").into_response(),
            ConsoleError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m),
            ConsoleError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", format!("No {m}.")),
            ConsoleError::BadForm(m) => (StatusCode::BAD_REQUEST, "That did not work", m),
            ConsoleError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "Too large", m),
            ConsoleError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                "The service is busy; try again in a moment.".to_string(),
            ),
            ConsoleError::Internal => (
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
    pub fn check(&self, sent: &str) -> Result<(), ConsoleError> {
        if csrf_ok(&self.session, sent) {
            Ok(())
        } else {
            Err(ConsoleError::BadForm(
                "The form expired; go back, reload the page and try again.".into(),
            ))
        }
    }
}

/// The signed-in staff member of a request (an active account only).
pub(crate) async fn staff(state: &AppState, headers: &HeaderMap) -> Result<Staff, ConsoleError> {
    let now = now_millis();
    let Some((_, session)) = auth::current(&state.store, headers, now).await? else {
        return Err(ConsoleError::SignIn);
    };
    let Some(user_id) = session.user_id else {
        return Err(ConsoleError::SignIn);
    };
    let user = state
        .store
        .active_user(user_id)
        .await?
        .ok_or(ConsoleError::SignIn)?;
    Ok(Staff { user, session })
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
    F: AsyncFnOnce(&Staff) -> Result<Response, ConsoleError>,
{
    match staff(state, headers).await {
        Ok(me) => match body(&me).await {
            Ok(r) => r,
            Err(e) => e.page(state, Some(&me)),
        },
        Err(e) => e.page(state, None),
    }
}

// ---------------------------------------------------------------- sign-in

#[derive(Debug, Deserialize, Default)]
struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// Only a console path may follow sign-in (never another site).
fn safe_next(next: &str) -> &str {
    if next.starts_with("/console") && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/console"
    }
}

fn login_page(
    state: &AppState,
    status: StatusCode,
    email: &str,
    next: &str,
    error: Option<&str>,
) -> Response {
    let mut c = base(state, "Sign in", None);
    c.insert("email".into(), json!(email));
    c.insert("next".into(), json!(next));
    c.insert("error".into(), json!(error));
    state
        .pages
        .render(status, "console_login", &Value::Object(c))
}

async fn login_form(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Response {
    login_page(&state, StatusCode::OK, "", safe_next(&q.next), None)
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// A hash to verify against when the account does not exist, so that an
/// unknown address takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| secrets::hash_password("decoy password").unwrap_or_default())
}

/// One sign-in attempt (SPEC §7): refused when the form came from another
/// site; counted per client and per account and client before the
/// password is checked (parallel guesses cannot all be checked); checked
/// at most one per core at a time (429 with Retry-After past a short wait).
/// An unknown address, a wrong password and a throttled attempt get the
/// same answer after about the same time; the account is never locked for
/// everyone, so its owner signing in from elsewhere still gets in.
async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(&form.next).to_string();
    let wrong = "Wrong email or password. After several failed attempts from one place, sign-in waits a little longer each time.";
    let refused = |status: StatusCode| login_page(&state, status, &form.email, &next, Some(wrong));
    if !same_origin(&headers, &state.settings().http.public_url) {
        let said = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .chars()
                .take(200)
                .collect::<String>()
        };
        tracing::warn!(
            client = %client,
            origin = %said("origin"),
            sec_fetch_site = %said("sec-fetch-site"),
            host = %said("host"),
            "console: sign-in form from another site refused"
        );
        return login_page(
            &state,
            StatusCode::FORBIDDEN,
            "",
            "/console",
            Some(
                "This sign-in form was sent from another site. Open the sign-in page and try again.",
            ),
        );
    }
    let go = async {
        let now = now_millis();
        if state.signin.admit(&form.email, &client, now) == Admission::Throttled {
            tracing::warn!(client = %client, "console: sign-in throttled");
            tokio::time::sleep(state.signin.typical().unwrap_or_default()).await;
            return Ok(refused(StatusCode::UNAUTHORIZED));
        }
        let email: Option<EmailAddress> = form.email.parse().ok();
        let account = match &email {
            Some(e) => state.store.staff_login(e).await?,
            None => None,
        };
        // An unknown address waits as long as a check takes but spends no
        // CPU, memory or turn on it: a flood of made-up addresses costs the
        // daemon nothing, never delays a real user's check, and answers as
        // a wrong password does. Until a check has been timed, it is
        // checked against a decoy hash (which times it).
        let known = account.as_ref().and_then(|a| a.password_hash.clone());
        let ok = match (known, state.signin.typical()) {
            (None, Some(typical)) => {
                tokio::time::sleep(typical).await;
                false
            }
            (known, _) => {
                let Some(turn) = state.signin.turn(std::time::Duration::from_secs(2)).await else {
                    // Busy, not refused: this attempt does not count.
                    state.signin.not_checked(&form.email, &client);
                    let mut r = login_page(
                        &state,
                        StatusCode::TOO_MANY_REQUESTS,
                        &form.email,
                        &next,
                        Some("Too many sign-ins at once: try again in a moment."),
                    );
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
                    return Ok(r);
                };
                let hash = known.unwrap_or_else(|| decoy_hash().to_string());
                let password = form.password.chars().take(1024).collect::<String>();
                let started = std::time::Instant::now();
                let ok =
                    tokio::task::spawn_blocking(move || secrets::verify_password(&password, &hash))
                        .await
                        .unwrap_or(false);
                state.signin.checked_in(started.elapsed());
                drop(turn);
                ok
            }
        };
        let account = account.filter(|a| a.user.active && a.password_hash.is_some());
        let account = match account {
            Some(a) if ok => a,
            other => {
                let user = other.map(|a| a.user.id);
                let failed = match user {
                    Some(id) => Some(state.store.count_failed_login(id).await?),
                    None => None,
                };
                tracing::warn!(client = %client, user, failed, "console: failed sign-in");
                return Ok(refused(StatusCode::UNAUTHORIZED));
            }
        };
        state.signin.succeeded(&form.email, &client);
        state
            .store
            .record_login(account.user.id, true, None)
            .await?;
        let secure = state.settings().http.public_url.starts_with("https://");
        let cookie =
            auth::start_session(&state.store, SessionOf::Staff(account.user.id), secure, now)
                .await?;
        let mut r = Redirect::to(&next).into_response();
        r.headers_mut().insert(header::SET_COOKIE, cookie);
        Ok(r)
    };
    go.await
        .unwrap_or_else(|e: ConsoleError| e.page(&state, None))
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    pub csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        me.check(&form.csrf)?;
        if let Some(digest) = auth::cookie_digest(&headers) {
            state.store.delete_session(&digest).await?;
        }
        let mut r = Redirect::to("/console/login").into_response();
        r.headers_mut().insert(
            header::SET_COOKIE,
            header::HeaderValue::from_static(
                "pd_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
            ),
        );
        Ok(r)
    })
    .await
}

// ---------------------------------------------------------------- the queue

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

/// "1 ticket", "3 tickets".
fn tickets(n: usize) -> String {
    if n == 1 {
        "1 ticket".into()
    } else {
        format!("{n} tickets")
    }
}

/// How the console names a status.
pub(crate) fn status_label(s: Status) -> &'static str {
    s.label()
}

/// The queue's query string with one parameter replaced (or removed).
fn with(params: &QueueParams, change: impl FnOnce(&mut QueueParams)) -> String {
    let mut p = params.clone();
    change(&mut p);
    let q = p.to_query();
    if q.is_empty() {
        "/console".into()
    } else {
        format!("/console?{q}")
    }
}

async fn queue(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        let params = QueueParams::from_query(raw.as_deref().unwrap_or(""))?;
        let filter = params.filter(&state, &me.user).await?;
        let sort = params.sort()?;
        let (page, per_page) = params.page();
        let (total, rows) = state
            .store
            .queue_page(&filter, sort, page, per_page, Some(&me.viewer()))
            .await?;
        let counts = state.badges.get(&state.store).await?;
        let agents = state.store.users().await?;
        let pages = ((total + i64::from(per_page) - 1) / i64::from(per_page)).max(1);
        let current_status = params.status.clone().unwrap_or_default();
        let mut badges = vec![json!({
            "label": "All", "status": "all", "count": counts.iter().map(|c| c.1).sum::<i64>(),
            "href": with(&params, |p| { p.status = None; p.page = None; }),
            "active": current_status.is_empty(),
        })];
        badges.extend(counts.iter().map(|(s, n)| {
            json!({
                "label": status_label(*s), "status": s.as_str(), "count": n,
                "href": with(&params, |p| { p.status = Some(s.as_str().into()); p.page = None; }),
                "active": current_status == s.as_str(),
            })
        }));
        let statuses: Vec<(&str, &str)> = Status::ALL.iter().map(|s| (s.as_str(), status_label(*s))).collect();
        let mut status_items = vec![("", "Any status"), ("open,in_progress,pending,on_hold", "Not resolved or closed")];
        status_items.extend(statuses.iter().copied());
        let priorities: Vec<(&str, &str)> = Priority::ALL.iter().map(|p| (p.as_str(), p.as_str())).collect();
        let mut priority_items = vec![("", "Any priority")];
        priority_items.extend(priorities.iter().copied());
        let settings = state.settings();
        let categories: Vec<(&str, &str)> = settings
            .tickets
            .categories
            .iter()
            .map(|c| (c.as_str(), c.as_str()))
            .collect();
        let mut category_items = vec![("", "Any category")];
        category_items.extend(categories.iter().copied());
        let mut channel_items = vec![("", "Any channel")];
        channel_items.extend(Channel::ALL.iter().map(|c| (c.as_str(), c.as_str())));
        let agent_items: Vec<(&str, &str)> = agents
            .iter()
            .filter(|u| u.active)
            .map(|u| (u.email.as_str(), if u.name.is_empty() { u.email.as_str() } else { u.name.as_str() }))
            .collect();
        let mut assignee_items = vec![("", "Anyone"), ("me", "Me"), ("none", "Unassigned")];
        assignee_items.extend(agent_items.iter().copied());
        let mut sla_items = vec![("", "Any SLA state"), ("warning,breached", "Warning or breached")];
        sla_items.extend(SlaState::ALL.iter().map(|s| (s.as_str(), s.as_str())));
        let (sort_key, desc) = sort;
        let columns: Vec<Value> = [
            ("Reference", None),
            ("Subject", Some("subject")),
            ("Requester", None),
            ("Status", Some("status")),
            ("Priority", Some("priority")),
            ("Category", None),
            ("Assignee", None),
            ("SLA", Some("sla")),
            ("Messages", Some("message_count")),
            ("Updated", Some("updated")),
        ]
        .into_iter()
        .map(|(label, key)| {
            let active = key.and_then(crate::store::SortKey::parse).is_some_and(|(k, _)| k == sort_key);
            let href = key.map(|k| {
                // A second click on the active column turns the order round.
                let next = if active { if desc { format!("+{k}") } else { format!("-{k}") } } else { k.to_string() };
                with(&params, |p| { p.sort = Some(next); p.page = None; })
            });
            json!({ "label": label, "href": href, "active": active, "desc": desc })
        })
        .collect();
        let rows: Vec<Value> = rows
            .iter()
            .map(|t| {
                json!({
                    "id": t.id, "ref": t.reference.to_string(), "subject": t.subject,
                    "requester": if t.requester_name.is_empty() { &t.requester_email } else { &t.requester_name },
                    "requester_email": t.requester_email,
                    "status": t.status.as_str(), "status_label": status_label(t.status),
                    "priority": t.priority.as_str(), "category": t.category,
                    "assignee": t.assignee_email.clone().unwrap_or_default(),
                    "sla": t.sla_state.as_str(), "messages": t.message_count,
                    "updated": t.updated_at, "unread": t.unread,
                })
            })
            .collect();
        let text = |v: &Option<String>| json!(v.clone().unwrap_or_default());
        let mut c = base(&state, "Queue", Some(me));
        c.insert("total".into(), json!(total));
        c.insert("badges".into(), json!(badges));
        c.insert(
            "params".into(),
            json!({
                "q": text(&params.q), "tag": text(&params.tag), "sort": text(&params.sort),
                "created_from": text(&params.created_from), "created_to": text(&params.created_to),
                "updated_from": text(&params.updated_from), "updated_to": text(&params.updated_to),
            }),
        );
        c.insert("status_options".into(), json!(options(status_items, &current_status)));
        c.insert("priority_options".into(), json!(options(priority_items, params.priority.as_deref().unwrap_or(""))));
        c.insert("category_options".into(), json!(options(category_items, params.category.as_deref().unwrap_or(""))));
        c.insert("channel_options".into(), json!(options(channel_items, params.channel.as_deref().unwrap_or(""))));
        c.insert("assignee_options".into(), json!(options(assignee_items, params.assignee.as_deref().unwrap_or(""))));
        c.insert("sla_options".into(), json!(options(sla_items, params.sla.as_deref().unwrap_or(""))));
        c.insert("columns".into(), json!(columns));
        c.insert("rows".into(), json!(rows));
        c.insert("page".into(), json!(page));
        c.insert("pages".into(), json!(pages));
        c.insert(
            "prev".into(),
            json!((page > 1).then(|| with(&params, |p| p.page = Some(page - 1)))),
        );
        c.insert(
            "next".into(),
            json!((i64::from(page) < pages).then(|| with(&params, |p| p.page = Some(page + 1)))),
        );
        c.insert("query".into(), json!(with(&params, |p| p.page = None).trim_start_matches("/console").trim_start_matches('?')));
        c.insert("bulk_statuses".into(), json!(options(statuses.iter().copied(), "")));
        c.insert("bulk_priorities".into(), json!(options(priorities.iter().copied(), "")));
        c.insert("bulk_categories".into(), json!(options(categories.iter().copied(), "")));
        c.insert("bulk_agents".into(), json!(options(agent_items.iter().copied(), "")));
        Ok(state.pages.render(StatusCode::OK, "console_queue", &Value::Object(c)))
    })
    .await
}

// ---------------------------------------------------------------- bulk

/// A bulk form as sent: ids may repeat, so it is read by hand.
#[derive(Debug, Default)]
struct BulkForm {
    csrf: String,
    ids: Vec<i64>,
    all: bool,
    filter: String,
    action: String,
    confirm: bool,
    status: String,
    priority: String,
    category: String,
    assignee: String,
}

impl BulkForm {
    fn parse(body: &[u8]) -> BulkForm {
        let mut f = BulkForm::default();
        for (k, v) in form_urlencoded::parse(body).take(BULK_LIMIT as usize + 64) {
            let v = v.into_owned();
            match &*k {
                "csrf" => f.csrf = v,
                "ids" => f.ids.extend(v.parse::<i64>().ok()),
                "all" => f.all = v == "1",
                "filter" => f.filter = v,
                "action" => f.action = v,
                "confirm" => f.confirm = v == "yes",
                "status" => f.status = v,
                "priority" => f.priority = v,
                "category" => f.category = v,
                "assignee" => f.assignee = v,
                _ => {}
            }
        }
        f
    }

    /// The changes asked for, each to apply to every ticket.
    fn changes(&self) -> Result<Vec<Change>, ConsoleError> {
        let bad = |e: crate::domain::ParseError| ConsoleError::BadForm(e.to_string());
        let mut out = Vec::new();
        if !self.status.is_empty() {
            out.push(Change::Status(self.status.parse().map_err(bad)?));
        }
        if !self.priority.is_empty() {
            out.push(Change::Priority(self.priority.parse().map_err(bad)?));
        }
        if !self.category.is_empty() {
            out.push(Change::Category(self.category.clone()));
        }
        match self.assignee.as_str() {
            "" => {}
            "none" => out.push(Change::Assignee(None)),
            a => out.push(Change::Assignee(Some(a.parse().map_err(bad)?))),
        }
        Ok(out)
    }
}

async fn bulk(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    state.badges.clear();
    page(&state, &headers, async |me: &Staff| {
        let form = BulkForm::parse(&body);
        let back = if form.filter.is_empty() {
            "/console".to_string()
        } else {
            format!("/console?{}", form.filter)
        };
        me.check(&form.csrf)?;
        let run = async {
            let ids = if form.all {
                let params = QueueParams::from_query(&form.filter)?;
                let filter = params.filter(&state, &me.user).await?;
                state.store.ticket_ids_matching(&filter, BULK_LIMIT).await?
            } else {
                form.ids.iter().copied().take(BULK_LIMIT as usize).collect()
            };
            if ids.is_empty() {
                return Err(ConsoleError::BadForm(
                    "Tick at least one ticket, or \"all matching\".".into(),
                ));
            }
            let now = now_millis();
            let (mut done, mut failed) = (0usize, Vec::new());
            if form.action == "delete" {
                if !form.confirm {
                    return Err(ConsoleError::BadForm(
                        "Tick \"Yes, delete them for good\" to delete.".into(),
                    ));
                }
                for id in &ids {
                    match state.actions.delete(me.actor(), *id).await {
                        Ok(()) => done += 1,
                        Err(ActionError::Forbidden(m)) => return Err(ConsoleError::Forbidden(m)),
                        Err(e) => failed.push(format!("{id}: {e}")),
                    }
                }
                return Ok((format!("Deleted {}.", tickets(done)), failed));
            }
            let changes = form.changes()?;
            if changes.is_empty() {
                return Err(ConsoleError::BadForm("Choose what to change.".into()));
            }
            for id in &ids {
                let mut ok = true;
                for change in &changes {
                    match state
                        .actions
                        .change(me.actor(), *id, change.clone(), now)
                        .await
                    {
                        Ok(_) => {}
                        Err(ActionError::Forbidden(m)) => return Err(ConsoleError::Forbidden(m)),
                        Err(e) => {
                            ok = false;
                            failed.push(format!("ticket {id}: {e}"));
                            break;
                        }
                    }
                }
                done += usize::from(ok);
            }
            Ok((format!("Updated {done} of {}.", tickets(ids.len())), failed))
        };
        match run.await {
            Ok((text, failed)) => {
                let text = if failed.is_empty() {
                    text
                } else {
                    format!(
                        "{text} Not changed: {}",
                        failed.into_iter().take(20).collect::<Vec<_>>().join("; ")
                    )
                };
                Ok(message(
                    &state,
                    Some(me),
                    StatusCode::OK,
                    "Bulk update",
                    &text,
                    Some((&back, "Back to the queue")),
                ))
            }
            Err(e) => Err(e),
        }
    })
    .await
}

// ---------------------------------------------------------------- profile and tokens

async fn profile_page(
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

async fn profile(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state, &headers, async |me: &Staff| {
        profile_page(&state, me, None).await
    })
    .await
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    csrf: String,
    #[serde(default)]
    label: String,
}

async fn create_token(
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

async fn revoke_token(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_only_ever_continues_inside_the_console() {
        assert_eq!(
            safe_next("/console/tickets/TKT-1"),
            "/console/tickets/TKT-1"
        );
        assert_eq!(safe_next("https://evil.test/console"), "/console");
        assert_eq!(safe_next("//evil.test"), "/console");
        assert_eq!(safe_next("/console\\@evil"), "/console");
        assert_eq!(safe_next(""), "/console");
    }

    #[test]
    fn bulk_forms_keep_every_ticked_id_and_parse_their_changes() {
        let f = BulkForm::parse(
            b"csrf=x&ids=3&ids=5&ids=junk&status=resolved&assignee=none&priority=&action=update",
        );
        assert_eq!(f.ids, vec![3, 5]);
        assert_eq!(
            f.changes().ok().unwrap(),
            vec![Change::Status(Status::Resolved), Change::Assignee(None)]
        );
        assert!(BulkForm::parse(b"status=sideways").changes().is_err());
    }
}
