//! The settings admins change at run time (the console's settings page),
//! stored in the database and laid over the file's on every daemon.

use super::*;

/// The settings admins change at run time on the console's settings page
/// (SPEC §7). Stored in the database; where stored, they win over the
/// config file's values for the same keys, on every daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Editable {
    pub notification_address: Option<EmailAddress>,
    pub auto_close_after: Span,
    pub reopen_window: Span,
    pub default_assignee: Option<EmailAddress>,
    pub sla: SlaSettings,
    pub categories: Vec<String>,
    pub related_kinds: Vec<String>,
    pub support_url: Option<String>,
}

impl Editable {
    /// The current values of these keys in `s`.
    pub fn of(s: &Settings) -> Editable {
        Editable {
            notification_address: s.tickets.notification_address.clone(),
            auto_close_after: s.tickets.auto_close_after,
            reopen_window: s.tickets.reopen_window,
            default_assignee: s.tickets.default_assignee.clone(),
            sla: s.sla.clone(),
            categories: s.tickets.categories.clone(),
            related_kinds: s.tickets.related_kinds.clone(),
            support_url: s.http.support_url.clone(),
        }
    }

    /// `base` with these values in place, checked as the config file is.
    pub fn applied_to(&self, base: &Settings) -> Result<Settings, ConfigError> {
        let mut s = base.clone();
        s.tickets.notification_address = self.notification_address.clone();
        s.tickets.auto_close_after = self.auto_close_after;
        s.tickets.reopen_window = self.reopen_window;
        s.tickets.default_assignee = self.default_assignee.clone();
        s.sla = self.sla.clone();
        s.tickets.categories = self.categories.clone();
        s.tickets.related_kinds = self.related_kinds.clone();
        s.http.support_url = self.support_url.clone();
        s.validate()?;
        Ok(s)
    }
}

/// The settings in force, shared by every part of a running daemon: the
/// config file's, with the console's edits applied when they change.
#[derive(Debug, Clone)]
pub struct Live {
    base: Arc<Settings>,
    current: Arc<std::sync::RwLock<Arc<Settings>>>,
}

impl Live {
    /// Settings that start as `s` (the config file's).
    pub fn new(s: Settings) -> Live {
        let s = Arc::new(s);
        Live {
            base: s.clone(),
            current: Arc::new(std::sync::RwLock::new(s)),
        }
    }

    /// The settings in force now (a cheap shared copy: hold it for one job).
    pub fn get(&self) -> Arc<Settings> {
        match self.current.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts the console's values in force (over the config file's);
    /// returns whether anything changed.
    pub fn apply(&self, edits: &Editable) -> Result<bool, ConfigError> {
        let next = edits.applied_to(&self.base)?;
        let mut current = match self.current.write() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if Editable::of(&current) == *edits {
            return Ok(false);
        }
        *current = Arc::new(next);
        Ok(true)
    }
}
