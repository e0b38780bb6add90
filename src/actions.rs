//! Every change of a ticket, from mail, portal, console, API or scheduler.
//! Each action is one transaction: load (and lock) → domain rules → write the
//! change and its system message → queue notifications → commit.

mod automated;
mod canned;
mod merge;
mod open;
mod reply;
mod scheduled;
mod update;

use std::sync::Arc;

use crate::config::{Live, Settings};
use crate::domain::people::{Capability, may};
use crate::domain::rules::{Reason, Refusal};
use crate::domain::sla::{SlaClock, evaluate};
use crate::domain::{Actor, Millis, ParseError, Status};
use crate::store::outbox::{Notice, Notification};
use crate::store::{NewMessage, Store, StoreError, Ticket, Tx};

pub use automated::AutomatedMail;
pub use canned::{Applied, Unseen};
pub use open::{OpenTicket, Opened};
pub use reply::{ReplyInput, ReplyOutcome, UnverifiedAgentMail};
pub use update::Change;

/// Why an action did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("not permitted: {0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Refusal> for ActionError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotPermitted { .. } => ActionError::Forbidden(r.to_string()),
            Refusal::ClosedTicket => ActionError::Invalid(r.to_string()),
        }
    }
}

impl From<ParseError> for ActionError {
    fn from(e: ParseError) -> Self {
        ActionError::Invalid(e.to_string())
    }
}

/// Result of an action.
pub type Result<T, E = ActionError> = std::result::Result<T, E>;

/// The actions, bound to a store and the settings.
#[derive(Debug, Clone)]
pub struct Actions {
    store: Store,
    settings: Live,
}

impl Actions {
    /// Stores `files` on message `message_id` of ticket `ticket_id` inside
    /// `tx`: each once per content; a file over `tickets.max_attachment_bytes`
    /// is not stored and a system message says so.
    pub async fn attach_in(
        &self,
        tx: &mut Tx,
        ticket_id: i64,
        message_id: i64,
        files: &[crate::mail::Attachment],
        now: Millis,
    ) -> Result<()> {
        let limit = self.settings.get().tickets.max_attachment_bytes;
        for a in files {
            if a.data.len() as u64 > limit {
                let text = format!(
                    "Attachment \"{}\" ({} bytes) was refused: it is larger than the limit of {limit} bytes",
                    a.filename,
                    a.data.len()
                );
                tx.insert_message(NewMessage::system(ticket_id, text, now))
                    .await?;
            } else {
                tx.insert_attachment(message_id, a).await?;
            }
        }
        Ok(())
    }
}

impl Actions {
    /// Binds the actions to a store and fixed settings.
    pub fn new(store: Store, settings: Arc<Settings>) -> Self {
        Actions::with_live(store, Live::new((*settings).clone()))
    }

    /// Binds the actions to a store and the daemon's settings in force.
    pub fn with_live(store: Store, settings: Live) -> Self {
        Actions { store, settings }
    }

    /// The same actions writing through another handle to the same
    /// database (a pool of a thread's own, see [`Store::dedicated`]).
    pub fn with_store(&self, store: Store) -> Self {
        Actions {
            store,
            settings: self.settings.clone(),
        }
    }

    /// The store the actions write to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The settings the actions apply, as they are now.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.get()
    }

    /// The shared handle on the settings in force.
    pub fn live(&self) -> &Live {
        &self.settings
    }
}

/// Refuses unless `actor` may do `what`.
fn require(actor: Actor, what: Capability, description: &str) -> Result<()> {
    if may(actor.kind(), what) {
        Ok(())
    } else {
        Err(ActionError::Forbidden(format!(
            "a {} may not {description}",
            actor_kind_name(actor)
        )))
    }
}

fn actor_kind_name(actor: Actor) -> &'static str {
    match actor {
        Actor::Requester { .. } => "requester",
        Actor::Staff {
            role: crate::domain::Role::Agent,
            ..
        } => "agent",
        Actor::Staff { .. } => "admin",
        Actor::System => "system task",
    }
}

/// Loads and locks a ticket the actor can see: staff and the system see all,
/// a requester only tickets they are the requester or a CC participant of.
/// A ticket a requester may not see is reported as not found, so its
/// existence leaks nothing.
async fn load_visible(tx: &mut Tx, actor: Actor, ticket_id: i64) -> Result<Ticket> {
    let missing = || ActionError::NotFound(format!("ticket {ticket_id}"));
    let ticket = tx.ticket_for_update(ticket_id).await?.ok_or_else(missing)?;
    if let Actor::Requester { requester_id } = actor
        && !tx.is_participant(ticket_id, requester_id).await?
    {
        return Err(missing());
    }
    Ok(ticket)
}

/// How a system message names the actor: "jane@example.org (agent)".
async fn actor_label(tx: &mut Tx, actor: Actor) -> Result<String> {
    Ok(match actor {
        Actor::Requester { requester_id } => {
            format!("{} (requester)", tx.requester(requester_id).await?.email)
        }
        Actor::Staff { user_id, role } => match tx.user(user_id).await? {
            Some(u) => format!("{} ({})", u.email, role.as_str()),
            None => format!("user {user_id}"),
        },
        Actor::System => "postdesk".to_string(),
    })
}

/// Sets a new status with its bookkeeping (SLA pause, resolved/closed times).
fn set_status(ticket: &mut Ticket, to: Status, now: Millis) {
    ticket.pause = ticket.pause.on_status_change(to, now);
    match to {
        Status::Resolved => {
            ticket.resolved_at = Some(now);
            ticket.closed_at = None;
        }
        Status::Closed => {
            ticket.closed_at = Some(now);
            ticket.resolved_at.get_or_insert(now);
        }
        _ => {
            ticket.resolved_at = None;
            ticket.closed_at = None;
        }
    }
    ticket.status = to;
}

/// Changes the status and writes the system message saying so.
async fn change_status(
    tx: &mut Tx,
    ticket: &mut Ticket,
    to: Status,
    reason: Reason,
    by: &str,
    now: Millis,
) -> Result<()> {
    let from = ticket.status;
    set_status(ticket, to, now);
    // Statuses in words, as the pages name them ("In progress", not in_progress).
    let (from_label, to_label) = (from.label(), to.label());
    let text = match reason {
        Reason::ReopenedByReply => format!("Reopened by reply from {by}"),
        Reason::SetByStaff => format!("Status changed from {from_label} to {to_label} by {by}"),
        _ => format!(
            "Status changed from {from_label} to {to_label} by {by} ({})",
            reason.describe()
        ),
    };
    tx.insert_message(NewMessage::system(ticket.id, text, now))
        .await?;
    Ok(())
}

impl Actions {
    /// Recomputes the SLA state, stamps the update and writes back what
    /// changed since the ticket was loaded as `before`.
    async fn save(
        &self,
        tx: &mut Tx,
        before: &Ticket,
        ticket: &mut Ticket,
        now: Millis,
    ) -> Result<()> {
        self.read_sla(ticket, now);
        ticket.updated_at = now;
        tx.save_ticket(before, ticket).await?;
        Ok(())
    }

    /// The SLA state of a ticket opened now, and when it next changes.
    fn sla_at_creation(
        &self,
        priority: crate::domain::Priority,
        now: Millis,
    ) -> (crate::domain::SlaState, Option<Millis>) {
        let clock = SlaClock {
            created_at: now,
            status: Status::Open,
            first_response_at: None,
            resolved_at: None,
            pause: Default::default(),
        };
        let report = evaluate(&clock, &self.settings.get().sla.targets(priority), now);
        (report.state, report.next_change_at)
    }

    /// Recomputes a ticket's SLA state and its next change time.
    fn read_sla(&self, ticket: &mut Ticket, now: Millis) {
        let clock = SlaClock {
            created_at: ticket.created_at,
            status: ticket.status,
            first_response_at: ticket.first_response_at,
            resolved_at: ticket.resolved_at,
            pause: ticket.pause,
        };
        let report = evaluate(
            &clock,
            &self.settings.get().sla.targets(ticket.priority),
            now,
        );
        ticket.sla_state = report.state;
        ticket.sla_due_at = report.next_change_at;
    }

    /// Queues a fresh portal sign-in link for an address, about its newest
    /// ticket; nothing for an address with no ticket (the caller answers
    /// the same either way). Returns whether a mail was queued.
    pub async fn send_portal_link(
        &self,
        email: &crate::domain::EmailAddress,
        now: Millis,
    ) -> Result<bool> {
        let Some(requester) = self.store.requester_id_by_email(email.as_str()).await? else {
            return Ok(false);
        };
        let Some(ticket) = self.store.latest_ticket_of(requester).await? else {
            return Ok(false);
        };
        let mut tx = self.store.begin().await?;
        self.notify(
            &mut tx,
            ticket,
            Notice::PortalLink,
            email.as_str(),
            None,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Queues a notice.
    async fn notify(
        &self,
        tx: &mut Tx,
        ticket_id: i64,
        notice: Notice,
        to: &str,
        about: Option<i64>,
        now: Millis,
    ) -> Result<()> {
        // Inside the gateway's mail span this names the stored mail too:
        // the outbox's send names the same ticket and the sent Message-ID.
        tracing::debug!(
            ticket = ticket_id,
            notice = notice.as_str(),
            "notification queued"
        );
        tx.enqueue(&Notification {
            ticket_id,
            notice,
            recipient: to.to_string(),
            message_id: about,
            now,
        })
        .await?;
        Ok(())
    }
}
