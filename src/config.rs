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
mod sections;

pub use live::{Editable, Live};
use mailbox::check_account;
pub use mailbox::{Account, AfterAction, MailboxSettings, OAuth2Settings, StartMode, TlsMode};
pub use sections::*;

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
    ///
    /// Long because it is the list of every check the types cannot express, one after the
    /// other; each is a few lines.
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
mod tests;
