//! Merging one ticket into another, and deleting a ticket for good.

use super::{ActionError, Actions, Result, actor_label, load_visible, require, set_status};
use crate::domain::people::Capability;
use crate::domain::{Actor, Millis, Status};
use crate::store::NewMessage;

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
        // Lock in id order so two opposite merges cannot deadlock.
        let (first, second) = if from < into {
            (from, into)
        } else {
            (into, from)
        };
        let a = load_visible(&mut tx, actor, first).await?;
        let b = load_visible(&mut tx, actor, second).await?;
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
        let by = actor_label(&mut tx, actor).await?;
        tx.move_thread(source.id, target.id, source.requester.id)
            .await?;
        source.merged_into_id = Some(target.id);
        if source.status != Status::Closed {
            set_status(&mut source, Status::Closed, now);
        }
        let text = format!("Merged into {} by {by}", target.reference);
        tx.insert_message(NewMessage::system(source.id, text, now))
            .await?;
        let text = format!(
            "{} ({}) merged into this ticket by {by}",
            source.reference, source.subject
        );
        tx.insert_message(NewMessage::system(target.id, text, now))
            .await?;
        self.save(&mut tx, &source_before, &mut source, now).await?;
        self.save(&mut tx, &target_before, &mut target, now).await?;
        tx.commit().await?;
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
