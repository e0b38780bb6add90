//! The outbox worker: a thin loop around [`Worker::run_once`], which claims
//! due notifications, decides each (send, hold for the loop guard, suppress),
//! renders and composes the ones to send, sends them concurrently over the
//! SMTP pools and records every outcome in one transaction.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::render::Templates;
use super::smtp::{SendError, SmtpPool};
use crate::config::{Account, Live, MailboxSettings, Settings};
use crate::domain::notify::{self, Notice, RecentMail, Recipient, Verdict};
use crate::domain::{AuthorKind, EmailAddress, MessageKind, Millis, Status};
use crate::mail::compose::{self, Outgoing, Person};
use crate::mail::token::SigningKey;
use crate::store::outbox::{Claimed, Finished, RecipientFacts};
use crate::store::{Store, StoreError, StoredMessage, Ticket, now_millis};

mod message;
mod round;

/// Earlier messages quoted under an agent's reply.
const CONVERSATION_SHOWN: usize = 3;
/// Message-IDs of a thread read to build References.
const THREAD_IDS_READ: i64 = 200;
/// Characters of one message shown in a notification.
const TEXT_SHOWN: usize = 20_000;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    pub held: usize,
    pub suppressed: usize,
}

/// A ticket as the notifications of one round see it.
struct TicketView {
    ticket: Ticket,
    messages: Vec<StoredMessage>,
    /// The thread's Message-IDs, each sent one with its recipient.
    thread: Vec<(String, Option<String>)>,
    mailbox: Option<MailboxSettings>,
}

/// What an agent's reply's mail carries beyond the notice: its files, and
/// the CC participants its Cc line names.
struct Extras<'a> {
    files: Option<&'a ReplyFiles>,
    cc: &'a [(String, String)],
}

/// The files of an agent's reply as its mail carries them: attached, or
/// (past `outbound.max_attached_bytes` in all) only named, with their size.
#[derive(Debug, Clone)]
enum ReplyFiles {
    Attached(Vec<compose::OutgoingFile>),
    Linked(i64),
}

/// A mail ready to go.
struct Job {
    claimed: Claimed,
    pool: Arc<SmtpPool>,
    envelope: lettre::address::Envelope,
    bytes: Vec<u8>,
    message_id: String,
}

/// How many completed sends are recorded together (at most; fewer when
/// fewer are done): the most a crash right after them can send twice.
const RECORD_EVERY: usize = 16;

/// Counts outcomes (and logs the unhappy ones).
fn tally(finished: &[Finished], outcome: &mut Outcome) {
    for f in finished {
        match f {
            Finished::Sent {
                id,
                ticket_id,
                mail_message_id,
            } => {
                tracing::debug!(outbox = id, ticket = ?ticket_id, message_id = %mail_message_id, "notification sent");
                outcome.sent += 1
            }
            Finished::Retry { id, error, .. } => {
                tracing::warn!(outbox = id, %error, "notification not sent; will retry");
                outcome.retried += 1
            }
            Finished::Failed { id, error } => {
                tracing::warn!(outbox = id, %error, "notification failed");
                outcome.failed += 1
            }
            Finished::Held {
                id,
                ticket_id,
                reason,
                ..
            } => {
                tracing::info!(outbox = id, ticket = ?ticket_id, %reason, "notification held");
                outcome.held += 1
            }
            Finished::Suppressed { .. } => outcome.suppressed += 1,
        }
    }
}

/// Delivers the outbox.
pub struct Worker {
    store: Store,
    settings: Live,
    templates: Arc<Templates>,
    key: SigningKey,
    holder: String,
    pools: Mutex<HashMap<String, Arc<SmtpPool>>>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Access tokens for accounts that sign in with OAuth2.
    tokens: crate::oauth::Tokens,
}

impl Worker {
    /// A worker over `store` claiming work as `holder`.
    pub fn new(
        store: Store,
        settings: Arc<Settings>,
        templates: Arc<Templates>,
        key: SigningKey,
        holder: String,
    ) -> Self {
        Worker {
            tokens: crate::oauth::Tokens::new(store.clone()),
            store,
            settings: Live::new((*settings).clone()),
            templates,
            key,
            holder,
            pools: Mutex::new(HashMap::new()),
            metrics: None,
        }
    }

    /// Follows the daemon's settings in force (the console changes them).
    pub fn with_live(mut self, live: Live) -> Self {
        self.settings = live;
        self
    }

    /// Shares the daemon's OAuth2 access tokens (one refresh per account).
    pub fn with_tokens(mut self, tokens: crate::oauth::Tokens) -> Self {
        self.tokens = tokens;
        self
    }

    /// Counts outcomes in `metrics` (`postdesk_outbox_total{outcome}`) and
    /// times deliveries from queueing to the server's acceptance.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        metrics.describe(
            "postdesk_outbox_total",
            "counter",
            "Notifications by outcome: sent, retried, failed, held, suppressed.",
        );
        metrics.describe(
            "postdesk_outbox_delivery_seconds",
            "histogram",
            "Time from queueing a notification to the SMTP server accepting it.",
        );
        self.metrics = Some(metrics);
        self
    }

    /// Delivers until `shutdown`: rounds back to back while there is work,
    /// otherwise a short sleep (or until the next retry is due).
    pub async fn run(self, shutdown: CancellationToken) {
        let batch = self.settings.get().outbound.batch;
        loop {
            let full = match self.run_once(now_millis()).await {
                Ok(o) => o.claimed >= batch,
                Err(e) => {
                    tracing::warn!(error = %e, "delivering the outbox failed; retrying");
                    false
                }
            };
            if shutdown.is_cancelled() {
                break;
            }
            if !full {
                let idle = Duration::from_millis(500);
                let wait = match self.store.next_outbox_due().await {
                    Ok(Some(at)) => {
                        Duration::from_millis(u64::try_from(at - now_millis()).unwrap_or(0).max(50))
                            .min(idle)
                    }
                    _ => idle,
                };
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                    // Mail queued on this daemon goes out at once.
                    _ = self.store.outbox_queued() => {}
                }
            }
        }
        let pools: Vec<_> = self
            .pools
            .lock()
            .expect("pools")
            .values()
            .cloned()
            .collect();
        for p in pools {
            p.close().await;
        }
    }

    /// One round: claim, decide, send, record. `now` decides what is due.
    pub async fn run_once(&self, now: Millis) -> Result<Outcome, StoreError> {
        let settings = self.settings.get();
        let o = &settings.outbound;
        let ttl = o.timeout.as_millis().saturating_mul(4).max(60_000);
        let claimed = self
            .store
            .claim_outbox(&self.holder, now, ttl, o.batch as i64)
            .await?;
        let mut outcome = Outcome {
            claimed: claimed.len(),
            ..Outcome::default()
        };
        if claimed.is_empty() {
            return Ok(outcome);
        }
        let mut round = self.read_round(&claimed, now).await?;
        let (finished, jobs) = self.decide_round(claimed, &mut round, now);
        let (after, sent_claims) = self.send_jobs(jobs, now, &mut outcome).await?;
        if !finished.is_empty() {
            tally(&finished, &mut outcome);
            self.store
                .finish_outbox(&self.holder, &finished, after)
                .await?;
        }
        self.count(&outcome, &sent_claims, after);
        Ok(outcome)
    }

    /// Another try later, after this claim's failed attempt.
    fn retry(&self, c: &Claimed, error: String, now: Millis) -> Finished {
        Finished::Retry {
            id: c.id,
            at: notify::next_attempt_at(
                u32::try_from(c.attempts + 1).unwrap_or(u32::MAX),
                self.settings.get().outbound.retry_base.as_millis(),
                jitter(),
                now,
            ),
            error,
        }
    }

    async fn view(
        &self,
        ticket_id: i64,
        mailboxes: &HashMap<i64, MailboxSettings>,
    ) -> Result<Option<TicketView>, StoreError> {
        let Some(ticket) = self.store.ticket(ticket_id).await? else {
            return Ok(None);
        };
        // Notes too, for the notices to staff that quote one (a mention);
        // a requester's notice never shows one (worker/message.rs).
        let messages = self.store.messages(ticket_id, true).await?;
        let thread = self
            .store
            .thread_mail_ids(ticket_id, THREAD_IDS_READ)
            .await?;
        let mailbox = ticket.mailbox_id.and_then(|id| mailboxes.get(&id).cloned());
        Ok(Some(TicketView {
            ticket,
            messages,
            thread,
            mailbox,
        }))
    }

    /// The SMTP pool for an account, built once.
    fn pool(&self, account: &Account) -> Arc<SmtpPool> {
        let key = format!(
            "{}:{}:{:?}:{}",
            account.host, account.port, account.tls, account.username
        );
        let settings = self.settings.get();
        let o = &settings.outbound;
        self.pools
            .lock()
            .expect("pools")
            .entry(key)
            .or_insert_with(|| {
                Arc::new(
                    SmtpPool::new(account.clone(), o.connections, o.timeout.0)
                        .with_tokens(self.tokens.clone()),
                )
            })
            .clone()
    }

    /// Where a ticket's mail comes from and goes out: (From address, SMTP
    /// account, whether replies may use a plus address).
    fn sender(&self, view: &TicketView) -> Result<(EmailAddress, Account, bool), &'static str> {
        let settings = self.settings.get();
        let o = &settings.outbound;
        let first_mailbox = settings.mailboxes.first();
        let from = view
            .mailbox
            .as_ref()
            .map(|m| m.address.clone())
            .or_else(|| o.from.clone())
            .or_else(|| first_mailbox.map(|m| m.address.clone()))
            .ok_or("no From address: set outbound.from or add a mailbox")?;
        let account = view
            .mailbox
            .as_ref()
            .and_then(|m| m.smtp.clone())
            .or_else(|| o.smtp.clone())
            .or_else(|| settings.mailboxes.iter().find_map(|m| m.smtp.clone()))
            .ok_or("no SMTP account: set outbound.smtp or the mailbox's smtp")?;
        // A ticket opened on the web or the API has no mailbox of its own:
        // the mailbox whose address it is sent from decides.
        let plus = match &view.mailbox {
            Some(m) => m.plus_addressing,
            None => settings
                .mailboxes
                .iter()
                .any(|m| m.address == from && m.plus_addressing),
        };
        Ok((from, account, plus))
    }
}

/// A number in [0, 1) for spreading retries.
fn jitter() -> f64 {
    f64::from(getrandom::u32().unwrap_or(0)) / (f64::from(u32::MAX) + 1.0)
}
