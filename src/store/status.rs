//! The operational view shared by `postdesk status` and `/readyz`: which
//! daemons are alive, who holds each mailbox, and how deep the queues are.

use serde::Serialize;

use super::leases::{DAEMON_PREFIX, MAILBOX_PREFIX, lease_mailbox};
use super::{Result, Store};
use crate::domain::rfc3339;

/// A live daemon and the mailboxes it polls.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonStatus {
    pub name: String,
    pub mailboxes: Vec<String>,
}

/// A mailbox's state as an operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct MailboxStatus {
    pub name: String,
    /// Healthy: paused, or no error since the last success.
    pub ok: bool,
    pub paused: bool,
    /// The daemon polling it now, if any.
    pub holder: Option<String>,
    pub last_ok_at: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

/// Queue depths and the age of their oldest entries.
#[derive(Debug, Clone, Serialize)]
pub struct Queues {
    /// Stored mails not yet processed.
    pub unprocessed: i64,
    pub oldest_unprocessed_at: Option<String>,
    pub quarantined: i64,
    /// Notifications waiting to be sent (retries included).
    pub unsent: i64,
    pub oldest_unsent_at: Option<String>,
    pub failed: i64,
}

/// The whole operational view.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub daemons: Vec<DaemonStatus>,
    pub mailboxes: Vec<MailboxStatus>,
    pub queues: Queues,
}

impl Store {
    /// Reads the operational view at `now`.
    pub async fn status(&self, now: i64) -> Result<Status> {
        let holders: Vec<(i64, String)> = self
            .live_leases(MAILBOX_PREFIX, now)
            .await?
            .into_iter()
            .filter_map(|l| Some((lease_mailbox(&l.name)?, l.holder)))
            .collect();
        let rows = self.mailboxes().await?;
        let mailboxes: Vec<MailboxStatus> = rows
            .iter()
            .map(|m| MailboxStatus {
                name: m.name.clone(),
                ok: m.paused || m.last_error.is_none(),
                paused: m.paused,
                holder: holders
                    .iter()
                    .find(|(id, _)| *id == m.id)
                    .map(|(_, h)| h.clone()),
                last_ok_at: m.last_ok_at.map(rfc3339),
                last_error: m.last_error.clone(),
                last_error_at: m.last_error_at.map(rfc3339),
            })
            .collect();
        let daemons = self
            .live_leases(DAEMON_PREFIX, now)
            .await?
            .into_iter()
            .map(|l| DaemonStatus {
                mailboxes: mailboxes
                    .iter()
                    .filter(|m| m.holder.as_deref() == Some(l.holder.as_str()))
                    .map(|m| m.name.clone())
                    .collect(),
                name: l.holder,
            })
            .collect();
        let (unprocessed, oldest_in): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MIN(received_at) FROM inbound WHERE state = 'new'")
                .fetch_one(&self.pool)
                .await?;
        let (quarantined,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM inbound WHERE state = 'quarantined'")
                .fetch_one(&self.pool)
                .await?;
        let (unsent, oldest_out): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM outbox WHERE state = 'queued'")
                .fetch_one(&self.pool)
                .await?;
        let (failed,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE state = 'failed'")
                .fetch_one(&self.pool)
                .await?;
        Ok(Status {
            daemons,
            mailboxes,
            queues: Queues {
                unprocessed,
                oldest_unprocessed_at: oldest_in.map(rfc3339),
                quarantined,
                unsent,
                oldest_unsent_at: oldest_out.map(rfc3339),
                failed,
            },
        })
    }
}
