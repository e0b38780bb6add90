//! Changes of a ticket's fields: status, priority, category, assignee, tags,
//! due date, related reference. Requester close is a status change to closed.

use super::{ActionError, Actions, Result, actor_label, change_status, load_visible, require};
use crate::domain::people::Capability;
use crate::domain::rules::{Event, Transition, apply};
use crate::domain::ticket::normalise_tag;
use crate::domain::{Actor, EmailAddress, Millis, Priority, Status};
use crate::store::NewMessage;
use crate::store::outbox::Notice;

/// One change to a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Status(Status),
    Priority(Priority),
    Category(String),
    /// `None` unassigns.
    Assignee(Option<EmailAddress>),
    /// The complete new set of tags.
    Tags(Vec<String>),
    /// Milliseconds since the epoch; `None` clears it.
    DueDate(Option<i64>),
    /// (kind, id); `None` clears it.
    Related(Option<(String, String)>),
}

impl Actions {
    /// Applies one change; returns whether anything changed. Every change
    /// writes a system message naming the actor.
    pub async fn change(
        &self,
        actor: Actor,
        ticket_id: i64,
        change: Change,
        now: Millis,
    ) -> Result<bool> {
        Ok(self.change_all(actor, ticket_id, vec![change], now).await? > 0)
    }

    /// Applies several changes in one transaction (the API's PATCH, the
    /// console's field form, a macro): all of them or, if one is refused,
    /// none. Returns how many changed something; each writes its system
    /// message naming the actor.
    pub async fn change_all(
        &self,
        actor: Actor,
        ticket_id: i64,
        changes: Vec<Change>,
        now: Millis,
    ) -> Result<usize> {
        let mut tx = self.store.begin().await?;
        let changed = self
            .change_all_in(&mut tx, actor, ticket_id, changes, now)
            .await?;
        if changed > 0 {
            tx.commit().await?;
        }
        Ok(changed)
    }

    /// [`Actions::change_all`] inside a transaction the caller commits.
    pub async fn change_all_in(
        &self,
        tx: &mut crate::store::Tx,
        actor: Actor,
        ticket_id: i64,
        changes: Vec<Change>,
        now: Millis,
    ) -> Result<usize> {
        for change in &changes {
            let (capability, what) = capability_of(change);
            require(actor, capability, what)?;
        }
        let mut ticket = load_visible(tx, actor, ticket_id).await?;
        // CC participants read and reply; only the requester closes (SPEC §7).
        if let Actor::Requester { requester_id } = actor
            && ticket.requester.id != requester_id
        {
            return Err(ActionError::Forbidden(
                "only the person who opened the request can close it".into(),
            ));
        }
        let before = ticket.clone();
        let by = actor_label(tx, actor).await?;
        let mut changed = 0;
        for change in changes {
            let Some(message) = self
                .apply_change(tx, actor, &mut ticket, change, &by, now)
                .await?
            else {
                continue;
            };
            changed += 1;
            if let Some(text) = message {
                tx.insert_message(NewMessage::system(ticket_id, text, now))
                    .await?;
            }
        }
        if changed > 0 {
            self.save(tx, &before, &mut ticket, now).await?;
        }
        Ok(changed)
    }

    /// One change applied to `ticket` inside `tx`: `None` when it changes
    /// nothing, else the system message to write (a status change writes
    /// its own).
    async fn apply_change(
        &self,
        tx: &mut crate::store::Tx,
        actor: Actor,
        ticket: &mut crate::store::Ticket,
        change: Change,
        by: &str,
        now: Millis,
    ) -> Result<Option<Option<String>>> {
        let message = match change {
            Change::Status(wanted) => {
                return self.set_status(tx, actor, ticket, wanted, by, now).await;
            }
            Change::Priority(p) if p == ticket.priority => return Ok(None),
            Change::Priority(p) => {
                let text = format!("Priority changed from {} to {p} by {by}", ticket.priority);
                ticket.priority = p;
                Some(text)
            }
            Change::Category(c) => {
                let settings = self.settings.get();
                let tickets = &settings.tickets;
                let c = tickets.category(&c).ok_or_else(|| {
                    ActionError::Invalid(format!(
                        "category `{c}` is not one of: {}",
                        tickets.categories.join(", ")
                    ))
                })?;
                if c == ticket.category {
                    return Ok(None);
                }
                let text = format!("Category changed from {} to {c} by {by}", ticket.category);
                ticket.category = c.to_string();
                Some(text)
            }
            Change::Assignee(email) => {
                return self.reassign(tx, actor, ticket, email, by, now).await;
            }
            Change::Tags(raw) => return retag(tx, ticket, &raw, by).await,
            Change::DueDate(due) if due == ticket.due_at => return Ok(None),
            Change::DueDate(due) => {
                ticket.due_at = due;
                Some(format!(
                    "Due date set to {} by {by}",
                    due.map(crate::domain::date_words)
                        .unwrap_or_else(|| "none".into())
                ))
            }
            Change::Related(related) if related == ticket.related => return Ok(None),
            Change::Related(related) => {
                let text = match &related {
                    Some((kind, id)) => {
                        if !self
                            .settings
                            .get()
                            .tickets
                            .related_kinds
                            .iter()
                            .any(|k| k == kind)
                        {
                            return Err(ActionError::Invalid(format!(
                                "related reference kind `{kind}` is not enabled"
                            )));
                        }
                        if id.trim().is_empty() || id.len() > 100 {
                            return Err(ActionError::Invalid(
                                "a related reference needs an id of 1 to 100 characters".into(),
                            ));
                        }
                        format!("Related {kind} set to {id} by {by}")
                    }
                    None => format!("Related reference removed by {by}"),
                };
                ticket.related = related;
                Some(text)
            }
        };
        Ok(Some(message))
    }

    /// A status chosen by hand, as the rules allow (SPEC §3); the requester
    /// hears when staff resolve or close.
    async fn set_status(
        &self,
        tx: &mut crate::store::Tx,
        actor: Actor,
        ticket: &mut crate::store::Ticket,
        wanted: Status,
        by: &str,
        now: Millis,
    ) -> Result<Option<Option<String>>> {
        let ticket_id = ticket.id;
        let state = ticket.rule_state();
        match apply(
            &state,
            Event::SetStatus(wanted),
            actor.kind(),
            &self.settings.get().rules(),
            now,
        )? {
            Transition::To { status, reason } => {
                change_status(tx, ticket, status, reason, by, now).await?;
                if actor.is_staff() && matches!(status, Status::Resolved | Status::Closed) {
                    let to = ticket.requester.email.to_string();
                    self.notify(tx, ticket_id, Notice::StatusChanged, &to, None, now)
                        .await?;
                }
                Ok(Some(None))
            }
            _ => Ok(None),
        }
    }

    /// A new assignee (an active agent) or none; the assignee hears of it
    /// unless they took it themselves.
    async fn reassign(
        &self,
        tx: &mut crate::store::Tx,
        actor: Actor,
        ticket: &mut crate::store::Ticket,
        email: Option<EmailAddress>,
        by: &str,
        now: Millis,
    ) -> Result<Option<Option<String>>> {
        let ticket_id = ticket.id;
        let user =
            match &email {
                Some(e) => Some(tx.user_by_email(e).await?.filter(|u| u.active).ok_or_else(
                    || ActionError::Invalid(format!("no active agent has the address {e}")),
                )?),
                None => None,
            };
        if user.as_ref().map(|u| u.id) == ticket.assignee.as_ref().map(|u| u.id) {
            return Ok(None);
        }
        let text = match &user {
            Some(u) => format!("Assigned to {} by {by}", u.email),
            None => format!("Unassigned by {by}"),
        };
        if let Some(u) = &user
            && !matches!(actor, Actor::Staff { user_id, .. } if user_id == u.id)
        {
            self.notify(tx, ticket_id, Notice::Assigned, u.email.as_str(), None, now)
                .await?;
        }
        ticket.assignee = user;
        Ok(Some(Some(text)))
    }
}

/// The ticket's tags set to these, normalised (at most 50).
async fn retag(
    tx: &mut crate::store::Tx,
    ticket: &mut crate::store::Ticket,
    raw: &[String],
    by: &str,
) -> Result<Option<Option<String>>> {
    let ticket_id = ticket.id;
    let mut tags: Vec<String> = raw.iter().filter_map(|t| normalise_tag(t)).collect();
    tags.sort();
    tags.dedup();
    if tags.len() > 50 {
        return Err(ActionError::Invalid(
            "a ticket carries at most 50 tags".into(),
        ));
    }
    if tags == ticket.tags {
        return Ok(None);
    }
    tx.set_tags(ticket_id, &tags).await?;
    let shown = if tags.is_empty() {
        "none".to_string()
    } else {
        tags.join(", ")
    };
    ticket.tags = tags;
    Ok(Some(Some(format!("Tags set to {shown} by {by}"))))
}

/// What a change needs and how a refusal names it.
fn capability_of(change: &Change) -> (Capability, &'static str) {
    match change {
        Change::Status(Status::Closed) => (Capability::SetStatus(Status::Closed), "close tickets"),
        Change::Status(s) => (
            Capability::SetStatus(*s),
            "set this status (requesters may only close)",
        ),
        Change::Priority(_) => (Capability::SetPriority, "change the priority"),
        Change::Category(_) => (Capability::SetCategory, "change the category"),
        Change::Assignee(_) => (Capability::SetAssignee, "change the assignee"),
        Change::Tags(_) => (Capability::SetTags, "change tags"),
        Change::DueDate(_) => (Capability::SetDueDate, "set the due date"),
        Change::Related(_) => (Capability::SetRelated, "set the related reference"),
    }
}
