//! Which daemon polls which mailbox. Every daemon renews a `daemon:NAME`
//! lease and holds `mailbox:ID` leases for its fair share of the active
//! mailboxes, running one poller per lease it holds. A dead daemon's leases
//! expire and the others take its mailboxes over at their next round; a
//! daemon that joins gets its share as the others give up their excess.
//!
//! Leases make polling efficient, not correct: two pollers on one mailbox for
//! a moment (a stalled holder whose lease was taken over) store nothing twice,
//! because every stored mail is keyed by mailbox, UIDVALIDITY and UID.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::poller::Poller;
use crate::metrics::Metrics;
pub use crate::store::leases::{DAEMON_PREFIX, MAILBOX_PREFIX, lease_mailbox, mailbox_lease};
use crate::store::{Store, StoreError, now_millis};

/// One round's decision for this daemon's mailbox leases.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LeasePlan {
    /// Held and kept: renew, and make sure a poller runs.
    pub keep: Vec<i64>,
    /// Free: try to take.
    pub take: Vec<i64>,
    /// Held but to let go: paused or removed, or more than our share.
    pub give_up: Vec<i64>,
}

/// Decides a round: `active` are the mailboxes to poll, `mine` those this
/// daemon holds, `others` those another daemon holds, `daemons` how many
/// daemons are alive (this one included). Each daemon holds at most its
/// share, `ceil(active / daemons)`, so N daemons split M mailboxes evenly.
pub fn plan(active: &[i64], mine: &[i64], others: &[i64], daemons: usize) -> LeasePlan {
    let share = active.len().div_ceil(daemons.max(1));
    let mut keep: Vec<i64> = mine
        .iter()
        .copied()
        .filter(|id| active.contains(id))
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut give_up: Vec<i64> = mine
        .iter()
        .copied()
        .filter(|id| !active.contains(id))
        .collect();
    if keep.len() > share {
        give_up.extend(keep.split_off(share));
    }
    let room = share - keep.len();
    let take = active
        .iter()
        .copied()
        .filter(|id| !mine.contains(id) && !others.contains(id))
        .take(room)
        .collect();
    LeasePlan {
        keep,
        take,
        give_up,
    }
}

/// Runs the pollers this daemon holds leases for.
pub struct Supervisor {
    store: Store,
    name: String,
    ttl: Duration,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    tasks: TaskTracker,
    running: HashMap<i64, CancellationToken>,
    tokens: crate::oauth::Tokens,
}

impl Supervisor {
    /// A supervisor for the daemon `name`; pollers wake the processor
    /// through `wake` and run on `tasks`.
    pub fn new(
        store: Store,
        name: impl Into<String>,
        ttl: Duration,
        wake: Arc<Notify>,
        metrics: Arc<Metrics>,
        tasks: TaskTracker,
    ) -> Self {
        metrics.describe(
            "postdesk_mailbox_lease",
            "gauge",
            "1 when this daemon holds the mailbox's polling lease, else 0.",
        );
        metrics.describe(
            "postdesk_mail_fetched_total",
            "counter",
            "Mails fetched from IMAP, by mailbox.",
        );
        metrics.describe(
            "postdesk_mailbox_errors_total",
            "counter",
            "Failed connections or syncs, by mailbox.",
        );
        Supervisor {
            store: store.clone(),
            name: name.into(),
            ttl: ttl.max(Duration::from_secs(1)),
            wake,
            metrics,
            tasks,
            running: HashMap::new(),
            tokens: crate::oauth::Tokens::new(store.clone()),
        }
    }

    /// Shares the daemon's OAuth2 access tokens with every poller.
    pub fn with_tokens(mut self, tokens: crate::oauth::Tokens) -> Self {
        self.tokens = tokens;
        self
    }

    /// Runs rounds every third of the lease time until shutdown, then gives
    /// every lease up so that another daemon need not wait for them to expire.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.round(&shutdown).await {
                tracing::warn!(error = %e, "could not renew mailbox leases");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.ttl / 3) => {}
            }
        }
        for (id, token) in self.running.drain() {
            token.cancel();
            let _ = self
                .store
                .release_lease(&mailbox_lease(id), &self.name)
                .await;
        }
        let daemon = format!("{DAEMON_PREFIX}{}", self.name);
        let _ = self.store.release_lease(&daemon, &self.name).await;
    }

    /// One round: announce this daemon, decide, renew, give up, take.
    async fn round(&mut self, shutdown: &CancellationToken) -> Result<(), StoreError> {
        let now = now_millis();
        let ttl = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let daemon = format!("{DAEMON_PREFIX}{}", self.name);
        self.store
            .acquire_lease(&daemon, &self.name, now, ttl)
            .await?;
        let daemons = self.store.live_leases(DAEMON_PREFIX, now).await?.len();
        let mailboxes = self.store.mailboxes().await?;
        let active: Vec<i64> = mailboxes
            .iter()
            .filter(|m| !m.paused)
            .map(|m| m.id)
            .collect();
        let (mut mine, mut others) = (Vec::new(), Vec::new());
        for lease in self.store.live_leases(MAILBOX_PREFIX, now).await? {
            if let Some(id) = lease_mailbox(&lease.name) {
                if lease.holder == self.name {
                    mine.push(id);
                } else {
                    others.push(id);
                }
            }
        }
        // A poller whose lease another daemon took while we stalled stops.
        for id in &others {
            if let Some(token) = self.running.remove(id) {
                tracing::warn!(mailbox = id, "mailbox lease lost to another daemon");
                token.cancel();
            }
        }
        let plan = plan(&active, &mine, &others, daemons);
        for id in plan.give_up {
            if let Some(token) = self.running.remove(&id) {
                token.cancel();
            }
            self.store
                .release_lease(&mailbox_lease(id), &self.name)
                .await?;
        }
        let mut held = Vec::new();
        for id in plan.keep.into_iter().chain(plan.take) {
            if self
                .store
                .acquire_lease(&mailbox_lease(id), &self.name, now, ttl)
                .await?
            {
                held.push(id);
            } else if let Some(token) = self.running.remove(&id) {
                token.cancel();
            }
        }
        for m in &mailboxes {
            let holds = held.contains(&m.id);
            if holds {
                self.ensure_poller(m.id, &m.name, shutdown);
            }
            self.metrics.set(
                "postdesk_mailbox_lease",
                &[("mailbox", &m.name)],
                if holds { 1.0 } else { 0.0 },
            );
        }
        Ok(())
    }

    /// Starts mailbox `id`'s poller unless it runs (restarting one that ended).
    fn ensure_poller(&mut self, id: i64, name: &str, shutdown: &CancellationToken) {
        if self.running.get(&id).is_some_and(|t| !t.is_cancelled()) {
            return;
        }
        let token = shutdown.child_token();
        let poller = Poller::new(self.store.clone(), id, self.wake.clone())
            .with_metrics(self.metrics.clone(), name)
            .with_tokens(self.tokens.clone());
        let stop = token.clone();
        self.tasks.spawn(async move {
            poller.run(stop.clone()).await;
            // Ended on its own (paused, removed): the next round decides again.
            stop.cancel();
        });
        self.running.insert(id, token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_daemon_takes_every_active_mailbox() {
        let p = plan(&[1, 2, 3], &[], &[], 1);
        assert_eq!(p.take, vec![1, 2, 3]);
        assert!(p.keep.is_empty() && p.give_up.is_empty());
    }

    #[test]
    fn daemons_split_mailboxes_evenly() {
        // Three daemons, seven mailboxes: shares of at most three.
        let first = plan(&[1, 2, 3, 4, 5, 6, 7], &[], &[], 3);
        assert_eq!(first.take, vec![1, 2, 3]);
        let second = plan(&[1, 2, 3, 4, 5, 6, 7], &[], &[1, 2, 3], 3);
        assert_eq!(second.take, vec![4, 5, 6]);
        let third = plan(&[1, 2, 3, 4, 5, 6, 7], &[], &[1, 2, 3, 4, 5, 6], 3);
        assert_eq!(third.take, vec![7]);
    }

    #[test]
    fn a_joining_daemon_makes_the_others_give_up_their_excess() {
        // One daemon held all four; a second appears: the first keeps two.
        let p = plan(&[1, 2, 3, 4], &[1, 2, 3, 4], &[], 2);
        assert_eq!(p.keep, vec![1, 2]);
        assert_eq!(p.give_up, vec![3, 4]);
        assert!(p.take.is_empty());
        // The newcomer takes what was given up.
        let q = plan(&[1, 2, 3, 4], &[], &[1, 2], 2);
        assert_eq!(q.take, vec![3, 4]);
    }

    #[test]
    fn a_dead_daemons_mailboxes_are_taken_over() {
        // Two daemons left of three; the dead one's leases expired.
        let p = plan(&[1, 2, 3, 4, 5, 6], &[1, 2], &[3, 4], 2);
        assert_eq!(p.keep, vec![1, 2]);
        assert_eq!(p.take, vec![5]);
    }

    #[test]
    fn paused_or_removed_mailboxes_are_given_up() {
        let p = plan(&[1], &[1, 9], &[], 1);
        assert_eq!(p.keep, vec![1]);
        assert_eq!(p.give_up, vec![9]);
        assert!(p.take.is_empty());
        let none = plan(&[], &[], &[], 0);
        assert_eq!(none, LeasePlan::default());
    }

    #[test]
    fn lease_names_round_trip() {
        assert_eq!(lease_mailbox(&mailbox_lease(42)), Some(42));
        assert_eq!(lease_mailbox("daemon:x"), None);
        assert_eq!(lease_mailbox("mailbox:x"), None);
    }
}
