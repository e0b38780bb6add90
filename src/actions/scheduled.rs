//! The scheduler's actions: auto-close and SLA refresh, each safe to run in
//! several daemons at once (the row is locked and re-checked inside the
//! transaction, so a second daemon finds nothing left to do).

use super::{Actions, Result, change_status};
use crate::domain::rules::{Event, Transition, apply};
use crate::domain::{Actor, Millis};

impl Actions {
    /// Closes the ticket if it has been resolved for `auto_close_after`.
    /// Returns whether it was closed by this call.
    pub async fn auto_close(&self, ticket_id: i64, now: Millis) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        let Some(mut ticket) = tx.ticket_for_update(ticket_id).await? else {
            return Ok(false);
        };
        let before = ticket.clone();
        let state = ticket.rule_state();
        let Transition::To { status, reason } = apply(
            &state,
            Event::AutoCloseDue,
            Actor::System.kind(),
            &self.settings.get().rules(),
            now,
        )?
        else {
            return Ok(false);
        };
        change_status(&mut tx, &mut ticket, status, reason, "postdesk", now).await?;
        self.save(&mut tx, &before, &mut ticket, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Recomputes a ticket's SLA state and next change time.
    pub async fn refresh_sla(&self, ticket_id: i64, now: Millis) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let Some(mut ticket) = tx.ticket_for_update(ticket_id).await? else {
            return Ok(());
        };
        // An SLA refresh is not an update anyone made: `updated_at` stays.
        let before = ticket.clone();
        self.read_sla(&mut ticket, now);
        tx.save_ticket(&before, &ticket).await?;
        tx.commit().await?;
        Ok(())
    }
}
