//! Typed settings: defaults → `postdesk.toml` → `POSTDESK__SECTION__KEY`.
//! Built once at start and passed down; secrets are never printed.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::domain::sla::default_targets;
use crate::domain::ticket::DEFAULT_CATEGORIES;
use crate::domain::{EmailAddress, Priority, SlaTargets, Span, TicketRef};

mod live;
mod mailbox;

pub use live::{Editable, Live};
use mailbox::check_account;
pub use mailbox::{Account, AfterAction, MailboxSettings, OAuth2Settings, StartMode, TlsMode};

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is missing, unreadable or not TOML, or a value has the wrong type.
    #[error("configuration could not be read: {0}")]
    Load(#[from] config::ConfigError),
    /// A value parsed but makes no sense.
    #[error("invalid configuration: `{key}` = `{value}`: {problem}")]
    Invalid {
        key: String,
        value: String,
        problem: String,
    },
    /// A secret names an environment variable or file that cannot be read.
    #[error("secret for `{key}` could not be read: {problem}")]
    Secret { key: String, problem: String },
}

fn invalid(
    key: impl Into<String>,
    value: impl fmt::Display,
    problem: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.to_string(),
        problem: problem.into(),
    }
}

/// A secret: inline, `{ env = "VAR" }` or `{ file = "PATH" }`. Its value is
/// read only when needed and never printed: Debug and Serialize mask it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Secret {
    Env { env: String },
    File { file: PathBuf },
    Inline(String),
}

impl Secret {
    /// Reads the secret's value. `key` names the setting in error messages.
    pub fn reveal(&self, key: &str) -> Result<String, ConfigError> {
        let fail = |problem: String| ConfigError::Secret {
            key: key.to_string(),
            problem,
        };
        match self {
            Secret::Inline(s) => Ok(s.clone()),
            Secret::Env { env } => std::env::var(env)
                .map_err(|_| fail(format!("environment variable {env} is not set"))),
            Secret::File { file } => std::fs::read_to_string(file)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| fail(format!("{}: {e}", file.display()))),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Inline(_) => f.write_str("Secret(********)"),
            Secret::Env { env } => write!(f, "Secret(env {env})"),
            Secret::File { file } => write!(f, "Secret(file {})", file.display()),
        }
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Secret::Inline(_) => s.serialize_str("********"),
            Secret::Env { env } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("env", env)?;
                m.end()
            }
            Secret::File { file } => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("file", file)?;
                m.end()
            }
        }
    }
}

/// Everything postdesk reads from its configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub tickets: TicketSettings,
    pub sla: SlaSettings,
    pub log: LogSettings,
    pub security: SecuritySettings,
    pub scheduler: SchedulerSettings,
    pub outbound: OutboundSettings,
    pub cluster: ClusterSettings,
    pub dns: DnsSettings,
    pub export: ExportSettings,
    /// Mailboxes declared in the file; admins add more at run time.
    pub mailboxes: Vec<MailboxSettings>,
}

/// `[database]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` (default, created if missing) or `postgres://…`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: "sqlite://postdesk.db".into(),
            max_connections: 8,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Address the web server binds.
    pub listen: String,
    /// Base URL used in links in mail.
    pub public_url: String,
    /// Largest request body accepted, bytes.
    pub max_body_bytes: u64,
    /// An external support site; when set, the portal's support links point there.
    pub support_url: Option<String>,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For`
    /// names the client; from anyone else the header is ignored.
    pub trusted_proxies: Vec<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            max_body_bytes: 25 * 1024 * 1024,
            support_url: None,
            trusted_proxies: Vec::new(),
        }
    }
}

impl HttpSettings {
    /// The parsed listen address (validated at load).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }
}

/// `[tickets]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TicketSettings {
    /// Reference prefix: `TKT` gives `TKT-1042`.
    pub prefix: String,
    /// A requester's reply within this time after closing reopens the ticket.
    pub reopen_window: Span,
    /// Resolved tickets close after this long; `0` = never.
    pub auto_close_after: Span,
    /// Categories offered; the first is the default.
    pub categories: Vec<String>,
    /// Priority of new tickets unless a mailbox or form says otherwise.
    pub default_priority: Priority,
    /// Largest attachment kept, per file.
    pub max_attachment_bytes: u64,
    /// Kinds of related reference (e.g. `order`, `study`); empty switches the feature off.
    pub related_kinds: Vec<String>,
    /// Team address told about new tickets, if any.
    pub notification_address: Option<EmailAddress>,
    /// The agent new tickets go to when neither their mailbox nor the
    /// person opening them names one.
    pub default_assignee: Option<EmailAddress>,
}

impl Default for TicketSettings {
    fn default() -> Self {
        TicketSettings {
            prefix: "TKT".into(),
            reopen_window: Span::days(7),
            auto_close_after: Span::days(7),
            categories: DEFAULT_CATEGORIES.iter().map(|c| c.to_string()).collect(),
            default_priority: Priority::Normal,
            max_attachment_bytes: 10 * 1024 * 1024,
            related_kinds: Vec::new(),
            notification_address: None,
            default_assignee: None,
        }
    }
}

impl TicketSettings {
    /// The configured category matching `wanted` case-insensitively.
    pub fn category(&self, wanted: &str) -> Option<&str> {
        self.categories
            .iter()
            .find(|c| c.eq_ignore_ascii_case(wanted.trim()))
            .map(String::as_str)
    }
    /// The category new tickets get when none is given.
    pub fn default_category(&self) -> &str {
        self.categories
            .first()
            .map(String::as_str)
            .unwrap_or("General")
    }
}

/// `[sla]`: targets per priority; off by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlaSettings {
    pub enabled: bool,
    pub low: SlaTargets,
    pub normal: SlaTargets,
    pub high: SlaTargets,
    pub urgent: SlaTargets,
}

impl Default for SlaSettings {
    fn default() -> Self {
        SlaSettings {
            enabled: false,
            low: default_targets(Priority::Low),
            normal: default_targets(Priority::Normal),
            high: default_targets(Priority::High),
            urgent: default_targets(Priority::Urgent),
        }
    }
}

impl SlaSettings {
    /// The targets that apply to a priority (none when SLA is off).
    pub fn targets(&self, p: Priority) -> SlaTargets {
        if !self.enabled {
            return SlaTargets::default();
        }
        match p {
            Priority::Low => self.low,
            Priority::Normal => self.normal,
            Priority::High => self.high,
            Priority::Urgent => self.urgent,
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `postdesk=debug,sqlx=warn`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Human,
            level: "info,sqlx=warn".into(),
        }
    }
}

/// `[security]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecuritySettings {
    /// Key for signed tokens (portal links, reply addresses). When unset, a
    /// random key is generated once and kept in the database.
    pub secret_key: Option<Secret>,
}

/// `[scheduler]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerSettings {
    /// Longest sleep between two scheduler passes, whatever is due.
    pub max_sleep: Span,
    /// How long `serve` waits for in-flight work on shutdown.
    pub shutdown_grace: Span,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings {
            max_sleep: Span::secs(300),
            shutdown_grace: Span::secs(20),
        }
    }
}

/// `[cluster]`: several daemons on one PostgreSQL (SPEC §8).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// This daemon's name in leases and claims; `HOSTNAME-PID` when unset.
    pub name: Option<String>,
    /// How long a mailbox lease lasts unless renewed (renewed every third of
    /// it): the longest a dead daemon's mailboxes wait for another daemon.
    pub lease_ttl: Span,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            name: None,
            lease_ttl: Span::secs(15),
        }
    }
}

/// `[dns]`: the resolver of in-process sender checks (DKIM, SPF, DMARC;
/// mailboxes with `verify_in_process`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsSettings {
    /// Name servers as `IP:PORT` (or `IP`, port 53); empty: the system's
    /// (`/etc/resolv.conf`).
    pub servers: Vec<String>,
    /// The longest a batch waits for its mails' lookups; what has not
    /// answered by then counts as a temporary error (the mail is unverified).
    pub timeout: Span,
    /// Answers kept (the resolver's cache, by the records' own TTLs).
    pub cache_size: usize,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            servers: Vec::new(),
            timeout: Span::secs(2),
            cache_size: 4096,
        }
    }
}

impl DnsSettings {
    /// The servers as socket addresses; `Err` names the bad one.
    pub fn server_addrs(&self) -> Result<Vec<SocketAddr>, String> {
        self.servers
            .iter()
            .map(|s| {
                let s = s.trim();
                s.parse::<SocketAddr>()
                    .or_else(|_| {
                        s.parse::<std::net::IpAddr>()
                            .map(|ip| SocketAddr::new(ip, 53))
                    })
                    .map_err(|_| s.to_string())
            })
            .collect()
    }
}

/// `[export]`: the console's exports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportSettings {
    /// Font files (TrueType or OpenType) the PDF export draws characters
    /// from that DejaVu Sans lacks (Chinese, Japanese, Korean, …), in order;
    /// empty: the first of Debian's Droid Sans Fallback, Noto Sans CJK or
    /// WenQuanYi Zen Hei that is installed.
    pub fallback_fonts: Vec<PathBuf>,
}

/// `[outbound]`: notification mail (SPEC §6).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundSettings {
    /// Whether the outbox worker runs in this daemon.
    pub enabled: bool,
    /// The From address of mail about tickets that did not arrive through a
    /// mailbox (portal, API); the first mailbox's address when unset.
    pub from: Option<EmailAddress>,
    /// The display name on every From line.
    pub from_name: String,
    /// The SMTP account for mailboxes that name none, and for tickets that
    /// did not arrive through a mailbox.
    pub smtp: Option<Account>,
    /// SMTP connections kept open per account.
    pub connections: usize,
    /// Notifications claimed and sent per round.
    pub batch: usize,
    /// How long one SMTP conversation (connect or send) may take.
    pub timeout: Span,
    /// Transient failures before a notification is marked failed.
    pub max_attempts: u32,
    /// The wait before the first retry; each further one doubles, up to an hour.
    pub retry_base: Span,
    /// Loop guard: automated mails to one address per hour.
    pub per_address_per_hour: u32,
    /// Loop guard: automated mails on one ticket per hour.
    pub per_ticket_per_hour: u32,
    /// Loop guard: automated mails per hour over a ticket and the tickets
    /// linked to it (a responder answering from changing addresses).
    pub per_conversation_per_hour: u32,
    /// Loop guard: automated mail in an hour over the tickets opened by
    /// mails with the same words (at least 20 letters).
    pub per_content_per_hour: u32,
    /// A folder of templates overriding the built-in ones by file name
    /// (`receipt.text.hbs`, `partials/footer.html.hbs`, ...).
    pub templates: Option<PathBuf>,
    /// How long a portal link in a notification stays valid.
    pub portal_link_ttl: Span,
    /// The name shown to requesters ("Example Support").
    pub team_name: String,
    /// The most bytes of files an agent's reply carries as attachments;
    /// above it, the mail links them on the portal instead and says so.
    pub max_attached_bytes: u64,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        OutboundSettings {
            enabled: true,
            from: None,
            from_name: "Support".into(),
            smtp: None,
            connections: 4,
            batch: 200,
            timeout: Span::secs(30),
            max_attempts: 15,
            retry_base: Span::secs(30),
            per_address_per_hour: 10,
            per_ticket_per_hour: 20,
            per_conversation_per_hour: 10,
            per_content_per_hour: 5,
            templates: None,
            portal_link_ttl: Span::secs(30 * 24 * 3600),
            team_name: "Support".into(),
            max_attached_bytes: 10 * 1024 * 1024,
        }
    }
}

impl OutboundSettings {
    /// The loop guard's limits.
    pub fn loop_limits(&self) -> crate::domain::notify::LoopLimits {
        crate::domain::notify::LoopLimits {
            per_address_per_hour: self.per_address_per_hour,
            per_ticket_per_hour: self.per_ticket_per_hour,
            per_conversation_per_hour: self.per_conversation_per_hour,
            per_content_per_hour: self.per_content_per_hour,
        }
    }
}

impl Settings {
    /// Loads defaults, then the file (`path`, or `postdesk.toml` in the
    /// working directory if present), then `POSTDESK__SECTION__KEY`
    /// variables, and validates the result.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given (for tests).
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        use config::{Config, Environment, File, FileFormat};
        let mut builder = Config::builder();
        match path {
            Some(p) => {
                builder = builder.add_source(File::from(p).format(FileFormat::Toml).required(true))
            }
            None => {
                builder =
                    builder.add_source(File::new("postdesk.toml", FileFormat::Toml).required(false))
            }
        }
        let vars: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("POSTDESK__"))
            .collect();
        builder = builder.add_source(
            Environment::with_prefix("POSTDESK")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(vars)),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types alone cannot, naming the key and value on failure.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                url,
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", 0, "must be at least 1"));
        }
        if self.http.listen.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "http.listen",
                &self.http.listen,
                "must be IP:PORT, like 127.0.0.1:8080",
            ));
        }
        let public = &self.http.public_url;
        if !(public.starts_with("http://") || public.starts_with("https://")) || public.len() < 10 {
            return Err(invalid(
                "http.public_url",
                public,
                "must be an http:// or https:// URL",
            ));
        }
        if let Some(url) = &self.http.support_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(invalid(
                "http.support_url",
                url,
                "must be an http:// or https:// URL",
            ));
        }
        if !TicketRef::valid_prefix(&self.tickets.prefix) {
            return Err(invalid(
                "tickets.prefix",
                &self.tickets.prefix,
                "must be 1 to 10 letters, like TKT",
            ));
        }
        if self.tickets.categories.is_empty()
            || self.tickets.categories.iter().any(|c| c.trim().is_empty())
        {
            return Err(invalid(
                "tickets.categories",
                self.tickets.categories.join(","),
                "must list non-empty names",
            ));
        }
        if self.tickets.max_attachment_bytes == 0 {
            return Err(invalid(
                "tickets.max_attachment_bytes",
                0,
                "must be more than 0",
            ));
        }
        if let Some(key) = &self.security.secret_key {
            let value = key.reveal("security.secret_key")?;
            if value.len() < 32 {
                return Err(invalid(
                    "security.secret_key",
                    "********",
                    "must be at least 32 characters",
                ));
            }
        }
        let o = &self.outbound;
        if o.connections == 0 || o.connections > 64 {
            return Err(invalid(
                "outbound.connections",
                o.connections,
                "must be 1 to 64",
            ));
        }
        if o.batch == 0 || o.batch > 10_000 {
            return Err(invalid("outbound.batch", o.batch, "must be 1 to 10000"));
        }
        if o.retry_base.is_zero() {
            return Err(invalid("outbound.retry_base", "0", "must be more than 0"));
        }
        if o.timeout.is_zero() {
            return Err(invalid("outbound.timeout", "0", "must be more than 0"));
        }
        if let Some(a) = &o.smtp {
            check_account("outbound.smtp", a)?;
        }
        if let Err(bad) = self.dns.server_addrs() {
            return Err(invalid("dns.servers", bad, "must be IP or IP:PORT"));
        }
        if self.dns.timeout.is_zero() {
            return Err(invalid("dns.timeout", "0", "must be more than 0"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, m) in self.mailboxes.iter().enumerate() {
            let key = |field: &str| format!("mailboxes[{i}].{field}");
            let name_ok = !m.name.is_empty()
                && m.name.len() <= 64
                && m.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !name_ok {
                return Err(invalid(
                    key("name"),
                    &m.name,
                    "must be 1-64 letters, digits, - or _",
                ));
            }
            if !names.insert(&m.name) {
                return Err(invalid(key("name"), &m.name, "is used by two mailboxes"));
            }
            for (field, account) in [("imap", Some(&m.imap)), ("smtp", m.smtp.as_ref())] {
                if let Some(a) = account {
                    check_account(&key(field), a)?;
                }
            }
            if m.poll_interval.is_zero() {
                return Err(invalid(key("poll_interval"), "0", "must be more than 0"));
            }
            if !m.received_by.is_empty() && !m.verify_in_process {
                return Err(invalid(
                    key("received_by"),
                    m.received_by.join(", "),
                    "is read only with verify_in_process = true",
                ));
            }
            if let Some(c) = &m.default_category
                && self.tickets.category(c).is_none()
            {
                return Err(invalid(
                    key("default_category"),
                    c,
                    "is not one of tickets.categories",
                ));
            }
        }
        Ok(())
    }

    /// The effective configuration as TOML, secrets masked.
    pub fn to_masked_toml(&self) -> String {
        /// Masks the credentials of every URL-like string in the tree.
        fn mask(v: &mut toml::Value) {
            match v {
                toml::Value::String(s) => {
                    if let std::borrow::Cow::Owned(masked) = crate::secrets::mask_url(s) {
                        *s = masked;
                    }
                }
                toml::Value::Array(items) => items.iter_mut().for_each(mask),
                toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| mask(v)),
                _ => {}
            }
        }
        match toml::Value::try_from(self) {
            Ok(mut v) => {
                mask(&mut v);
                toml::to_string_pretty(&v)
                    .unwrap_or_else(|e| format!("# could not render the configuration: {e}\n"))
            }
            Err(e) => format!("# could not render the configuration: {e}\n"),
        }
    }

    /// The rules' view of the ticket settings.
    pub fn rules(&self) -> crate::domain::RuleSettings {
        crate::domain::RuleSettings {
            reopen_window: self.tickets.reopen_window,
            auto_close_after: self.tickets.auto_close_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load_str(toml: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut f = tempfile::NamedTempFile::with_suffix(".toml").unwrap();
        f.write_all(toml.as_bytes()).unwrap();
        Settings::load_with_env(
            Some(f.path()),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn runs_with_no_file_at_all() {
        let s = Settings::load_with_env(None, Vec::new()).unwrap();
        assert_eq!(s.database.url, "sqlite://postdesk.db");
        assert_eq!(s.http.listen, "127.0.0.1:8080");
        assert_eq!(s.tickets.prefix, "TKT");
        assert_eq!(s.tickets.auto_close_after, Span::days(7));
    }

    #[test]
    fn the_spec_example_loads_and_env_overrides_it() {
        let toml = r#"
[database]
url = "sqlite://x.db"
[http]
listen = "127.0.0.1:9000"
public_url = "https://help.example.test"
[tickets]
prefix = "HD"
reopen_window = "3d"
auto_close_after = "0"
[[mailboxes]]
name = "support"
address = "support@example.test"
folder = "INBOX"
after = "move:Processed"
idle = true
poll_interval = "30s"
start = "backlog-silent"
imap = { host = "imap.example.test", port = 993, tls = "implicit", username = "support", password = { env = "SUPPORT_IMAP_PASSWORD" } }
smtp = { host = "smtp.example.test", port = 587, tls = "starttls", username = "support", password = { file = "/run/secrets/smtp" } }
"#;
        let s = load_str(
            toml,
            &[
                ("POSTDESK__TICKETS__PREFIX", "SUP"),
                ("POSTDESK__HTTP__PUBLIC_URL", "https://x.example.test"),
            ],
        )
        .unwrap();
        assert_eq!(s.tickets.prefix, "SUP");
        assert_eq!(s.http.public_url, "https://x.example.test");
        assert!(s.tickets.auto_close_after.is_zero());
        let m = &s.mailboxes[0];
        assert_eq!(m.after, AfterAction::Move("Processed".into()));
        assert_eq!(m.start, StartMode::BacklogSilent);
        assert_eq!(
            m.imap.password,
            Some(Secret::Env {
                env: "SUPPORT_IMAP_PASSWORD".into()
            })
        );
    }

    #[test]
    fn secrets_are_masked_in_output_and_debug() {
        let toml = r#"
[security]
secret_key = "a-very-secret-key-that-is-long-enough-1234"
"#;
        let s = load_str(toml, &[]).unwrap();
        let shown = s.to_masked_toml();
        assert!(!shown.contains("a-very-secret"), "{shown}");
        assert!(shown.contains("********"));
        assert!(!format!("{s:?}").contains("a-very-secret"));
        let toml = r#"
[database]
url = "postgres://desk:hunter2@db.example:5432/desk?sslmode=require&password=hunter3"
"#;
        let shown = load_str(toml, &[]).unwrap().to_masked_toml();
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(
            shown.contains("postgres://desk:********@db.example:5432/desk"),
            "{shown}"
        );
    }

    #[test]
    fn malformed_values_name_their_key() {
        let cases = [
            ("[tickets]\nprefix = \"T-1\"\n", "tickets.prefix"),
            ("[tickets]\nreopen_window = \"7x\"\n", "reopen_window"),
            ("[database]\nurl = \"mysql://x\"\n", "database.url"),
            ("[http]\nlisten = \"nowhere\"\n", "http.listen"),
            (
                "[database]\nmax_connections = \"many\"\n",
                "max_connections",
            ),
            ("[tickets]\nprefx = \"T\"\n", "prefx"),
        ];
        for (toml, key) in cases {
            let e = load_str(toml, &[]).unwrap_err().to_string();
            assert!(e.contains(key), "{toml:?} gave {e}");
        }
        let e = Settings::load_with_env(
            None,
            [("POSTDESK__TICKETS__AUTO_CLOSE_AFTER".into(), "soon".into())],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("auto_close_after"), "{e}");
    }

    #[test]
    fn plain_imap_only_to_loopback() {
        let toml = r#"
[[mailboxes]]
name = "s"
address = "s@example.test"
imap = { host = "imap.example.test", port = 143, tls = "none" }
"#;
        let e = load_str(toml, &[]).unwrap_err().to_string();
        assert!(e.contains("mailboxes[0].imap.tls"), "{e}");
        let ok = toml.replace("imap.example.test", "127.0.0.1");
        assert!(load_str(&ok, &[]).is_ok());
    }
}
