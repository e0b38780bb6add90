//! Canned replies and macros, the pure part: the placeholders a canned text
//! may use and how they are filled for one ticket and one agent, and the
//! field changes a macro makes. No I/O: the store keeps the rows, the
//! actions apply them, the pages pick them.
//!
//! Placeholders are `{{group.field}}` (spaces inside the braces allowed).
//! They are replaced by plain text, never evaluated as a template: a canned
//! text cannot call helpers or reach anything but the listed values. A name
//! that is not listed stays as written, and saving a text that uses one is
//! refused with the list of names ([`unknown_placeholders`]).

use super::ticket::normalise_tag;
use super::{EmailAddress, ParseError, Priority, Status};

/// Every placeholder a canned text may use, with what it stands for.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    (
        "requester.first_name",
        "the requester's first name (or their name)",
    ),
    ("requester.last_name", "the requester's last name"),
    (
        "requester.name",
        "the requester's full name, else their address",
    ),
    ("requester.email", "the requester's address"),
    ("ticket.reference", "the ticket's reference, e.g. TKT-123"),
    ("ticket.subject", "the ticket's subject"),
    ("ticket.status", "the ticket's status"),
    ("ticket.priority", "the ticket's priority"),
    ("ticket.category", "the ticket's category"),
    ("agent.name", "your name"),
    ("agent.first_name", "your first name"),
    ("agent.email", "your address"),
];

/// The most characters of a title, and of a canned text.
pub const TITLE_MAX: usize = 120;
/// See [`TITLE_MAX`].
pub const BODY_MAX: usize = 20_000;

/// The values placeholders are filled with, for one ticket and one agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FillWith {
    pub requester_first_name: String,
    pub requester_last_name: String,
    pub requester_email: String,
    pub ticket_reference: String,
    pub ticket_subject: String,
    pub ticket_status: String,
    pub ticket_priority: String,
    pub ticket_category: String,
    pub agent_name: String,
    pub agent_email: String,
}

impl FillWith {
    /// The value of one placeholder, `None` for a name not listed.
    fn value(&self, name: &str) -> Option<String> {
        let full = |first: &str, last: &str, email: &str| {
            let name = format!("{first} {last}").trim().to_string();
            if name.is_empty() {
                email.to_string()
            } else {
                name
            }
        };
        Some(match name {
            "requester.first_name" => {
                if self.requester_first_name.is_empty() {
                    full("", &self.requester_last_name, &self.requester_email)
                } else {
                    self.requester_first_name.clone()
                }
            }
            "requester.last_name" => self.requester_last_name.clone(),
            "requester.name" => full(
                &self.requester_first_name,
                &self.requester_last_name,
                &self.requester_email,
            ),
            "requester.email" => self.requester_email.clone(),
            "ticket.reference" => self.ticket_reference.clone(),
            "ticket.subject" => self.ticket_subject.clone(),
            "ticket.status" => self.ticket_status.clone(),
            "ticket.priority" => self.ticket_priority.clone(),
            "ticket.category" => self.ticket_category.clone(),
            "agent.name" => full(&self.agent_name, "", &self.agent_email),
            "agent.first_name" => {
                let first = self.agent_name.split_whitespace().next().unwrap_or("");
                full(first, "", &self.agent_email)
            }
            "agent.email" => self.agent_email.clone(),
            _ => return None,
        })
    }
}

/// The placeholders of `text` in order: (byte range of `{{…}}`, trimmed name).
/// A name is at most 64 bytes; longer braces are text. One pass.
fn placeholders(text: &str) -> Vec<(std::ops::Range<usize>, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find("{{").map(|i| from + i) {
        let inner = open + 2;
        let mut end = text.len().min(inner + 66);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let window = &text[inner..end];
        match window.find("}}") {
            Some(close) if !window[..close].contains('{') => {
                out.push((open..inner + close + 2, window[..close].trim()));
                from = inner + close + 2;
            }
            _ => from = inner,
        }
    }
    out
}

/// `text` with every listed placeholder replaced by its value for this
/// ticket and agent; anything else as written.
pub fn fill(text: &str, with: &FillWith) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for (range, name) in placeholders(text) {
        if let Some(value) = with.value(name) {
            out.push_str(&text[at..range.start]);
            out.push_str(&value);
            at = range.end;
        }
    }
    out.push_str(&text[at..]);
    out
}

/// The placeholder names `text` uses that are not listed (each once).
pub fn unknown_placeholders(text: &str) -> Vec<String> {
    let probe = FillWith::default();
    let mut out: Vec<String> = Vec::new();
    for (_, name) in placeholders(text) {
        if probe.value(name).is_none() && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// Whom a macro assigns the ticket to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignTo {
    /// Whoever applies the macro.
    Me,
    /// Nobody: the ticket is unassigned.
    Nobody,
    /// This agent.
    Agent(EmailAddress),
}

impl AssignTo {
    /// As stored: `me`, `` (nobody) or the address.
    pub fn as_stored(&self) -> String {
        match self {
            AssignTo::Me => "me".into(),
            AssignTo::Nobody => String::new(),
            AssignTo::Agent(e) => e.to_string(),
        }
    }

    /// From the stored or typed form (`me`, `nobody` or empty, an address).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        match s.trim() {
            "me" => Ok(AssignTo::Me),
            "" | "nobody" => Ok(AssignTo::Nobody),
            other => other.parse().map(AssignTo::Agent),
        }
    }
}

/// The field changes of a macro; all `None`/empty for a plain canned reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MacroChanges {
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub category: Option<String>,
    pub assignee: Option<AssignTo>,
    /// Tags added to the ticket's own (normalised, at most 20).
    pub add_tags: Vec<String>,
}

impl MacroChanges {
    /// Whether it changes anything (a macro) or not (a canned reply).
    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.priority.is_none()
            && self.category.is_none()
            && self.assignee.is_none()
            && self.add_tags.is_empty()
    }

    /// Tags as typed (comma separated), normalised, deduplicated, at most 20.
    pub fn tags_from(raw: &str) -> Vec<String> {
        let mut tags: Vec<String> = Vec::new();
        for tag in raw.split(',').filter_map(normalise_tag) {
            if !tags.contains(&tag) && tags.len() < 20 {
                tags.push(tag);
            }
        }
        tags
    }

    /// The ticket's tags after the macro: its own plus the added ones,
    /// sorted; `None` when nothing is added.
    pub fn tags_after(&self, current: &[String]) -> Option<Vec<String>> {
        let mut tags = current.to_vec();
        let before = tags.len();
        for t in &self.add_tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        if tags.len() == before {
            return None;
        }
        tags.sort();
        Some(tags)
    }

    /// The assignee's address after the macro (`Some(None)`: unassigned),
    /// `None` when the macro leaves the assignee alone.
    pub fn assignee_for(&self, me: &EmailAddress) -> Option<Option<EmailAddress>> {
        self.assignee.as_ref().map(|a| match a {
            AssignTo::Me => Some(me.clone()),
            AssignTo::Nobody => None,
            AssignTo::Agent(e) => Some(e.clone()),
        })
    }

    /// The changes in words, for a list of macros ("Status pending, tag
    /// billing").
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.status {
            parts.push(format!("status {s}"));
        }
        if let Some(p) = self.priority {
            parts.push(format!("priority {p}"));
        }
        if let Some(c) = &self.category {
            parts.push(format!("category {c}"));
        }
        match &self.assignee {
            Some(AssignTo::Me) => parts.push("assign to me".into()),
            Some(AssignTo::Nobody) => parts.push("unassign".into()),
            Some(AssignTo::Agent(e)) => parts.push(format!("assign to {e}")),
            None => {}
        }
        if !self.add_tags.is_empty() {
            parts.push(format!("tags + {}", self.add_tags.join(", ")));
        }
        parts.join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann() -> FillWith {
        FillWith {
            requester_first_name: "Ann".into(),
            requester_last_name: "Lee".into(),
            requester_email: "ann@example.org".into(),
            ticket_reference: "TKT-7".into(),
            ticket_subject: "Printer".into(),
            ticket_status: "open".into(),
            ticket_priority: "normal".into(),
            ticket_category: "General".into(),
            agent_name: "Alan Turing".into(),
            agent_email: "alan@example.test".into(),
        }
    }

    #[test]
    fn placeholders_are_filled_and_others_kept() {
        assert_eq!(
            fill(
                "Hi {{requester.first_name}}, about {{ ticket.reference }} ({{ticket.subject}}).\n{{agent.first_name}} / {{agent.name}} {{unknown}} {{",
                &ann()
            ),
            "Hi Ann, about TKT-7 (Printer).\nAlan / Alan Turing {{unknown}} {{"
        );
        assert_eq!(fill("{{requester.name}}", &ann()), "Ann Lee");
        assert_eq!(fill("no braces at all", &ann()), "no braces at all");
        assert_eq!(fill("{{{{ticket.reference}}}}", &ann()), "{{TKT-7}}");
    }

    #[test]
    fn names_fall_back_to_the_address() {
        let nameless = FillWith {
            requester_first_name: String::new(),
            requester_last_name: String::new(),
            agent_name: String::new(),
            ..ann()
        };
        assert_eq!(
            fill(
                "{{requester.first_name}} {{requester.name}} {{agent.name}}",
                &nameless
            ),
            "ann@example.org ann@example.org alan@example.test"
        );
    }

    #[test]
    fn a_filled_value_is_not_filled_again() {
        let tricky = FillWith {
            requester_first_name: "{{agent.email}}".into(),
            ..ann()
        };
        assert_eq!(fill("{{requester.first_name}}", &tricky), "{{agent.email}}");
    }

    #[test]
    fn unknown_names_are_listed_once() {
        assert_eq!(
            unknown_placeholders("{{ticket.reference}} {{ requester.phone }} {{x}} {{x}}"),
            vec!["requester.phone".to_string(), "x".to_string()]
        );
        assert!(unknown_placeholders("{{ticket.subject}} {not one}").is_empty());
    }

    #[test]
    fn long_or_broken_braces_are_text_and_multibyte_is_safe() {
        let long = format!("{{{{{}}}}}", "é".repeat(60));
        assert_eq!(fill(&long, &ann()), long);
        assert!(unknown_placeholders(&long).is_empty());
        let hostile = "{{".repeat(10_000) + "ü";
        assert_eq!(fill(&hostile, &ann()), hostile);
    }

    #[test]
    fn macro_changes() {
        let me: EmailAddress = "alan@example.test".parse().unwrap();
        let m = MacroChanges {
            status: Some(Status::Pending),
            assignee: Some(AssignTo::Me),
            add_tags: MacroChanges::tags_from(" Billing, vip ,billing,"),
            ..MacroChanges::default()
        };
        assert_eq!(m.add_tags, vec!["billing".to_string(), "vip".to_string()]);
        assert_eq!(m.assignee_for(&me), Some(Some(me.clone())));
        assert_eq!(
            m.tags_after(&["vip".into(), "a".into()]),
            Some(vec!["a".into(), "billing".into(), "vip".into()])
        );
        assert_eq!(m.tags_after(&["billing".into(), "vip".into()]), None);
        assert_eq!(
            m.describe(),
            "status pending · assign to me · tags + billing, vip"
        );
        assert!(!m.is_empty());
        assert!(MacroChanges::default().is_empty());
        assert_eq!(AssignTo::parse("nobody"), Ok(AssignTo::Nobody));
        assert_eq!(AssignTo::parse(" me "), Ok(AssignTo::Me));
        assert!(AssignTo::parse("not an address").is_err());
        assert_eq!(
            AssignTo::parse(&AssignTo::Agent(me.clone()).as_stored()),
            Ok(AssignTo::Agent(me))
        );
    }
}
