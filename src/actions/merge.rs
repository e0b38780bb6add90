//! Merging one ticket into another, and deleting a ticket for good.

use super::{ActionError, Actions, Result, actor_label, load_visible, require, set_status};
use crate::domain::people::Capability;
use crate::domain::{Actor, Millis, Status};
use crate::store::{NewMessage, Ticket, Tx};

impl Actions {
    /// Merges ticket `from` into `into`: the thread, Message-IDs, CCs and tags
    /// move over (so later mail threads onto `into`), `from` is closed and
    /// points at `into`, and both get a system message.
    pub async fn merge(&self, actor: Actor, from: i64, into: i64, now: Millis) -> Result<()> {
        require(actor, Capability::Merge, "merge tickets")?;
        if from == into {
            return Err(ActionError::Invalid(
                "a ticket cannot be merged into itself".into(),
            ));
        }
        let mut tx = self.store.begin().await?;
        let by = actor_label(&mut tx, actor).await?;
        let text = |source: &Ticket, target: &Ticket| {
            (
                format!("Merged into {} by {by}", target.reference),
                format!(
                    "{} ({}) merged into this ticket by {by}",
                    source.reference, source.subject
                ),
            )
        };
        self.merge_in(&mut tx, actor, from, into, text, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Joins a conversation that a race split in two (docs/operations.md
    /// "Several daemons"): ticket `a`, opened by a reply that was processed
    /// before the mail it answered, and ticket `b`, where that mail went,
    /// become one inside the gateway's transaction — the newer moves into
    /// the older, with one system message on each and no notification.
    /// Either may have been merged meanwhile (by an agent, or by another
    /// such join): their current tickets are joined, if they still differ.
    /// Returns the ticket the conversation is now on.
    pub async fn join_split_in(&self, tx: &mut Tx, a: i64, b: i64, now: Millis) -> Result<i64> {
        let text = |source: &Ticket, target: &Ticket| {
            (
                format!(
                    "Joined into {}: this ticket was opened by a reply that arrived before the mail it answered",
                    target.reference
                ),
                format!(
                    "{} ({}) was joined into this ticket: it was opened by a reply to this conversation that arrived before the mail it answered",
                    source.reference, source.subject
                ),
            )
        };
        let (mut a, mut b) = (a, b);
        // A merge committed by another transaction while this one waited
        // for the tickets' locks shows once they are held: look again.
        for _ in 0..3 {
            (a, b) = (current_ticket(tx, a).await?, current_ticket(tx, b).await?);
            if a == b {
                return Ok(a);
            }
            let (older, newer) = (a.min(b), a.max(b));
            match self
                .merge_in(tx, Actor::System, newer, older, &text, now)
                .await
            {
                Err(ActionError::Invalid(_)) => continue,
                Err(e) => return Err(e),
                Ok(()) => {
                    // Its receipt, unless already sent, is not: the
                    // requester hears of one ticket.
                    let reason = "its ticket was joined into the conversation's older ticket";
                    let withdrawn = tx.withdraw_notifications(newer, reason, now).await?;
                    tracing::info!(
                        joined = newer,
                        into = older,
                        withdrawn,
                        "a conversation split by a race was joined"
                    );
                    return Ok(older);
                }
            }
        }
        Ok(b)
    }

    /// Moves ticket `from` into `into` within `tx`, with the system
    /// messages `text` gives for the source and the target.
    async fn merge_in(
        &self,
        tx: &mut Tx,
        actor: Actor,
        from: i64,
        into: i64,
        text: impl Fn(&Ticket, &Ticket) -> (String, String),
        now: Millis,
    ) -> Result<()> {
        // Lock in id order so two opposite merges cannot deadlock.
        let (first, second) = if from < into {
            (from, into)
        } else {
            (into, from)
        };
        let a = load_visible(tx, actor, first).await?;
        let b = load_visible(tx, actor, second).await?;
        let (mut source, mut target) = if a.id == from { (a, b) } else { (b, a) };
        let (source_before, target_before) = (source.clone(), target.clone());
        for t in [&source, &target] {
            if let Some(other) = t.merged_into_id {
                return Err(ActionError::Invalid(format!(
                    "{} was already merged into ticket {other}",
                    t.reference
                )));
            }
        }
        let (on_source, on_target) = text(&source, &target);
        tx.move_thread(source.id, target.id, source.requester.id)
            .await?;
        source.merged_into_id = Some(target.id);
        if source.status != Status::Closed {
            set_status(&mut source, Status::Closed, now);
        }
        tx.insert_message(NewMessage::system(source.id, on_source, now))
            .await?;
        tx.insert_message(NewMessage::system(target.id, on_target, now))
            .await?;
        self.save(tx, &source_before, &mut source, now).await?;
        self.save(tx, &target_before, &mut target, now).await?;
        Ok(())
    }

    /// Deletes a ticket and its thread (admins only).
    pub async fn delete(&self, actor: Actor, ticket_id: i64) -> Result<()> {
        require(actor, Capability::Delete, "delete tickets")?;
        let mut tx = self.store.begin().await?;
        let ticket = load_visible(&mut tx, actor, ticket_id).await?;
        tx.delete_ticket(ticket.id).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The ticket `id` was merged into, following merges (at most a few: a
/// chain longer than that is cut where it stops).
async fn current_ticket(tx: &mut Tx, id: i64) -> Result<i64> {
    let mut id = id;
    for _ in 0..8 {
        match tx.ticket(id).await?.and_then(|t| t.merged_into_id) {
            Some(next) if next != id => id = next,
            _ => break,
        }
    }
    Ok(id)
}
