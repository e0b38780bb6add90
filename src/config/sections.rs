//! The configuration's sections (`[database]`, `[http]`, `[tickets]`, …)
//! with their defaults and the checks of a single section.

use super::*;

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
