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
        let capability = match &change {
            Change::Status(s) => Capability::SetStatus(*s),
            Change::Priority(_) => Capability::SetPriority,
            Change::Category(_) => Capability::SetCategory,
            Change::Assignee(_) => Capability::SetAssignee,
            Change::Tags(_) => Capability::SetTags,
            Change::DueDate(_) => Capability::SetDueDate,
            Change::Related(_) => Capability::SetRelated,
        };
        let what = match &change {
            Change::Status(Status::Closed) => "close tickets",
            Change::Status(_) => "set this status (requesters may only close)",
            Change::Priority(_) => "change the priority",
            Change::Category(_) => "change the category",
            Change::Assignee(_) => "change the assignee",
            Change::Tags(_) => "change tags",
            Change::DueDate(_) => "set the due date",
            Change::Related(_) => "set the related reference",
        };
        require(actor, capability, what)?;
        let mut tx = self.store.begin().await?;
        let mut ticket = load_visible(&mut tx, actor, ticket_id).await?;
        // CC participants read and reply; only the requester closes (SPEC §7).
        if let Actor::Requester { requester_id } = actor
            && ticket.requester.id != requester_id
        {
            return Err(ActionError::Forbidden(
                "only the person who opened the request can close it".into(),
            ));
        }
        let before = ticket.clone();
        let by = actor_label(&mut tx, actor).await?;
        let message = match change {
            Change::Status(wanted) => {
                let state = ticket.rule_state();
                match apply(
                    &state,
                    Event::SetStatus(wanted),
                    actor.kind(),
                    &self.settings.get().rules(),
                    now,
                )? {
                    Transition::To { status, reason } => {
                        change_status(&mut tx, &mut ticket, status, reason, &by, now).await?;
                        if actor.is_staff() && matches!(status, Status::Resolved | Status::Closed) {
                            let to = ticket.requester.email.to_string();
                            self.notify(&mut tx, ticket_id, Notice::StatusChanged, &to, None, now)
                                .await?;
                        }
                        None
                    }
                    _ => return Ok(false),
                }
            }
            Change::Priority(p) if p == ticket.priority => return Ok(false),
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
                    return Ok(false);
                }
                let text = format!("Category changed from {} to {c} by {by}", ticket.category);
                ticket.category = c.to_string();
                Some(text)
            }
            Change::Assignee(email) => {
                let user = match &email {
                    Some(e) => Some(tx.user_by_email(e).await?.filter(|u| u.active).ok_or_else(
                        || ActionError::Invalid(format!("no active agent has the address {e}")),
                    )?),
                    None => None,
                };
                if user.as_ref().map(|u| u.id) == ticket.assignee.as_ref().map(|u| u.id) {
                    return Ok(false);
                }
                let text = match &user {
                    Some(u) => format!("Assigned to {} by {by}", u.email),
                    None => format!("Unassigned by {by}"),
                };
                if let Some(u) = &user
                    && !matches!(actor, Actor::Staff { user_id, .. } if user_id == u.id)
                {
                    self.notify(
                        &mut tx,
                        ticket_id,
                        Notice::Assigned,
                        u.email.as_str(),
                        None,
                        now,
                    )
                    .await?;
                }
                ticket.assignee = user;
                Some(text)
            }
            Change::Tags(raw) => {
                let mut tags: Vec<String> = raw.iter().filter_map(|t| normalise_tag(t)).collect();
                tags.sort();
                tags.dedup();
                if tags.len() > 50 {
                    return Err(ActionError::Invalid(
                        "a ticket carries at most 50 tags".into(),
                    ));
                }
                if tags == ticket.tags {
                    return Ok(false);
                }
                tx.set_tags(ticket_id, &tags).await?;
                let shown = if tags.is_empty() {
                    "none".to_string()
                } else {
                    tags.join(", ")
                };
                ticket.tags = tags;
                Some(format!("Tags set to {shown} by {by}"))
            }
            Change::DueDate(due) if due == ticket.due_at => return Ok(false),
            Change::DueDate(due) => {
                ticket.due_at = due;
                Some(format!(
                    "Due date set to {} by {by}",
                    due.map(crate::domain::date_words)
                        .unwrap_or_else(|| "none".into())
                ))
            }
            Change::Related(related) if related == ticket.related => return Ok(false),
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
        if let Some(text) = message {
            tx.insert_message(NewMessage::system(ticket_id, text, now))
                .await?;
        }
        self.save(&mut tx, &before, &mut ticket, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}
