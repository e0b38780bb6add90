//! `[[mailboxes]]`: a mailbox's IMAP account (TLS, password or OAuth2),
//! what happens to a mail once read, where polling starts, and the checks
//! of an account's settings.

use super::*;

/// TLS mode of an IMAP or SMTP account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    Implicit,
    Starttls,
    /// Plain text: loopback hosts only.
    None,
}

impl MailboxSettings {
    /// Whose Authentication-Results this mailbox trusts.
    pub fn sender_trust(&self) -> crate::mail::auth::SenderTrust {
        crate::mail::auth::SenderTrust {
            authserv_ids: self.trusted_authserv_ids.clone(),
            topmost: self.trust_topmost_results,
        }
    }

    /// The checks a mailbox of the config file gets, for one added at run
    /// time (CLI, console, API); the message names fields `mailboxes[0].…`.
    pub fn check(&self) -> Result<(), String> {
        let alone = Settings {
            mailboxes: vec![self.clone()],
            ..Settings::default()
        };
        alone.validate().map_err(|e| e.to_string())
    }
}

/// An IMAP or SMTP account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Option<Secret>,
    /// Extra CA certificate (PEM) to trust, for servers with a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Log in with XOAUTH2 and an access token from this OAuth2 client
    /// instead of the password (hosted mail providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Settings>,
}

/// `oauth2 = { … }` of an account: a refresh-token grant at `token_url`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Settings {
    /// The provider's token endpoint.
    pub token_url: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// The refresh token from authorising the mailbox once; a rotated one
    /// replaces it in the database.
    pub refresh_token: Secret,
    /// Scopes to ask for, space-separated (the provider's default when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// What happens to a mail on the IMAP server once it is safely stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterAction {
    Seen,
    Move(String),
    Delete,
}

impl std::str::FromStr for AfterAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "seen" => Ok(AfterAction::Seen),
            "delete" => Ok(AfterAction::Delete),
            _ => match s.strip_prefix("move:") {
                Some(folder) if !folder.trim().is_empty() => {
                    Ok(AfterAction::Move(folder.to_string()))
                }
                _ => Err(format!("`{s}` is not `seen`, `delete` or `move:<folder>`")),
            },
        }
    }
}

impl fmt::Display for AfterAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AfterAction::Seen => f.write_str("seen"),
            AfterAction::Delete => f.write_str("delete"),
            AfterAction::Move(folder) => write!(f, "move:{folder}"),
        }
    }
}

impl Serialize for AfterAction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AfterAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Where a new mailbox starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartMode {
    /// Only mail arriving from now on.
    #[default]
    Now,
    /// Everything in the folder, with notifications.
    Backlog,
    /// Everything in the folder, without notifications.
    BacklogSilent,
}

/// A `[[mailboxes]]` entry (SPEC §5, §8).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxSettings {
    pub name: String,
    pub address: EmailAddress,
    #[serde(default = "default_folder")]
    pub folder: String,
    #[serde(default = "default_after")]
    pub after: AfterAction,
    #[serde(default = "default_true")]
    pub idle: bool,
    #[serde(default = "default_poll")]
    pub poll_interval: Span,
    #[serde(default)]
    pub start: StartMode,
    /// Whether `support+token@…` addresses reach this mailbox.
    #[serde(default)]
    pub plus_addressing: bool,
    pub imap: Account,
    #[serde(default)]
    pub smtp: Option<Account>,
    #[serde(default)]
    pub default_category: Option<String>,
    #[serde(default)]
    pub default_priority: Option<Priority>,
    #[serde(default)]
    pub default_assignee: Option<EmailAddress>,
    /// The `authserv-id`s whose Authentication-Results headers this
    /// mailbox trusts to verify senders (SPEC §5.11); empty: none.
    #[serde(default)]
    pub trusted_authserv_ids: Vec<String>,
    /// Trust the topmost Authentication-Results header whatever its id
    /// (providers that stamp their own without one, e.g. Microsoft 365).
    #[serde(default)]
    pub trust_topmost_results: bool,
    /// Where no trusted server stamps results, postdesk checks DKIM, SPF
    /// and DMARC itself (DNS through `[dns]`).
    #[serde(default)]
    pub verify_in_process: bool,
    /// The mailbox's own receiving servers (as they name themselves in
    /// `Received: … by HOST`): the client their line names is checked
    /// against SPF. Empty: SPF is not checked in process (DKIM and DMARC are).
    #[serde(default)]
    pub received_by: Vec<String>,
}

pub(super) fn default_folder() -> String {
    "INBOX".into()
}
pub(super) fn default_after() -> AfterAction {
    AfterAction::Seen
}
pub(super) fn default_true() -> bool {
    true
}
pub(super) fn default_poll() -> Span {
    Span::secs(30)
}

pub(super) fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The checks every IMAP or SMTP account passes, `key` naming it.
pub(super) fn check_account(key: &str, a: &Account) -> Result<(), ConfigError> {
    if a.tls == TlsMode::None && !is_loopback_host(&a.host) {
        return Err(invalid(
            format!("{key}.tls"),
            "none",
            "plain text is allowed only to a loopback host",
        ));
    }
    if a.host.trim().is_empty() || a.port == 0 {
        return Err(invalid(
            format!("{key}.host"),
            &a.host,
            "needs a host and a port",
        ));
    }
    Ok(())
}
