//! A macro applied to a ticket (a reply, if it has text, and its field
//! changes in one transaction), and the check that stops a reply written
//! over a message its author has not seen.

use super::{ActionError, Actions, Change, ReplyInput, ReplyOutcome, Result, load_visible};
use crate::domain::canned::MacroChanges;
use crate::domain::{Actor, Millis};
use crate::store::Tx;

/// What applying a macro did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The reply written, when there was text.
    pub reply: Option<ReplyOutcome>,
    /// How many fields changed.
    pub changed: usize,
}

/// Messages that arrived after the page (or API client) last saw the
/// ticket: (id, who wrote it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unseen(pub Vec<(i64, String)>);

impl Actions {
    /// The messages of `ticket_id` after `seen` that `actor` did not write,
    /// the ticket locked first so none can slip in before the caller's
    /// reply commits. Empty for a requester or the system.
    pub async fn unseen_in(
        &self,
        tx: &mut Tx,
        actor: Actor,
        ticket_id: i64,
        seen: i64,
    ) -> Result<Unseen> {
        let Actor::Staff { user_id, .. } = actor else {
            return Ok(Unseen(Vec::new()));
        };
        load_visible(tx, actor, ticket_id).await?;
        Ok(Unseen(tx.messages_unseen(ticket_id, seen, user_id).await?))
    }

    /// Applies a macro to a ticket inside `tx`: `reply` (its text already
    /// filled; the macro's status goes with it, as the status chosen with a
    /// reply) and the macro's other field changes, each with its system
    /// message. Without a reply the status is a field change too.
    pub async fn apply_macro_in(
        &self,
        tx: &mut Tx,
        actor: Actor,
        ticket_id: i64,
        reply: Option<ReplyInput>,
        changes: &MacroChanges,
        now: Millis,
    ) -> Result<Applied> {
        let Actor::Staff { user_id, .. } = actor else {
            return Err(ActionError::Forbidden("only staff apply macros".into()));
        };
        let replied = reply.is_some();
        let reply = match reply {
            Some(mut input) => {
                input.status = input.status.or(changes.status);
                Some(self.reply_in(tx, actor, ticket_id, input, now).await?)
            }
            None => None,
        };
        let ticket = tx
            .ticket(ticket_id)
            .await?
            .ok_or_else(|| ActionError::NotFound(format!("ticket {ticket_id}")))?;
        let mut list = Vec::new();
        if let (false, Some(s)) = (replied, changes.status) {
            list.push(Change::Status(s));
        }
        if let Some(p) = changes.priority {
            list.push(Change::Priority(p));
        }
        if let Some(c) = &changes.category {
            list.push(Change::Category(c.clone()));
        }
        if changes.assignee.is_some() {
            let me = tx
                .user(user_id)
                .await?
                .ok_or_else(|| ActionError::Forbidden("this account is gone".into()))?;
            if let Some(a) = changes.assignee_for(&me.email) {
                list.push(Change::Assignee(a));
            }
        }
        if let Some(tags) = changes.tags_after(&ticket.tags) {
            list.push(Change::Tags(tags));
        }
        let changed = if list.is_empty() {
            0
        } else {
            self.change_all_in(tx, actor, ticket_id, list, now).await?
        };
        Ok(Applied { reply, changed })
    }
}
