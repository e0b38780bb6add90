//! The scheduler inside `serve`: closes tickets resolved longer than
//! `auto_close_after` and refreshes SLA states when they are due to change.
//! It sleeps until the next due time (capped by `scheduler.max_sleep`) or
//! shutdown. Several daemons may run it at once: every ticket is changed by
//! an action that locks and re-checks the row, so the second finds nothing.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::actions::{ActionError, Actions};
use crate::domain::Millis;
use crate::store::now_millis;

/// How many tickets one pass handles before it looks again.
const BATCH: i64 = 200;

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Tickets closed by this pass.
    pub closed: usize,
    /// Tickets whose SLA state was recomputed.
    pub sla_refreshed: usize,
    /// When the next pass is due (`None`: nothing is scheduled).
    pub next_due: Option<Millis>,
}

/// The scheduler: a thin loop around [`Scheduler::run_once`].
#[derive(Debug, Clone)]
pub struct Scheduler {
    actions: Actions,
}

impl Scheduler {
    /// A scheduler working through `actions`.
    pub fn new(actions: Actions) -> Self {
        Scheduler { actions }
    }

    /// One pass at time `now`.
    pub async fn run_once(&self, now: Millis) -> Result<Outcome, ActionError> {
        let store = self.actions.store();
        let after = self.actions.settings().tickets.auto_close_after;
        let mut outcome = Outcome::default();
        let mut more = false;
        if !after.is_zero() {
            let due = store
                .auto_close_due(now.saturating_sub(after.as_millis()), BATCH)
                .await?;
            more |= due.len() as i64 == BATCH;
            for id in due {
                outcome.closed += usize::from(self.actions.auto_close(id, now).await?);
            }
        }
        let due = store.sla_due(now, BATCH).await?;
        more |= due.len() as i64 == BATCH;
        for id in due {
            self.actions.refresh_sla(id, now).await?;
            outcome.sla_refreshed += 1;
        }
        let next_close = match after.is_zero() {
            true => None,
            false => store
                .earliest_resolved_at()
                .await?
                .map(|at| at.saturating_add(after.as_millis())),
        };
        let next_sla = store.earliest_sla_due_at().await?;
        outcome.next_due = if more {
            Some(now)
        } else {
            [next_close, next_sla].into_iter().flatten().min()
        };
        Ok(outcome)
    }

    /// Recomputes every open ticket's SLA state when the SLA settings differ
    /// from those the stored states were computed with.
    pub async fn refresh_all_if_settings_changed(&self, now: Millis) -> Result<usize, ActionError> {
        let store = self.actions.store();
        let fingerprint = format!("{:?}", self.actions.settings().sla);
        if store.setting("sla_fingerprint").await?.as_deref() == Some(fingerprint.as_str()) {
            return Ok(0);
        }
        let ids = store.open_ticket_ids().await?;
        for id in &ids {
            self.actions.refresh_sla(*id, now).await?;
        }
        store.put_setting("sla_fingerprint", &fingerprint).await?;
        Ok(ids.len())
    }

    /// Runs passes until `shutdown`; a failing pass is logged and retried later.
    pub async fn run(self, shutdown: CancellationToken) {
        let max_sleep = self
            .actions
            .settings()
            .scheduler
            .max_sleep
            .0
            .max(Duration::from_secs(1));
        if let Err(e) = self.refresh_all_if_settings_changed(now_millis()).await {
            tracing::warn!(error = %e, "could not refresh SLA states after a settings change");
        }
        loop {
            let now = now_millis();
            let next_due = match self.run_once(now).await {
                Ok(o) => {
                    if o.closed + o.sla_refreshed > 0 {
                        tracing::info!(
                            closed = o.closed,
                            sla_refreshed = o.sla_refreshed,
                            "scheduler pass"
                        );
                    }
                    o.next_due
                }
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler pass failed; retrying later");
                    Some(now.saturating_add(30_000))
                }
            };
            let wait = next_due
                .map(|at| Duration::from_millis(u64::try_from(at.saturating_sub(now)).unwrap_or(0)))
                .unwrap_or(max_sleep)
                .min(max_sleep);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::debug!("scheduler stopped");
    }
}
