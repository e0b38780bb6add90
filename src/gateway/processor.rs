//! The processor: a stored raw mail → parse → classify → match → action →
//! raw row marked done, all in one transaction. A mail that cannot be
//! processed is quarantined with its reason and the processor moves on; a
//! transient fault leaves the row claimed, to be retried when the claim ends.

mod act;
mod apply;
mod automated;
mod batch;
mod pipeline;
mod prepare;

use apply::Refused;
use batch::{Batch, asked_ids};
use prepare::{Parsed, Prepared, prepare};
pub use prepare::{prepare_bytes, warm_up};

use super::matching::{Decision, Found, LinkReason, Sender, decide};
use super::sender_check::SenderCheck;
use crate::actions::{
    ActionError, Actions, OpenTicket, ReplyInput, ReplyOutcome, UnverifiedAgentMail,
};
use crate::domain::{Actor, Channel, EmailAddress, Millis};
use crate::mail::auth::{AuthResults, verify_with};
use crate::mail::classify::content_key;
use crate::mail::classify::{BounceInfo, Classification, classify};
use crate::mail::extract::{Known, extract_reply_in_thread, extract_reply_with_html};
use crate::mail::subject::{clean_subject, plus_tokens, ticket_tag};
use crate::mail::token::SigningKey;
use crate::mail::{ParsedMail, parse};
use crate::metrics::Metrics;
use crate::store::inbound::{Finished, RawMail};
use crate::store::mailboxes::MailboxRow;
use crate::store::{StoreError, Tx};
use std::collections::HashMap;
use std::sync::Arc;
use tracing::Instrument;

/// How long a claim on a raw mail lasts before another worker may take it
/// (a batch takes well under a second; a dead daemon's claims lapse after this).
const CLAIM_MS: i64 = 30_000;
/// How long after a ticket was opened by a reply a mail that reply answered
/// still joins it (a reply that outran its parent in transit, or on
/// another daemon); later, the usual matching decides.
const LATE_PARENT_MS: i64 = 15 * 60_000;
/// Claims after which a batch runs mail by mail.
const SUSPECT_ATTEMPTS: i64 = 3;
/// Claims after which a mail that still meets a transient fault is quarantined.
const MAX_ATTEMPTS: i64 = 6;

/// What happened to one raw mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// A new ticket was opened.
    Opened { ticket_id: i64 },
    /// A message was added to a ticket.
    Replied { ticket_id: i64 },
    /// Mail claiming to be an agent's, kept as an internal note (SPEC §5.11).
    Noted { ticket_id: i64 },
    /// Automated mail, recorded on its ticket (or nowhere, if none matched).
    Automated { ticket_id: Option<i64> },
    /// The same mail was already processed (or it is postdesk's own).
    Duplicate,
    /// Quarantined with this reason.
    Quarantined(String),
}

impl Disposition {
    /// The ticket the mail went to, if any.
    pub fn ticket_id(&self) -> Option<i64> {
        match self {
            Disposition::Opened { ticket_id }
            | Disposition::Replied { ticket_id }
            | Disposition::Noted { ticket_id } => Some(*ticket_id),
            Disposition::Automated { ticket_id } => *ticket_id,
            Disposition::Duplicate | Disposition::Quarantined(_) => None,
        }
    }
}

/// A processing fault that a retry may cure (the database was unreachable).
#[derive(Debug, thiserror::Error)]
#[error("transient fault, will retry: {0}")]
pub struct Transient(#[from] pub StoreError);

/// Counts of one [`Processor::run_once`] pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub processed: usize,
    pub quarantined: usize,
}

/// Turns stored raw mail into tickets and messages.
#[derive(Debug, Clone)]
pub struct Processor {
    actions: Actions,
    key: SigningKey,
    holder: String,
    metrics: Option<Arc<Metrics>>,
    /// Where the next batch is read and prepared while one is written (see
    /// [`Processor::run_pipelined`]); `None` prepares each in turn.
    helper: Option<Helper>,
    /// DKIM, SPF and DMARC checked in process, built on first use by a
    /// mailbox that asks for it (`Err`: why it could not be).
    sender_check: Arc<std::sync::OnceLock<Result<Arc<SenderCheck>, String>>>,
}

/// Another runtime (the daemon's main one, on the other cores) and a store
/// whose connections live on it.
#[derive(Debug, Clone)]
struct Helper {
    runtime: tokio::runtime::Handle,
    store: crate::store::Store,
}

/// Claimed mails with their bytes, and each one prepared.
type Loaded = (Vec<RawMail>, Vec<Parsed>);

impl Processor {
    /// The same processor under another claim holder name (one per worker).
    pub fn worker(&self, n: usize) -> Self {
        Processor {
            actions: self.actions.clone(),
            key: self.key.clone(),
            holder: format!("{}/{n}", self.holder),
            metrics: self.metrics.clone(),
            helper: self.helper.clone(),
            sender_check: self.sender_check.clone(),
        }
    }

    /// The same processor reading and preparing each next batch on
    /// `runtime`, through `store` (whose connections belong to it), while
    /// it writes the current one.
    pub fn with_helper(
        mut self,
        runtime: tokio::runtime::Handle,
        store: crate::store::Store,
    ) -> Self {
        self.helper = Some(Helper { runtime, store });
        self
    }

    /// The same processor writing through another handle to the database.
    pub fn with_store(mut self, store: crate::store::Store) -> Self {
        self.actions = self.actions.with_store(store);
        self
    }

    /// The store this processor writes to.
    pub fn store(&self) -> &crate::store::Store {
        self.actions.store()
    }

    /// A processor; `holder` names this daemon in claims.
    pub fn new(actions: Actions, key: SigningKey, holder: impl Into<String>) -> Self {
        Processor {
            actions,
            key,
            holder: holder.into(),
            metrics: None,
            helper: None,
            sender_check: Arc::default(),
        }
    }

    /// Counts outcomes by mailbox (`postdesk_mail_processed_total{mailbox,
    /// outcome}`) and times each mail from storage to its end state
    /// (`postdesk_mail_processing_seconds{mailbox}`).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        metrics.describe(
            "postdesk_mail_processed_total",
            "counter",
            "Stored mails processed, by mailbox and outcome (opened, replied, automated, duplicate, quarantined).",
        );
        metrics.describe(
            "postdesk_mail_processing_seconds",
            "histogram",
            "Time from a mail being stored to its end state, by mailbox.",
        );
        self.metrics = Some(metrics);
        self
    }

    fn count(&self, raws: &[RawMail], out: &[Disposition], names: &HashMap<i64, String>) {
        let Some(m) = &self.metrics else { return };
        let now = crate::store::now_millis();
        for (raw, d) in raws.iter().zip(out) {
            let mailbox = raw
                .mailbox_id
                .and_then(|id| names.get(&id))
                .map_or("(none)", String::as_str);
            let outcome = match d {
                Disposition::Opened { .. } => "opened",
                Disposition::Replied { .. } => "replied",
                Disposition::Noted { .. } => "noted",
                Disposition::Automated { .. } => "automated",
                Disposition::Duplicate => "duplicate",
                Disposition::Quarantined(_) => "quarantined",
            };
            m.inc(
                "postdesk_mail_processed_total",
                &[("mailbox", mailbox), ("outcome", outcome)],
                1.0,
            );
            let waited = now.saturating_sub(raw.received_at).max(0) as f64 / 1000.0;
            m.observe(
                "postdesk_mail_processing_seconds",
                &[("mailbox", mailbox)],
                waited,
            );
        }
    }

    /// Claims and processes up to `limit` stored mails.
    pub async fn run_once(&self, limit: i64, now: Millis) -> Result<Pass, Transient> {
        let store = self.actions.store();
        // Across daemons, one batch of a partition at a time, in arrival
        // order (see Store::claim_raw_rows).
        let mut mails = store
            .claim_raw_rows(&self.holder, now, CLAIM_MS, limit)
            .await?;
        store.load_raw(&mut mails).await?;
        let mut pass = Pass::default();
        let started = std::time::Instant::now();
        let outcome = match self.process_batch(&mails, now).await {
            Ok(outcome) => outcome,
            Err(e) => {
                // Give the batch back for an early retry (a deadlock between two
                // workers, a dropped connection); if even that fails, the claims lapse.
                let ids: Vec<i64> = mails.iter().map(|m| m.id).collect();
                let _ = store.release_claims(&ids, &self.holder).await;
                return Err(e);
            }
        };
        if !mails.is_empty() {
            tracing::debug!(mails = mails.len(), elapsed = ?started.elapsed(), "batch processed");
        }
        for d in outcome {
            match d {
                Disposition::Quarantined(_) => pass.quarantined += 1,
                _ => pass.processed += 1,
            }
        }
        Ok(pass)
    }

    /// Processes the stored mail `id` at once (the `ingest` and `quarantine
    /// retry` commands, beside running daemons). `Ok(None)` when it is not
    /// waiting (a daemon took it) or a daemon is processing mail of its
    /// partition (that daemon takes it next, in order): it stays stored for
    /// the daemons either way.
    pub async fn process_id(&self, id: i64, now: Millis) -> Result<Option<Disposition>, Transient> {
        let store = self.actions.store();
        let Some(raw) = store.claim_raw_id(id, &self.holder, now, CLAIM_MS).await? else {
            return Ok(None);
        };
        Ok(Some(self.process(&raw, now).await?))
    }

    /// Processes one stored mail to its end state.
    pub async fn process(&self, raw: &RawMail, now: Millis) -> Result<Disposition, Transient> {
        let mut out = self.process_batch(std::slice::from_ref(raw), now).await?;
        Ok(out.pop().unwrap_or(Disposition::Duplicate))
    }

    /// Processes claimed mails in one transaction: the database commit is
    /// the cost of ingest, so a batch pays it once. Most batches hold no mail
    /// that fails, so the batch runs first without a savepoint per mail; if
    /// one fails, the batch is rolled back and run again with each mail in
    /// its own savepoint, the failing one rolled back to it and quarantined.
    /// A transient fault abandons the batch (the claims expire and it is
    /// retried), so nothing is half done.
    pub async fn process_batch(
        &self,
        raws: &[RawMail],
        now: Millis,
    ) -> Result<Vec<Disposition>, Transient> {
        let prepare_started = std::time::Instant::now();
        let mut parsed: Vec<Parsed> = raws.iter().map(prepare).collect();
        tracing::debug!(mails = raws.len(), elapsed = ?prepare_started.elapsed(), "batch prepared");
        self.process_prepared(raws, &mut parsed, now).await
    }

    /// Processes claimed mails already prepared (`parsed[i]` from `raws[i]`),
    /// as [`Processor::process_batch`] says; every log line of the batch
    /// carries its size and its first and last stored mail's id (each mail's
    /// lines its own id too: one mail is followed from fetch to receipt by
    /// `inbound=ID`, then by `outbox=` of its notifications).
    async fn process_prepared(
        &self,
        raws: &[RawMail],
        parsed: &mut [Parsed],
        now: Millis,
    ) -> Result<Vec<Disposition>, Transient> {
        let (Some(first), Some(last)) = (raws.first(), raws.last()) else {
            return Ok(Vec::new());
        };
        let span = tracing::info_span!(
            "batch",
            mails = raws.len(),
            first = first.id,
            last = last.id
        );
        self.process_prepared_in_span(raws, parsed, now)
            .instrument(span)
            .await
    }

    async fn process_prepared_in_span(
        &self,
        raws: &[RawMail],
        parsed: &mut [Parsed],
        now: Millis,
    ) -> Result<Vec<Disposition>, Transient> {
        let store = self.actions.store();
        let mut mailboxes = HashMap::new();
        for id in raws.iter().filter_map(|r| r.mailbox_id) {
            if let std::collections::hash_map::Entry::Vacant(e) = mailboxes.entry(id) {
                e.insert(store.mailbox(id).await?);
            }
        }
        self.check_senders(raws, parsed, &mailboxes).await;
        let parsed = &*parsed;
        // A batch that keeps failing with a transient fault (its mails were
        // claimed again and again) runs mail by mail: the mails behind the
        // one at fault go on, and that one, past MAX_ATTEMPTS, is quarantined.
        let out = if raws.len() > 1 && raws.iter().any(|r| r.attempts >= SUSPECT_ATTEMPTS) {
            let mut out = Vec::with_capacity(raws.len());
            for (raw, mail) in raws.iter().zip(parsed) {
                out.extend(self.run_alone(raw, mail, &mailboxes, now).await?);
            }
            out
        } else if raws.len() == 1 {
            self.run_alone(&raws[0], &parsed[0], &mailboxes, now)
                .await?
        } else {
            match self.run_batch(raws, parsed, &mailboxes, false, now).await? {
                Some(out) => out,
                None => self
                    .run_batch(raws, parsed, &mailboxes, true, now)
                    .await?
                    .unwrap_or_default(),
            }
        };
        let names = mailboxes
            .iter()
            .filter_map(|(id, row)| Some((*id, row.as_ref()?.name.clone())))
            .collect();
        self.count(raws, &out, &names);
        Ok(out)
    }

    /// Checks DKIM, SPF and DMARC in process for the mails of mailboxes
    /// that ask for it (people's mail only: automated mail is never
    /// matched by its sender), side by side, before the batch's
    /// transaction opens.
    async fn check_senders(
        &self,
        raws: &[RawMail],
        parsed: &mut [Parsed],
        mailboxes: &HashMap<i64, Option<MailboxRow>>,
    ) {
        let wanted: Vec<usize> = (0..raws.len())
            .filter(|&i| {
                let asks = raws[i]
                    .mailbox_id
                    .and_then(|id| mailboxes.get(&id)?.as_ref())
                    .is_some_and(|m| m.settings.verify_in_process);
                asks && matches!(&parsed[i], Ok(p) if p.class == Classification::Human)
            })
            .collect();
        if wanted.is_empty() {
            return;
        }
        let built = self.sender_check.get_or_init(|| {
            SenderCheck::new(&self.actions.settings().dns)
                .map(Arc::new)
                .map_err(|e| {
                    tracing::error!(error = %e, "in-process sender verification is unavailable");
                    e.to_string()
                })
        });
        let found: Vec<AuthResults> = match built {
            Ok(check) => {
                let mails: Vec<(&[u8], &[String])> = wanted
                    .iter()
                    .map(|&i| {
                        let hosts = raws[i]
                            .mailbox_id
                            .and_then(|id| mailboxes.get(&id)?.as_ref())
                            .map_or(&[][..], |m| &m.settings.received_by[..]);
                        (&raws[i].raw[..], hosts)
                    })
                    .collect();
                check.check_all(&mails).await
            }
            Err(why) => wanted
                .iter()
                .map(|_| SenderCheck::unavailable(why))
                .collect(),
        };
        for (i, results) in wanted.into_iter().zip(found) {
            if let Ok(p) = &mut parsed[i] {
                p.local_auth = Some(results);
            }
        }
    }

    /// One mail in a transaction of its own; past [`MAX_ATTEMPTS`] claims, a
    /// transient fault quarantines it rather than stopping the mails behind it.
    async fn run_alone(
        &self,
        raw: &RawMail,
        mail: &Parsed,
        mailboxes: &HashMap<i64, Option<MailboxRow>>,
        now: Millis,
    ) -> Result<Vec<Disposition>, Transient> {
        let one = std::slice::from_ref(raw);
        let prepared = std::slice::from_ref(mail);
        let tried = match self.run_batch(one, prepared, mailboxes, false, now).await {
            Ok(Some(out)) => return Ok(out),
            Ok(None) => self.run_batch(one, prepared, mailboxes, true, now).await,
            Err(e) => Err(e),
        };
        match tried {
            Ok(out) => Ok(out.unwrap_or_default()),
            Err(Transient(e)) if raw.attempts >= MAX_ATTEMPTS => {
                let reason = format!(
                    "processing failed {} times, the last with a fault that should have been passing ({e}); quarantined so that the mails behind it go on",
                    raw.attempts
                );
                tracing::warn!(inbound = raw.id, %reason, "mail quarantined");
                let mut tx = self.actions.store().begin().await?;
                tx.quarantine_raw(raw.id, &reason, now).await?;
                tx.commit().await?;
                Ok(vec![Disposition::Quarantined(reason)])
            }
            Err(e) => Err(e),
        }
    }

    /// One run of a batch; `Ok(None)` when a mail failed without savepoints
    /// (`careful` false) and the batch must be run again with them.
    async fn run_batch(
        &self,
        raws: &[RawMail],
        parsed: &[Parsed],
        mailboxes: &HashMap<i64, Option<MailboxRow>>,
        careful: bool,
        now: Millis,
    ) -> Result<Option<Vec<Disposition>>, Transient> {
        // New requesters are created before the batch's transaction (see
        // Store::create_requesters).
        let senders: Vec<(&EmailAddress, Option<&str>)> = parsed
            .iter()
            .filter_map(|p| p.as_ref().ok())
            .filter(|p| p.class == Classification::Human)
            .filter_map(|p| {
                let from = p.mail.from.as_ref()?;
                Some((&from.email, from.name.as_deref()))
            })
            .collect();
        self.actions
            .store()
            .create_requesters(&senders, now)
            .await?;
        let mut tx = self.actions.store().begin().await?;
        tx.defer_notifications();
        if !careful {
            // Written together before the batch's end (a failure there runs
            // the batch again with savepoints, each mail's written at its own).
            tx.defer_messages();
        }
        let mut out = Vec::with_capacity(raws.len());
        let mut batch = Batch::default();
        batch.prefetch(&mut tx, parsed).await?;
        for (raw, mail) in raws.iter().zip(parsed) {
            let mail = match mail {
                Ok(mail) => mail,
                Err(reason) => {
                    tx.quarantine_raw(raw.id, reason, now).await?;
                    out.push(Disposition::Quarantined(reason.clone()));
                    continue;
                }
            };
            let mailbox = raw
                .mailbox_id
                .and_then(|id| mailboxes.get(&id).cloned().flatten());
            if careful {
                tx.savepoint().await?;
            }
            let mark = batch.done.len();
            match self
                .apply(&mut tx, raw, mail, mailbox.as_ref(), &mut batch, now)
                // Every log line of this mail's processing carries its id.
                .instrument(tracing::info_span!("mail", inbound = raw.id))
                .await
            {
                Ok(d) => {
                    if careful {
                        tx.release_savepoint().await?;
                    }
                    tracing::debug!(inbound = raw.id, ticket = ?d.ticket_id(), disposition = ?d, "mail processed");
                    out.push(d);
                }
                Err(Refused::Transient(e)) => return Err(Transient(e)),
                // Dropping the transaction rolls the whole batch back.
                Err(_) if !careful => return Ok(None),
                Err(Refused::Duplicate) => {
                    tx.rollback_to_savepoint().await?;
                    batch.rolled_back();
                    batch.done.truncate(mark);
                    batch.done.push(Finished {
                        id: raw.id,
                        ticket_id: None,
                        note: Some("duplicate of a mail already processed".into()),
                    });
                    out.push(Disposition::Duplicate);
                }
                Err(Refused::Quarantine(reason)) => {
                    tx.rollback_to_savepoint().await?;
                    batch.rolled_back();
                    batch.done.truncate(mark);
                    tracing::warn!(inbound = raw.id, %reason, "mail quarantined");
                    tx.quarantine_raw(raw.id, &reason, now).await?;
                    out.push(Disposition::Quarantined(reason));
                }
            }
        }
        if let Err(e) = tx.flush_messages().await {
            return match Refused::from(e) {
                Refused::Transient(e) => Err(Transient(e)),
                _ => Ok(None),
            };
        }
        tx.finish_raws(&batch.done, now).await?;
        tx.commit().await?;
        Ok(Some(out))
    }
}
