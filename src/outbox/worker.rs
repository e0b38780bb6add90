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
        let mailboxes: HashMap<i64, MailboxSettings> = self
            .store
            .mailboxes()
            .await?
            .into_iter()
            .map(|m| (m.id, m.settings))
            .collect();
        let hour_ago = now - 3_600_000;
        // Read what the round needs concurrently, once per ticket and per
        // address; the decisions below are then made in order, in memory.
        let ticket_ids: HashSet<i64> = claimed.iter().filter_map(|c| c.ticket_id).collect();
        let addresses: HashSet<String> = claimed.iter().map(|c| c.recipient.clone()).collect();
        let reads = self.settings.get().database.max_connections.max(1) as usize;
        let mut views: HashMap<i64, Option<TicketView>> = HashMap::new();
        let mut on_ticket: HashMap<i64, u32> = HashMap::new();
        let mut in_conversation: HashMap<i64, u32> = HashMap::new();
        let mut same_words: HashMap<i64, u32> = HashMap::new();
        let mut loaded = futures::stream::iter(ticket_ids)
            .map(|id| {
                let mailboxes = &mailboxes;
                async move {
                    let view = self.view(id, mailboxes).await?;
                    let (sent, alike) = self.store.automated_sent_on(id, hour_ago).await?;
                    // Only a linked ticket has a conversation beyond itself.
                    let linked = view
                        .as_ref()
                        .is_some_and(|v| v.ticket.linked_ticket_id.is_some());
                    let around = if linked {
                        self.store
                            .automated_sent_in_conversation(id, hour_ago)
                            .await?
                    } else {
                        sent
                    };
                    Ok::<_, StoreError>((id, view, sent, around, alike))
                }
            })
            .buffer_unordered(reads);
        while let Some(r) = loaded.next().await {
            let (id, view, sent, around, alike) = r?;
            views.insert(id, view);
            on_ticket.insert(id, sent);
            in_conversation.insert(id, around);
            same_words.insert(id, alike);
        }
        drop(loaded);
        let mut people: HashMap<String, RecipientFacts> = HashMap::new();
        let mut to_address: HashMap<String, u32> = HashMap::new();
        let mut loaded = futures::stream::iter(addresses)
            .map(|a| async move {
                let facts = self.store.recipient_facts(&a).await?;
                let sent = self.store.automated_sent_to(&a, hour_ago).await?;
                Ok::<_, StoreError>((a, facts, sent))
            })
            .buffer_unordered(reads);
        while let Some(r) = loaded.next().await {
            let (a, facts, sent) = r?;
            people.insert(a.clone(), facts);
            to_address.insert(a, sent);
        }
        drop(loaded);
        // The files of agents' replies this round sends, once per message,
        // and whom their Cc lines name, once per ticket.
        let limit = self.settings.get().outbound.max_attached_bytes;
        let mut files: HashMap<i64, ReplyFiles> = HashMap::new();
        let mut reply_all: HashMap<i64, Vec<(String, String)>> = HashMap::new();
        for c in &claimed {
            if c.notice == Some(Notice::AgentReply)
                && let Some(t) = c.ticket_id
                && !reply_all.contains_key(&t)
            {
                reply_all.insert(t, self.store.reply_all_cc(t).await?);
            }
            if c.notice == Some(Notice::AgentReply)
                && let Some(m) = c.message_id
                && !files.contains_key(&m)
            {
                let loaded = match self.store.message_files(m, limit).await? {
                    Ok(found) => ReplyFiles::Attached(
                        found
                            .into_iter()
                            .map(|(info, data)| compose::OutgoingFile {
                                filename: info.filename,
                                content_type: info.content_type,
                                data,
                            })
                            .collect(),
                    ),
                    Err(total) => ReplyFiles::Linked(total),
                };
                files.insert(m, loaded);
            }
        }
        let mut finished = Vec::with_capacity(claimed.len());
        let mut jobs = Vec::new();
        for c in claimed {
            let (Some(notice), Some(ticket_id)) = (c.notice, c.ticket_id) else {
                finished.push(Finished::Failed {
                    id: c.id,
                    error: "a notice this version does not know, or about no ticket".into(),
                });
                continue;
            };
            let Some(view) = views.get(&ticket_id).and_then(Option::as_ref) else {
                finished.push(Finished::Suppressed {
                    id: c.id,
                    reason: "the ticket no longer exists".into(),
                });
                continue;
            };
            let facts = &people[&c.recipient];
            let recent = RecentMail {
                to_address: to_address[&c.recipient],
                on_ticket: on_ticket[&ticket_id],
                in_conversation: in_conversation[&ticket_id],
                same_words: same_words[&ticket_id],
            };
            let recipient = Recipient {
                undeliverable: facts.undeliverable,
                switched_off: facts.switched_off.clone(),
                staff: facts.staff,
            };
            match notify::decide(notice, &recipient, recent, o.loop_limits()) {
                Verdict::Hold(reason) => {
                    finished.push(Finished::Held {
                        id: c.id,
                        ticket_id: Some(ticket_id),
                        what: format!("the {} mail to {}", notice.as_str(), c.recipient),
                        reason,
                    });
                    continue;
                }
                Verdict::Suppress(reason) => {
                    finished.push(Finished::Suppressed { id: c.id, reason });
                    continue;
                }
                Verdict::Send => {}
            }
            if notice.automated().is_some() {
                *to_address.get_mut(&c.recipient).expect("counted") += 1;
                *on_ticket.get_mut(&ticket_id).expect("counted") += 1;
                *in_conversation.get_mut(&ticket_id).expect("counted") += 1;
            }
            match self.sender(view) {
                // Configuration, not the mail: wait for an admin to add SMTP.
                Err(error) => finished.push(self.retry(&c, error.to_string(), now)),
                Ok(sender) => match self.prepare(
                    &c,
                    notice,
                    view,
                    facts,
                    Extras {
                        files: c.message_id.and_then(|m| files.get(&m)),
                        cc: reply_all.get(&ticket_id).map(Vec::as_slice).unwrap_or(&[]),
                    },
                    sender,
                    now,
                ) {
                    Ok(job) => jobs.push(job),
                    Err(error) => finished.push(Finished::Failed { id: c.id, error }),
                },
            }
        }
        let max_attempts = i64::from(o.max_attempts.max(1));
        // Record outcomes as sends complete, a few at a time, so a crash
        // between a server's 250 and our commit resends as little as possible.
        let mut results = futures::stream::iter(jobs)
            .map(|job| async move {
                // Every log line of the send carries the outbox row and ticket.
                let span = tracing::info_span!(
                    "send",
                    outbox = job.claimed.id,
                    ticket = job.claimed.ticket_id
                );
                let r = job
                    .pool
                    .send(&job.envelope, &job.bytes)
                    .instrument(span)
                    .await;
                (job, r)
            })
            .buffer_unordered(o.connections.max(1) * 2)
            .ready_chunks(RECORD_EVERY);
        let mut after = now;
        let mut sent_claims = Vec::new();
        while let Some(chunk) = results.next().await {
            after = now_millis().max(now);
            let mut done = Vec::with_capacity(chunk.len());
            for (job, result) in chunk {
                let c = &job.claimed;
                done.push(match result {
                    Ok(_) => {
                        sent_claims.push(c.created_at);
                        Finished::Sent {
                            id: c.id,
                            ticket_id: c.ticket_id,
                            mail_message_id: job.message_id.clone(),
                        }
                    }
                    Err(SendError::Permanent(error)) => Finished::Failed { id: c.id, error },
                    Err(SendError::Transient(error)) if c.attempts + 1 >= max_attempts => {
                        Finished::Failed {
                            id: c.id,
                            error: format!("gave up after {} attempts: {error}", c.attempts + 1),
                        }
                    }
                    Err(SendError::Transient(error)) => self.retry(c, error, after),
                });
            }
            tally(&done, &mut outcome);
            self.store.finish_outbox(&self.holder, &done, after).await?;
        }
        if !finished.is_empty() {
            tally(&finished, &mut outcome);
            self.store
                .finish_outbox(&self.holder, &finished, after)
                .await?;
        }
        if let Some(m) = &self.metrics {
            for (outcome, n) in [
                ("sent", outcome.sent),
                ("retried", outcome.retried),
                ("failed", outcome.failed),
                ("held", outcome.held),
                ("suppressed", outcome.suppressed),
            ] {
                if n > 0 {
                    m.inc("postdesk_outbox_total", &[("outcome", outcome)], n as f64);
                }
            }
            for c in &sent_claims {
                m.observe(
                    "postdesk_outbox_delivery_seconds",
                    &[],
                    (after - c).max(0) as f64 / 1000.0,
                );
            }
        }
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
