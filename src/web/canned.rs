//! Canned replies and macros as the console and the API share them: who
//! may see and change which, checking one as written, filling one for a
//! ticket, and its JSON. (Rows: `store::canned`; placeholders and changes:
//! `domain::canned`; applying one: `actions::canned`.)

use serde_json::{Value, json};

use super::AppState;
use super::error::WebError;
use crate::domain::canned::{
    AssignTo, BODY_MAX, FillWith, MacroChanges, PLACEHOLDERS, TITLE_MAX, unknown_placeholders,
};
use crate::domain::{Priority, Status};
use crate::store::canned::{CannedResponse, NewCanned};
use crate::store::{Ticket, User};

/// A canned response as sent by a form or a JSON body, before it is checked.
/// Empty strings mean "leave this field alone".
#[derive(Debug, Clone, Default)]
pub struct CannedDraft {
    pub title: String,
    pub body: String,
    pub shared: bool,
    pub status: String,
    pub priority: String,
    pub category: String,
    /// `me`, `nobody`, an agent's address, or empty.
    pub assignee: String,
    /// Comma separated.
    pub tags: String,
}

impl CannedDraft {
    /// The draft of a stored one (to edit it).
    pub fn of(c: &CannedResponse) -> Self {
        let ch = &c.changes;
        CannedDraft {
            title: c.title.clone(),
            body: c.body.clone(),
            shared: c.owner_id.is_none(),
            status: ch
                .status
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            priority: ch
                .priority
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            category: ch.category.clone().unwrap_or_default(),
            assignee: match &ch.assignee {
                Some(AssignTo::Nobody) => "nobody".into(),
                Some(a) => a.as_stored(),
                None => String::new(),
            },
            tags: ch.add_tags.join(", "),
        }
    }
}

/// Whether `me` may see (and use) `c`: shared ones, and their own.
pub fn may_see(c: &CannedResponse, me: &User) -> bool {
    super::owned::may_see(c.owner_id, me)
}

/// Whether `me` may change or delete `c` (see [`super::owned::may_change`]).
pub fn may_change(c: &CannedResponse, me: &User) -> bool {
    super::owned::may_change(c.owner_id, c.created_by, me)
}

/// Checks a draft written by `me`; the reason is a sentence for the writer.
pub async fn check(state: &AppState, me: &User, d: &CannedDraft) -> Result<NewCanned, WebError> {
    let bad = |m: String| WebError::BadRequest(m);
    let title = d.title.trim();
    if title.is_empty() || title.chars().count() > TITLE_MAX {
        return Err(bad(format!(
            "A title of 1 to {TITLE_MAX} characters is needed."
        )));
    }
    if d.body.chars().count() > BODY_MAX {
        return Err(bad(format!(
            "The text is longer than {BODY_MAX} characters."
        )));
    }
    let unknown = unknown_placeholders(&d.body);
    if !unknown.is_empty() {
        let known: Vec<String> = PLACEHOLDERS
            .iter()
            .map(|(n, _)| format!("{{{{{n}}}}}"))
            .collect();
        return Err(bad(format!(
            "Unknown placeholder {}; the placeholders are {}.",
            unknown
                .iter()
                .map(|n| format!("{{{{{n}}}}}"))
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        )));
    }
    let field = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let status = field(&d.status)
        .map(|s| s.parse::<Status>())
        .transpose()
        .map_err(|e| bad(e.to_string()))?;
    let priority = field(&d.priority)
        .map(|p| p.parse::<Priority>())
        .transpose()
        .map_err(|e| bad(e.to_string()))?;
    let settings = state.settings();
    let category = match field(&d.category) {
        Some(c) => Some(
            settings
                .tickets
                .category(&c)
                .ok_or_else(|| {
                    bad(format!(
                        "Category `{c}` is not one of: {}.",
                        settings.tickets.categories.join(", ")
                    ))
                })?
                .to_string(),
        ),
        None => None,
    };
    let assignee = match field(&d.assignee) {
        Some(a) => Some(AssignTo::parse(&a).map_err(|e| bad(e.to_string()))?),
        None => None,
    };
    if let Some(AssignTo::Agent(e)) = &assignee
        && !state
            .store
            .user_by_email(e)
            .await?
            .is_some_and(|u| u.active)
    {
        return Err(bad(format!("No active agent has the address {e}.")));
    }
    let changes = MacroChanges {
        status,
        priority,
        category,
        assignee,
        add_tags: MacroChanges::tags_from(&d.tags),
    };
    if d.body.trim().is_empty() && changes.is_empty() {
        return Err(bad(
            "Write a text, or choose a change for a macro (or both).".into(),
        ));
    }
    Ok(NewCanned {
        owner_id: if d.shared { None } else { Some(me.id) },
        title: title.to_string(),
        body: d.body.clone(),
        changes,
    })
}

/// The placeholders' values for `t` answered by `me`.
pub fn fill_with(t: &Ticket, me: &User) -> FillWith {
    FillWith {
        requester_first_name: t.requester.first_name.clone(),
        requester_last_name: t.requester.last_name.clone(),
        requester_email: t.requester.email.to_string(),
        ticket_reference: t.reference.to_string(),
        ticket_subject: t.subject.clone(),
        ticket_status: t.status.label().to_string(),
        ticket_priority: t.priority.as_str().to_string(),
        ticket_category: t.category.clone(),
        agent_name: me.name.clone(),
        agent_email: me.email.to_string(),
    }
}

/// A canned response for the API (with its text filled for a ticket when
/// one is given).
pub fn canned_json(c: &CannedResponse, me: &User, filled: Option<String>) -> Value {
    let ch = &c.changes;
    json!({
        "id": c.id,
        "title": c.title,
        "body": c.body,
        "shared": c.owner_id.is_none(),
        "mine": c.owner_id == Some(me.id) || (c.owner_id.is_none() && c.created_by == Some(me.id)),
        "editable": may_change(c, me),
        "macro": !ch.is_empty(),
        "changes": {
            "status": ch.status,
            "priority": ch.priority,
            "category": ch.category,
            "assignee": ch.assignee.as_ref().map(|a| match a {
                AssignTo::Nobody => "nobody".to_string(),
                other => other.as_stored(),
            }),
            "add_tags": ch.add_tags,
        },
        "filled": filled,
        "updated_at": crate::domain::rfc3339(c.updated_at),
    })
}

/// The placeholders with what they stand for (for the pages' help).
pub fn placeholders_json() -> Value {
    json!(
        PLACEHOLDERS
            .iter()
            .map(|(n, what)| json!({ "name": format!("{{{{{n}}}}}"), "what": what }))
            .collect::<Vec<_>>()
    )
}
