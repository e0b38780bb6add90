//! The mailboxes page: add, edit, test the connection, pause, resume,
//! remove (the same store and checks as `postdesk mailbox`).

use super::*;

/// The mailbox form as sent (checkboxes are absent when unticked; blank
/// passwords keep the stored ones when editing).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct MailboxForm {
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

fn tls_mode(s: &str) -> Result<TlsMode, WebError> {
    match s {
        "implicit" => Ok(TlsMode::Implicit),
        "starttls" => Ok(TlsMode::Starttls),
        "none" => Ok(TlsMode::None),
        _ => Err(WebError::BadRequest(format!(
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

fn port(s: &str, what: &str) -> Result<u16, WebError> {
    s.trim()
        .parse()
        .map_err(|_| WebError::BadRequest(format!("{what} port `{s}` is not a port number")))
}

fn blank_to_none(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

impl MailboxForm {
    /// The settings this form describes; `old` supplies passwords left blank.
    fn settings(&self, old: Option<&MailboxSettings>) -> Result<MailboxSettings, WebError> {
        let bad = |e: String| WebError::BadRequest(e);
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
) -> Result<Response, WebError> {
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

pub(super) async fn mailboxes(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state, &headers, async |me: &Staff| {
        mailboxes_page(&state, me, None, StatusCode::OK, None).await
    })
    .await
}

pub(super) async fn edit_mailbox(
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
            .ok_or_else(|| WebError::NotFound(format!("mailbox named {name}")))?;
        mailboxes_page(&state, me, Some(&m.settings), StatusCode::OK, None).await
    })
    .await
}

pub(super) async fn save_mailbox(
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
                    .ok_or_else(|| WebError::NotFound(format!("mailbox named {name}")))?,
            ),
            None => None,
        };
        if old.as_ref().is_some_and(|o| o.from_config) {
            return Err(WebError::BadRequest(
                "This mailbox is declared in the config file; change it there.".into(),
            ));
        }
        let m = form.settings(old.as_ref().map(|o| &o.settings))?;
        if old.is_none() && state.store.mailbox_by_name(&m.name).await?.is_some() {
            return Err(WebError::BadRequest(format!(
                "A mailbox is already named {}; edit that one instead.",
                m.name
            )));
        }
        if let Some(o) = &old
            && o.name != m.name
        {
            return Err(WebError::BadRequest(
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
pub(super) struct MailboxOpForm {
    csrf: String,
    #[serde(default)]
    confirm: String,
}

pub(super) async fn mailbox_op(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, op)): Path<(String, String)>,
    Form(form): Form<MailboxOpForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        admin_only(me)?;
        me.check(&form.csrf)?;
        let missing = || WebError::NotFound(format!("mailbox named {name}"));
        let notice = match op.as_str() {
            "pause" | "resume" => {
                if !state.store.set_mailbox_paused(&name, op == "pause").await? {
                    return Err(missing());
                }
                format!("Mailbox {name} {}d.", op)
            }
            "remove" => {
                if form.confirm != "yes" {
                    return Err(WebError::BadRequest(format!(
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
            _ => return Err(WebError::NotFound(format!("action {op}"))),
        };
        mailboxes_page(&state, me, None, StatusCode::OK, Some(notice)).await
    })
    .await
}

// ---------------------------------------------------------------- users
