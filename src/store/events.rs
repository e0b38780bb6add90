//! What changed, told as it commits: a ticket opened or changed, a message
//! added, an agent's presence on a ticket. The consoles' live updates
//! (`web::live`) listen here.
//!
//! A transaction collects its changes and tells them only once it has
//! committed. On PostgreSQL it sends them with `pg_notify` inside the
//! transaction, which PostgreSQL delivers at the commit (and never for a
//! rollback) to every daemon listening on the database, this one included:
//! [`Store::listen_on`] turns them into events here. On SQLite (one daemon)
//! the commit tells this daemon's listeners directly. A change recorded in
//! a savepoint that was then rolled back may still be told: an event is a
//! hint to look again, never the data itself.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::{Backend, Result, Store, Tx};

/// PostgreSQL's channel for changes and presence.
pub const CHANNEL: &str = "postdesk_live";

/// The most changes one transaction tells one by one; beyond, it tells
/// `Refresh` (an ingest batch of 200 mails stays under it).
const MOST_PER_TX: usize = 1_000;

/// PostgreSQL's limit on a notification's payload is 8,000 bytes.
const PAYLOAD_MAX: usize = 7_000;

/// One thing that happened, as listeners hear it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A ticket was opened (`created`) or its fields changed.
    Ticket { ticket: i64, created: bool },
    /// A message was added to a ticket; `by` is its author's staff account.
    Message {
        ticket: i64,
        message: i64,
        kind: String,
        by: Option<i64>,
    },
    /// An agent is viewing a ticket, typing a reply on it, or has left it.
    Presence {
        ticket: i64,
        user: i64,
        name: String,
        state: String,
    },
    /// Events may have been missed (a listener reconnected, a transaction
    /// changed too much to tell): look again at everything.
    Refresh,
}

impl LiveEvent {
    /// The ticket it is about, if one.
    pub fn ticket(&self) -> Option<i64> {
        match self {
            LiveEvent::Ticket { ticket, .. }
            | LiveEvent::Message { ticket, .. }
            | LiveEvent::Presence { ticket, .. } => Some(*ticket),
            LiveEvent::Refresh => None,
        }
    }
}

/// Where a daemon's events are told.
pub type Bus = broadcast::Sender<LiveEvent>;

/// A new bus (its buffer: 4,096 events a slow listener may lag behind).
pub fn bus() -> Bus {
    broadcast::channel(4_096).0
}

/// The changes `events` as payloads of at most [`PAYLOAD_MAX`] bytes.
fn payloads(events: &[LiveEvent]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::from("[");
    for e in events {
        let Ok(one) = serde_json::to_string(e) else {
            continue;
        };
        if current.len() + one.len() + 2 > PAYLOAD_MAX && current.len() > 1 {
            current.push(']');
            out.push(std::mem::replace(&mut current, String::from("[")));
        }
        if current.len() > 1 {
            current.push(',');
        }
        current.push_str(&one);
    }
    if current.len() > 1 {
        current.push(']');
        out.push(current);
    }
    out
}

/// The events of one payload; nothing for one that does not parse.
pub fn parse_payload(payload: &str) -> Vec<LiveEvent> {
    serde_json::from_str(payload).unwrap_or_default()
}

impl Tx {
    /// Records a change, told when the transaction commits.
    pub(crate) fn changed(&mut self, event: LiveEvent) {
        if self.live.len() < MOST_PER_TX && !self.live.contains(&event) {
            self.live.push(event);
        } else if self.live.len() >= MOST_PER_TX && self.live.last() != Some(&LiveEvent::Refresh) {
            self.live.push(LiveEvent::Refresh);
        }
    }

    /// PostgreSQL: sends the changes, delivered at the commit.
    pub(crate) async fn notify_changes(&mut self) -> Result<()> {
        if self.backend != Backend::Postgres || self.live.is_empty() {
            return Ok(());
        }
        for payload in payloads(&self.live) {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload)
                .execute(&mut *self.conn)
                .await?;
        }
        Ok(())
    }

    /// What this daemon's listeners are told once the commit succeeded
    /// (SQLite; PostgreSQL's changes come back through [`Store::listen_on`]).
    pub(crate) fn told_after_commit(&mut self) -> Vec<LiveEvent> {
        match self.backend {
            Backend::Sqlite => std::mem::take(&mut self.live),
            Backend::Postgres => Vec::new(),
        }
    }
}

impl Store {
    /// This daemon's events (committed changes, presence).
    pub fn events(&self) -> broadcast::Receiver<LiveEvent> {
        self.bus.subscribe()
    }

    /// Tells every daemon's listeners something no transaction carries
    /// (an agent's presence).
    pub async fn announce(&self, event: LiveEvent) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                let _ = self.bus.send(event);
            }
            Backend::Postgres => {
                for payload in payloads(std::slice::from_ref(&event)) {
                    sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(CHANNEL)
                        .bind(payload)
                        .execute(&self.pool)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// PostgreSQL: the connection [`Store::listen_on`] hears every daemon's
    /// changes on, already listening (a daemon makes it before it serves,
    /// so that a stream opened on it misses no change committed after);
    /// `None` on SQLite.
    pub async fn live_listener(&self) -> Result<Option<sqlx::postgres::PgListener>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(listener))
    }

    /// PostgreSQL: tells here every daemon's changes `listener` hears,
    /// until `stop`; after a lost connection (events may have been missed)
    /// it tells `Refresh`. Nothing to do on SQLite (`None`).
    pub async fn listen_on(
        &self,
        listener: Option<sqlx::postgres::PgListener>,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<()> {
        let Some(mut listener) = listener else {
            return Ok(());
        };
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                n = listener.try_recv() => n,
            };
            match next {
                Ok(Some(n)) => {
                    for e in parse_payload(n.payload()) {
                        let _ = self.bus.send(e);
                    }
                }
                // The connection was lost and is made again by the next call.
                Ok(None) => {
                    let _ = self.bus.send(LiveEvent::Refresh);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "live events: listening failed; trying again");
                    let _ = self.bus.send(LiveEvent::Refresh);
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_stay_under_the_limit_and_parse_back() {
        let events: Vec<LiveEvent> = (0..500)
            .map(|i| LiveEvent::Message {
                ticket: i,
                message: i * 10,
                kind: "reply".into(),
                by: Some(3),
            })
            .collect();
        let parts = payloads(&events);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.len() <= PAYLOAD_MAX));
        let back: Vec<LiveEvent> = parts.iter().flat_map(|p| parse_payload(p)).collect();
        assert_eq!(back, events);
        assert!(payloads(&[]).is_empty());
        assert!(parse_payload("not json").is_empty());
        assert_eq!(
            parse_payload(r#"[{"type":"refresh"},{"type":"ticket","ticket":4,"created":true}]"#),
            vec![
                LiveEvent::Refresh,
                LiveEvent::Ticket {
                    ticket: 4,
                    created: true
                }
            ]
        );
    }
}
