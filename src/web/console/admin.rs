//! Administration pages (admins only): mailboxes (add, edit, test the
//! connection, pause, resume, remove; the same store and checks as
//! `postdesk mailbox`), and users with their roles (add, edit, deactivate,
//! new password). Settings: `console/settings.rs`.

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ConsoleError, CsrfForm, Staff, base, options, page};
use crate::config::{Account, AfterAction, MailboxSettings, Secret, StartMode, TlsMode};
use crate::domain::{EmailAddress, Priority, Role};
use crate::secrets;
use crate::store::mailboxes::MailboxRow;
use crate::store::{NewUser, now_millis};
use crate::web::AppState;
use crate::web::files::{percent_encode, when};

/// The admin pages' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console/admin/mailboxes",
            get(mailboxes).post(save_mailbox),
        )
        .route("/console/admin/mailboxes/{name}", get(edit_mailbox))
        .route("/console/admin/mailboxes/{name}/{op}", post(mailbox_op))
        .route("/console/admin/users", get(users).post(add_user))
        .route("/console/admin/outbox", get(outbox))
        .route("/console/admin/outbox/{id}/retry", post(outbox_retry))
        .route("/console/admin/users/{id}", post(update_user))
        .route("/console/admin/users/{id}/password", post(new_password))
}

/// Refuses anyone but an admin.
pub(crate) fn admin_only(me: &Staff) -> Result<(), ConsoleError> {
    if me.is_admin() {
        Ok(())
    } else {
        Err(ConsoleError::Forbidden(
            "Only admins may change the configuration.".into(),
        ))
    }
}

// ---------------------------------------------------------------- mailboxes

/// What an IMAP or SMTP error means for the admin, and what to do; the
/// server's own words follow in brackets.
pub(crate) fn explain_mail_error(raw: &str) -> String {
    let e = raw.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| e.contains(w));
    let what = if has(&[
        "authenticationfailed",
        "authentication failed",
        "invalid credentials",
        "login failed",
        "authenticate failed",
        "535",
    ]) {
        "The server refused the user name or password: check them (or the app password your provider asks for)."
    } else if has(&["certificate", "unknownissuer", "invalid peer"]) {
        "The server's TLS certificate is not trusted: check the host name, or name its CA file."
    } else if has(&[
        "failed to lookup address",
        "name or service not known",
        "no such host",
        "dns error",
    ]) {
        "The host name does not resolve: check the IMAP host."
    } else if has(&["connection refused"]) {
        "Nothing answers on that host and port: check the port and the TLS mode (993 implicit, 143 STARTTLS)."
    } else if has(&["timed out", "timeout"]) {
        "The server did not answer in time: check the host, the port and any firewall between."
    } else if has(&[
        "nonexistent",
        "doesn't exist",
        "does not exist",
        "no such mailbox",
        "unknown mailbox",
    ]) {
        "The folder does not exist on the server: check the folder name (INBOX is the usual one)."
    } else if has(&["overquota", "over quota", "quota"]) {
        "The mailbox is over its quota on the server: make room there."
    } else if has(&["tls", "handshake", "starttls"]) {
        "The TLS handshake failed: check the TLS mode for this port."
    } else {
        "The mail server answered with an error."
    };
    let raw: String = raw.chars().take(300).collect();
    format!("{what} (The server said: {raw})")
}

/// How a mailbox is doing, in words.
pub(crate) fn mailbox_state(m: &MailboxRow) -> String {
    if m.paused {
        "paused".into()
    } else if let Some(e) = &m.last_error {
        format!(
            "error since {}: {}",
            m.last_error_at.map(when).unwrap_or_default(),
            explain_mail_error(e)
        )
    } else if let Some(ok) = m.last_ok_at {
        format!("ok at {}", when(ok))
    } else {
        "not polled yet".into()
    }
}

/// The mailbox form as sent (checkboxes are absent when unticked; blank
/// passwords keep the stored ones when editing).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MailboxForm {
    csrf: String,
    /// The name of the mailbox being edited (empty when adding).
    original: String,
    name: String,
    address: String,
    imap_host: String,
    imap_port: String,
    tls: String,
    username: String,
    password: String,
    folder: String,
    after: String,
    start: String,
    idle: Option<String>,
    poll_interval: String,
    plus_addressing: Option<String>,
    trusted_authserv_ids: String,
    trust_topmost_results: Option<String>,
    verify_in_process: Option<String>,
    #[serde(default)]
    received_by: String,
    smtp_host: String,
    smtp_port: String,
    smtp_tls: String,
    smtp_username: String,
    smtp_password: String,
    default_category: String,
    default_priority: String,
    default_assignee: String,
}

fn tls_mode(s: &str) -> Result<TlsMode, ConsoleError> {
    match s {
        "implicit" => Ok(TlsMode::Implicit),
        "starttls" => Ok(TlsMode::Starttls),
        "none" => Ok(TlsMode::None),
        _ => Err(ConsoleError::BadForm(format!(
            "TLS `{s}` is not implicit, starttls or none"
        ))),
    }
}

fn tls_name(t: TlsMode) -> &'static str {
    match t {
        TlsMode::Implicit => "implicit",
        TlsMode::Starttls => "starttls",
        TlsMode::None => "none",
    }
}

fn port(s: &str, what: &str) -> Result<u16, ConsoleError> {
    s.trim()
        .parse()
        .map_err(|_| ConsoleError::BadForm(format!("{what} port `{s}` is not a port number")))
}

fn blank_to_none(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

impl MailboxForm {
    /// The settings this form describes; `old` supplies passwords left blank.
    fn settings(&self, old: Option<&MailboxSettings>) -> Result<MailboxSettings, ConsoleError> {
        let bad = |e: String| ConsoleError::BadForm(e);
        let secret = |new: &str, old: Option<&Account>| match blank_to_none(new) {
            Some(p) => Some(Secret::Inline(p.to_string())),
            None => old.and_then(|a| a.password.clone()),
        };
        let smtp = match blank_to_none(&self.smtp_host) {
            None => None,
            Some(host) => Some(Account {
                host: host.into(),
                port: port(&self.smtp_port, "SMTP")?,
                tls: tls_mode(&self.smtp_tls)?,
                username: self.smtp_username.trim().into(),
                password: secret(&self.smtp_password, old.and_then(|o| o.smtp.as_ref())),
                ca_file: None,
                oauth2: None,
            }),
        };
        let m = MailboxSettings {
            name: self.name.trim().into(),
            address: self
                .address
                .parse()
                .map_err(|e: crate::domain::ParseError| bad(e.to_string()))?,
            folder: blank_to_none(&self.folder).unwrap_or("INBOX").into(),
            after: self.after.parse::<AfterAction>().map_err(bad)?,
            idle: self.idle.is_some(),
            poll_interval: blank_to_none(&self.poll_interval)
                .unwrap_or("30s")
                .parse()
                .map_err(|e: crate::domain::ParseError| bad(e.to_string()))?,
            start: match self.start.as_str() {
                "backlog" => StartMode::Backlog,
                "backlog-silent" => StartMode::BacklogSilent,
                _ => StartMode::Now,
            },
            plus_addressing: self.plus_addressing.is_some(),
            imap: Account {
                host: self.imap_host.trim().into(),
                port: port(&self.imap_port, "IMAP")?,
                tls: tls_mode(&self.tls)?,
                username: self.username.trim().into(),
                password: secret(&self.password, old.map(|o| &o.imap)),
                ca_file: old.and_then(|o| o.imap.ca_file.clone()),
                oauth2: old.and_then(|o| o.imap.oauth2.clone()),
            },
            smtp,
            default_category: blank_to_none(&self.default_category).map(String::from),
            default_priority: blank_to_none(&self.default_priority)
                .map(str::parse::<Priority>)
                .transpose()
                .map_err(|e| bad(e.to_string()))?,
            default_assignee: blank_to_none(&self.default_assignee)
                .map(str::parse::<EmailAddress>)
                .transpose()
                .map_err(|e| bad(e.to_string()))?,
            trusted_authserv_ids: host_list(&self.trusted_authserv_ids),
            trust_topmost_results: self.trust_topmost_results.is_some(),
            verify_in_process: self.verify_in_process.is_some(),
            received_by: host_list(&self.received_by),
        };
        m.check().map_err(|e| bad(e.replace("mailboxes[0].", "")))?;
        Ok(m)
    }
}

/// Host names typed as a list, separated by commas or spaces.
fn host_list(typed: &str) -> Vec<String> {
    typed
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The form's values for a mailbox (blank for a new one).
fn form_values(m: Option<&MailboxSettings>) -> Value {
    let Some(m) = m else {
        return json!({
            "original": "", "name": "", "address": "", "imap_host": "", "imap_port": "993",
            "username": "", "folder": "INBOX", "after": "seen", "idle": true,
            "poll_interval": "30s", "plus_addressing": false, "smtp_host": "", "smtp_port": "587",
            "smtp_username": "", "default_category": "", "default_assignee": "",
            "trusted_authserv_ids": "", "trust_topmost_results": false,
            "verify_in_process": false, "received_by": "",
            "has_password": false,
        });
    };
    json!({
        "original": m.name, "name": m.name, "address": m.address.as_str(),
        "imap_host": m.imap.host, "imap_port": m.imap.port.to_string(),
        "username": m.imap.username, "folder": m.folder, "after": m.after.to_string(),
        "idle": m.idle, "poll_interval": m.poll_interval.to_string(),
        "plus_addressing": m.plus_addressing,
        "smtp_host": m.smtp.as_ref().map(|s| s.host.clone()).unwrap_or_default(),
        "smtp_port": m.smtp.as_ref().map_or("587".to_string(), |s| s.port.to_string()),
        "smtp_username": m.smtp.as_ref().map(|s| s.username.clone()).unwrap_or_default(),
        "default_category": m.default_category.clone().unwrap_or_default(),
        "default_assignee": m.default_assignee.as_ref().map(|a| a.to_string()).unwrap_or_default(),
        "trusted_authserv_ids": m.trusted_authserv_ids.join(", "),
        "trust_topmost_results": m.trust_topmost_results,
        "verify_in_process": m.verify_in_process,
        "received_by": m.received_by.join(", "),
        "has_password": m.imap.password.is_some(),
    })
}

async fn mailboxes_page(
    state: &AppState,
    me: &Staff,
    editing: Option<&MailboxSettings>,
    status: StatusCode,
    notice: Option<String>,
) -> Result<Response, ConsoleError> {
    admin_only(me)?;
    let rows = state.store.mailboxes().await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|m| {
            json!({
                "name": m.name, "path": percent_encode(&m.name),
                "address": m.settings.address.as_str(),
                "server": format!("{}:{}", m.settings.imap.host, m.settings.imap.port),
                "folder": m.settings.folder, "paused": m.paused,
                "from_config": m.from_config, "state": mailbox_state(m),
                "failing": m.last_error.is_some() && !m.paused,
            })
        })
        .collect();
    let tls = editing.map_or("implicit", |m| tls_name(m.imap.tls));
    let smtp_tls = editing
        .and_then(|m| m.smtp.as_ref())
        .map_or("starttls", |s| tls_name(s.tls));
    let start = match editing.map(|m| m.start) {
        Some(StartMode::Backlog) => "backlog",
        Some(StartMode::BacklogSilent) => "backlog-silent",
        _ => "now",
    };
    let tls_items = [
        ("implicit", "Implicit TLS"),
        ("starttls", "STARTTLS"),
        ("none", "None (loopback only)"),
    ];
    let mut priorities = vec![("", "Default")];
    priorities.extend(Priority::ALL.iter().map(|p| (p.as_str(), p.as_str())));
    let priority = editing
        .and_then(|m| m.default_priority)
        .map_or("", |p| p.as_str());
    let mut c = base(state, "Mailboxes", Some(me));
    c.insert("mailboxes".into(), json!(list));
    c.insert("form".into(), form_values(editing));
    c.insert("editing".into(), json!(editing.is_some()));
    c.insert("notice".into(), json!(notice));
    c.insert("tls_options".into(), json!(options(tls_items, tls)));
    c.insert(
        "smtp_tls_options".into(),
        json!(options(tls_items, smtp_tls)),
    );
    c.insert(
        "start_options".into(),
        json!(options(
            [
                ("now", "Only mail arriving from now on"),
                ("backlog", "Everything in the folder, with notifications"),
                ("backlog-silent", "Everything in the folder, silently"),
            ],
            start
        )),
    );
    c.insert(
        "priority_options".into(),
        json!(options(priorities, priority)),
    );
    Ok(state
        .pages
        .render(status, "console_mailboxes", &Value::Object(c)))
}

async fn mailboxes(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state, &headers, async |me: &Staff| {
        mailboxes_page(&state, me, None, StatusCode::OK, None).await
    })
    .await
}

async fn edit_mailbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        admin_only(me)?;
        let m = state
            .store
            .mailbox_by_name(&name)
            .await?
            .ok_or_else(|| ConsoleError::NotFound(format!("mailbox named {name}")))?;
        mailboxes_page(&state, me, Some(&m.settings), StatusCode::OK, None).await
    })
    .await
}

async fn save_mailbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<MailboxForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        admin_only(me)?;
        me.check(&form.csrf)?;
        let old = match blank_to_none(&form.original) {
            Some(name) => Some(
                state
                    .store
                    .mailbox_by_name(name)
                    .await?
                    .ok_or_else(|| ConsoleError::NotFound(format!("mailbox named {name}")))?,
            ),
            None => None,
        };
        if old.as_ref().is_some_and(|o| o.from_config) {
            return Err(ConsoleError::BadForm(
                "This mailbox is declared in the config file; change it there.".into(),
            ));
        }
        let m = form.settings(old.as_ref().map(|o| &o.settings))?;
        if old.is_none() && state.store.mailbox_by_name(&m.name).await?.is_some() {
            return Err(ConsoleError::BadForm(format!(
                "A mailbox is already named {}; edit that one instead.",
                m.name
            )));
        }
        if let Some(o) = &old
            && o.name != m.name
        {
            return Err(ConsoleError::BadForm(
                "A mailbox keeps its name; add a new one to use another.".into(),
            ));
        }
        state.store.upsert_mailbox(&m, false, now_millis()).await?;
        tracing::info!(mailbox = %m.name, by = %me.user.email, "console: mailbox saved");
        let notice = format!(
            "Mailbox {} saved; running daemons pick it up within 10 seconds.",
            m.name
        );
        mailboxes_page(&state, me, None, StatusCode::OK, Some(notice)).await
    })
    .await
}

/// A mailbox operation's form: the CSRF token, and for removal the box
/// that confirms it.
#[derive(Debug, Deserialize)]
struct MailboxOpForm {
    csrf: String,
    #[serde(default)]
    confirm: String,
}

async fn mailbox_op(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, op)): Path<(String, String)>,
    Form(form): Form<MailboxOpForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        admin_only(me)?;
        me.check(&form.csrf)?;
        let missing = || ConsoleError::NotFound(format!("mailbox named {name}"));
        let notice = match op.as_str() {
            "pause" | "resume" => {
                if !state.store.set_mailbox_paused(&name, op == "pause").await? {
                    return Err(missing());
                }
                format!("Mailbox {name} {}d.", op)
            }
            "remove" => {
                if form.confirm != "yes" {
                    return Err(ConsoleError::BadForm(format!(
                        "Tick the box to confirm removing mailbox {name}; it is still fetched."
                    )));
                }
                if !state.store.remove_mailbox(&name).await? {
                    return Err(missing());
                }
                format!("Mailbox {name} removed; its tickets and stored mail stay.")
            }
            "test" => {
                let m = state
                    .store
                    .mailbox_by_name(&name)
                    .await?
                    .ok_or_else(missing)?;
                let tokens = crate::oauth::Tokens::new(state.store.clone());
                match crate::gateway::imap::probe(
                    &m.settings.imap,
                    Some(&tokens),
                    &m.settings.folder,
                )
                .await
                {
                    Ok(p) => format!(
                        "Connection ok: logged in as {}; {} holds {} messages; IDLE {}.",
                        m.settings.imap.username,
                        m.settings.folder,
                        p.messages,
                        if p.idle { "yes" } else { "no" }
                    ),
                    Err(e) => format!("Connection failed. {}", explain_mail_error(&e.to_string())),
                }
            }
            _ => return Err(ConsoleError::NotFound(format!("action {op}"))),
        };
        mailboxes_page(&state, me, None, StatusCode::OK, Some(notice)).await
    })
    .await
}

// ---------------------------------------------------------------- users

async fn users_page(
    state: &AppState,
    me: &Staff,
    notice: Option<String>,
) -> Result<Response, ConsoleError> {
    admin_only(me)?;
    let users = state.store.users().await?;
    let roles = [("agent", "Agent"), ("admin", "Admin")];
    let list: Vec<Value> = users
        .iter()
        .map(|u| {
            json!({
                "id": u.id, "email": u.email.as_str(), "name": u.name, "active": u.active,
                "roles": options(roles, u.role.as_str()), "me": u.id == me.user.id,
            })
        })
        .collect();
    let mut c = base(state, "Users", Some(me));
    c.insert("users".into(), json!(list));
    c.insert("notice".into(), json!(notice));
    c.insert("role_options".into(), json!(options(roles, "agent")));
    Ok(state
        .pages
        .render(StatusCode::OK, "console_users", &Value::Object(c)))
}

#[derive(Debug, Deserialize)]
struct OutboxQuery {
    #[serde(default)]
    state: String,
}

/// `GET /console/admin/outbox?state=failed`: notifications by state, with
/// the server's answer and a retry button (admins).
async fn outbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<OutboxQuery>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        admin_only(me)?;
        let counts = state.store.outbox_counts().await?;
        let wanted = if q.state.is_empty() {
            "failed"
        } else {
            q.state.as_str()
        };
        let states: Vec<Value> = ["failed", "held", "suppressed", "queued", "sent"]
            .into_iter()
            .map(|s| {
                json!({
                    "value": s, "label": s, "active": s == wanted,
                    "count": counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n),
                })
            })
            .collect();
        let rows = state.store.outbox_list(Some(wanted), 200).await?;
        let mut list = Vec::with_capacity(rows.len());
        for o in &rows {
            let mut row = super::ticket::delivery_json(o);
            let reference = match o.ticket_id {
                Some(id) => state
                    .store
                    .ticket(id)
                    .await?
                    .map(|t| t.reference.to_string()),
                None => None,
            };
            row["ticket"] = json!(reference);
            list.push(row);
        }
        let mut c = base(&state, "Outbox", Some(me));
        c.insert("states".into(), json!(states));
        c.insert("rows".into(), json!(list));
        c.insert("notice".into(), Value::Null);
        Ok(state
            .pages
            .render(StatusCode::OK, "console_outbox", &Value::Object(c)))
    })
    .await
}

/// `POST /console/admin/outbox/{id}/retry` (admins).
async fn outbox_retry(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        admin_only(me)?;
        me.check(&form.csrf)?;
        state.store.outbox_retry(Some(id), now_millis()).await?;
        Ok(Redirect::to("/console/admin/outbox").into_response())
    })
    .await
}

async fn users(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state, &headers, async |me: &Staff| {
        users_page(&state, me, None).await
    })
    .await
}

#[derive(Debug, Deserialize)]
struct NewUserForm {
    csrf: String,
    email: String,
    #[serde(default)]
    name: String,
    role: String,
}

/// A fresh password and its argon2id hash (hashed off the async threads).
async fn fresh_password() -> Result<(String, String), ConsoleError> {
    let password = secrets::new_password();
    let hash = secrets::hash_password_off_thread(password.clone())
        .await
        .map_err(|_| ConsoleError::Internal)?;
    Ok((password, hash))
}

async fn add_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<NewUserForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        admin_only(me)?;
        me.check(&form.csrf)?;
        let bad = |e: crate::domain::ParseError| ConsoleError::BadForm(e.to_string());
        let email: EmailAddress = form.email.parse().map_err(bad)?;
        let role: Role = form.role.parse().map_err(bad)?;
        if state.store.user_by_email(&email).await?.is_some() {
            return Err(ConsoleError::BadForm(format!(
                "{email} already has an account."
            )));
        }
        let (password, hash) = fresh_password().await?;
        let name: String = form.name.trim().chars().take(100).collect();
        state
            .store
            .insert_user(
                &NewUser {
                    email: email.clone(),
                    name,
                    role,
                    password_hash: hash,
                },
                now_millis(),
            )
            .await?;
        tracing::info!(user = %email, by = %me.user.email, "console: account created");
        users_page(
            &state,
            me,
            Some(format!(
                "Account {email} created. Its password, shown once: {password}"
            )),
        )
        .await
    })
    .await
}

#[derive(Debug, Deserialize)]
struct UserForm {
    csrf: String,
    #[serde(default)]
    name: String,
    role: String,
    active: Option<String>,
}

async fn update_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<UserForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        admin_only(me)?;
        me.check(&form.csrf)?;
        let role: Role = form
            .role
            .parse()
            .map_err(|e: crate::domain::ParseError| ConsoleError::BadForm(e.to_string()))?;
        let active = form.active.is_some();
        if id == me.user.id && (!active || role != Role::Admin) {
            return Err(ConsoleError::BadForm(
                "You cannot take away your own admin role or account; ask another admin.".into(),
            ));
        }
        let name: String = form.name.trim().chars().take(100).collect();
        if !state
            .store
            .update_user(id, &name, role, active, now_millis())
            .await?
        {
            return Err(ConsoleError::NotFound(format!("user {id}")));
        }
        Ok(Redirect::to("/console/admin/users").into_response())
    })
    .await
}

async fn new_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        admin_only(me)?;
        me.check(&form.csrf)?;
        let users = state.store.users().await?;
        let user = users
            .iter()
            .find(|u| u.id == id)
            .ok_or_else(|| ConsoleError::NotFound(format!("user {id}")))?;
        let (password, hash) = fresh_password().await?;
        state
            .store
            .set_password_hash(id, &hash, now_millis())
            .await?;
        tracing::info!(user = %user.email, by = %me.user.email, "console: password reset");
        users_page(
            &state,
            me,
            Some(format!(
                "New password for {}, shown once (the account is unlocked): {password}",
                user.email
            )),
        )
        .await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::explain_mail_error;

    #[test]
    fn mail_server_errors_say_what_to_do() {
        let auth = explain_mail_error(
            r#"no response: code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#,
        );
        assert!(
            auth.starts_with("The server refused the user name or password"),
            "{auth}"
        );
        assert!(
            auth.contains("[AUTHENTICATIONFAILED]"),
            "the server's words are kept"
        );
        let refused = explain_mail_error("io error: Connection refused (os error 111)");
        assert!(refused.contains("check the port"), "{refused}");
        let dns =
            explain_mail_error("failed to lookup address information: Name or service not known");
        assert!(dns.contains("does not resolve"), "{dns}");
        let folder =
            explain_mail_error("no response: [NONEXISTENT] Mailbox doesn't exist: Tickets");
        assert!(folder.contains("folder does not exist"), "{folder}");
        let cert = explain_mail_error("invalid peer certificate: UnknownIssuer");
        assert!(cert.contains("certificate"), "{cert}");
        let other = explain_mail_error("bye");
        assert!(
            other.starts_with("The mail server answered with an error"),
            "{other}"
        );
        assert!(
            explain_mail_error(&"x".repeat(10_000)).len() < 500,
            "bounded"
        );
    }
}
