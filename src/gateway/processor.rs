//! The processor: a stored raw mail → parse → classify → match → action →
//! raw row marked done, all in one transaction. A mail that cannot be
//! processed is quarantined with its reason and the processor moves on; a
//! transient fault leaves the row claimed, to be retried when the claim ends.

use super::matching::{Decision, Found, LinkReason, Sender, decide};
use super::sender_check::SenderCheck;
use crate::actions::{
    ActionError, Actions, OpenTicket, ReplyInput, ReplyOutcome, UnverifiedAgentMail,
};
use crate::domain::{Actor, Channel, EmailAddress, Millis};
use crate::mail::auth::{AuthResults, verify_with};
use crate::mail::classify::content_key;
use crate::mail::classify::{BounceInfo, Classification, classify};
use crate::mail::extract::{Known, extract_reply, extract_reply_in_thread};
use crate::mail::subject::{clean_subject, plus_tokens, ticket_tag};
use crate::mail::token::SigningKey;
use crate::mail::{ParsedMail, parse};
use crate::metrics::Metrics;
use crate::store::inbound::{Finished, RawMail};
use crate::store::mailboxes::MailboxRow;
use crate::store::{NewMessage, StoreError, Tx};
use std::collections::HashMap;
use std::sync::Arc;

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
/// How long a processor waits for its turn while another daemon processes.
const TURN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

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

/// A batch claimed, its bytes being read and its mails prepared.
struct Ahead {
    /// The ids claimed, to give back if it is abandoned.
    ids: Vec<i64>,
    ready: AheadState,
}

/// Claimed mails with their bytes, and each one prepared.
type Loaded = (Vec<RawMail>, Vec<Parsed>);

enum AheadState {
    Ready(Loaded),
    Pending(tokio::task::JoinHandle<Result<Loaded, StoreError>>),
}

impl Ahead {
    async fn wait(self) -> Result<Loaded, Transient> {
        match self.ready {
            AheadState::Ready(loaded) => Ok(loaded),
            AheadState::Pending(task) => match task.await {
                Ok(done) => Ok(done?),
                // The helper runtime is shutting down: the claims lapse or are given back.
                Err(e) => Err(Transient(StoreError::TaskStopped(format!(
                    "preparing a batch: {e}"
                )))),
            },
        }
    }
}

/// What one batch gathers as it goes: the mails finished (marked in one
/// statement before the commit) and the staff accounts looked up by address
/// (agents do not change while a batch runs).
#[derive(Default)]
struct Batch {
    done: Vec<Finished>,
    staff: HashMap<EmailAddress, Option<crate::store::users::User>>,
    /// Requesters read or made in this batch, by address (the batch's
    /// senders are read in one statement as it starts).
    requesters: HashMap<EmailAddress, crate::store::Requester>,
    /// The Message-IDs the batch's mails name, as known when it started,
    /// plus those it recorded since: each with its ticket and whether
    /// postdesk sent it. `None` once a savepoint was rolled back (rows
    /// recorded in it are gone): then each mail asks the database.
    mail_ids: Option<HashMap<String, (i64, bool)>>,
}

impl Batch {
    /// Reads, as the batch starts, what its mails will ask of the database:
    /// the staff accounts and requesters of its senders, the Message-IDs
    /// they name, and who takes part in the tickets those belong to — a few
    /// statements per batch rather than several per mail.
    async fn prefetch(&mut self, tx: &mut Tx, mails: &[Parsed]) -> Result<(), StoreError> {
        let mut senders: Vec<&EmailAddress> = mails
            .iter()
            .filter_map(|m| Some(&m.as_ref().ok()?.mail.from.as_ref()?.email))
            .collect();
        senders.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        senders.dedup();
        for user in tx.users_by_emails(&senders).await? {
            let email = user.email.clone();
            self.staff.insert(email, Some(user).filter(|u| u.active));
        }
        for email in &senders {
            self.staff.entry((*email).clone()).or_insert(None);
        }
        for requester in tx.requesters_by_emails(&senders).await? {
            self.requesters.insert(requester.email.clone(), requester);
        }
        let mut asked: Vec<&str> = mails
            .iter()
            .filter_map(|m| m.as_ref().ok())
            .flat_map(|p| asked_ids(&p.mail))
            .collect();
        asked.sort_unstable();
        asked.dedup();
        let mut known = HashMap::with_capacity(asked.len());
        for chunk in asked.chunks(100) {
            for (id, ticket, sent) in tx.mail_ids_known(chunk).await? {
                known.insert(id, (ticket, sent));
            }
        }
        // Who takes part in the tickets those mails belong to: a reply's
        // sender is checked against them.
        let mut tickets: Vec<i64> = known.values().map(|(ticket, _)| *ticket).collect();
        tickets.sort_unstable();
        tickets.dedup();
        tx.load_participants(&tickets).await?;
        self.mail_ids = Some(known);
        Ok(())
    }

    /// The known ones of `asked`, as [`Tx::mail_ids_known`] answers.
    async fn mail_ids_known(
        &self,
        tx: &mut Tx,
        asked: &[&str],
    ) -> Result<Vec<(String, i64, bool)>, StoreError> {
        match &self.mail_ids {
            Some(known) => Ok(asked
                .iter()
                .filter_map(|id| {
                    let (ticket, sent) = known.get(*id)?;
                    Some(((*id).to_string(), *ticket, *sent))
                })
                .collect()),
            None => tx.mail_ids_known(asked).await,
        }
    }

    /// Notes Message-IDs the batch recorded for `ticket` (an id already
    /// known keeps its ticket, as in the database).
    fn recorded<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>, ticket: i64) {
        if let Some(known) = &mut self.mail_ids {
            for id in ids {
                known.entry(id.to_string()).or_insert((ticket, false));
            }
        }
    }

    /// A savepoint was rolled back: what this batch made in it is gone.
    fn rolled_back(&mut self) {
        self.requesters.clear();
        self.mail_ids = None;
    }
}

/// The Message-IDs a mail's matching looks up: its own, In-Reply-To, then
/// References from the newest (the first 100, as `Tx::mail_ids_known` reads).
fn asked_ids(mail: &ParsedMail) -> impl Iterator<Item = &str> {
    mail.message_id
        .iter()
        .chain(&mail.in_reply_to)
        .chain(mail.references.iter().rev())
        .map(String::as_str)
        .take(100)
}

/// A stored mail parsed, with the work that needs no database done before
/// the transaction starts: its class, and the text and sanitised HTML its
/// message shows (for a mail from a person).
struct Prepared {
    mail: ParsedMail,
    class: Classification,
    bounce: Option<BounceInfo>,
    body_text: String,
    full_text: Option<String>,
    body_html: Option<String>,
    /// What postdesk found checking DKIM, SPF and DMARC itself, for a
    /// mailbox that asks for it (filled in before the batch is applied).
    local_auth: Option<AuthResults>,
}

/// A stored mail prepared, or why it could not be.
type Parsed = Result<Prepared, String>;

/// The gateway's pure preparation of one mail as the processor runs it
/// (parse, classify, extract the reply, convert and sanitise its HTML),
/// storing nothing: for benchmarks and fuzzing. `Err` is the quarantine reason.
pub fn prepare_bytes(raw: &[u8]) -> Result<usize, String> {
    let raw = RawMail {
        id: 0,
        mailbox_id: None,
        raw: raw.to_vec(),
        received_at: 0,
        silent: false,
        attempts: 0,
    };
    let p = prepare(&raw)?;
    Ok(p.body_text.len() + p.body_html.map_or(0, |h| h.len()))
}

/// Parses and prepares a stored mail. A panic anywhere in this pure work
/// (parsing, HTML, extraction, sanitising) quarantines that mail with the
/// reason instead of stopping the batch behind it.
fn prepare(raw: &RawMail) -> Parsed {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| prepare_unguarded(raw)))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            Err(format!(
                "preparing the mail failed (a bug in postdesk): {what}"
            ))
        })
}

fn prepare_unguarded(raw: &RawMail) -> Parsed {
    let mail = parse_raw(raw)?;
    // Debug builds only: a hook for the tests to make preparation panic.
    #[cfg(debug_assertions)]
    if mail.subject == "postdesk test hook: panic while preparing" {
        panic!("the test hook asked for a panic");
    }
    let (class, bounce) = classify(&mail);
    let (body_text, full_text, body_html) = if class == Classification::Human {
        let (text, full) = bodies(&mail);
        (text, full, mail.html.as_deref().map(sanitise))
    } else {
        (String::new(), None, None)
    };
    Ok(Prepared {
        mail,
        class,
        bounce,
        body_text,
        full_text,
        body_html,
        local_auth: None,
    })
}

/// Parses a stored mail; one without a Message-ID is known by a digest of
/// its bytes, so that a second copy of it is recognised all the same.
fn parse_raw(raw: &RawMail) -> Result<ParsedMail, String> {
    let mut mail = parse(&raw.raw).map_err(|e| format!("unreadable mail: {e}"))?;
    if mail.message_id.is_none() {
        mail.message_id = Some(format!(
            "<{}@digest.postdesk>",
            crate::secrets::bytes_digest(&raw.raw)
        ));
    }
    Ok(mail)
}

/// Why a mail went to quarantine rather than a ticket.
enum Refused {
    Quarantine(String),
    Transient(StoreError),
    Duplicate,
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        if e.is_unique_violation() {
            Refused::Duplicate
        } else if e.is_transient() {
            Refused::Transient(e)
        } else {
            Refused::Quarantine(format!("store: {e}"))
        }
    }
}

impl From<ActionError> for Refused {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::Store(s) => s.into(),
            other => Refused::Quarantine(other.to_string()),
        }
    }
}

/// How many of a ticket's latest replies a reply is compared with.
const KNOWN_REPLIES: i64 = 6;

/// Whether a reply's text, as the rules cut it, is long enough to hold a
/// quoted copy of an earlier message (the thread-aware check costs a
/// query, so short replies skip it).
fn suspect_quote(text: &str) -> bool {
    text.split_whitespace().nth(24).is_some()
}

/// The text a message shows, and the whole text when it differs.
fn bodies(mail: &ParsedMail) -> (String, Option<String>) {
    let reply = extract_reply(&mail.text);
    let reply = if reply.trim().is_empty() {
        "(no text)".to_string()
    } else {
        reply
    };
    let whole = mail.text.replace("\r\n", "\n");
    let full =
        (reply.trim() != whole.trim() && !whole.trim().is_empty()).then(|| mail.text.clone());
    (reply, full)
}

/// The HTML sanitiser's rules, built once.
static SANITISER: std::sync::LazyLock<ammonia::Builder<'static>> = std::sync::LazyLock::new(|| {
    let mut rules = ammonia::Builder::default();
    rules.link_rel(Some("noopener noreferrer nofollow"));
    rules
});

fn sanitise(html: &str) -> String {
    SANITISER.clean(html).to_string()
}

/// Builds what processing the first mail would otherwise build (the reply
/// extraction rules, the sanitiser), so that it is not slower than the rest.
pub fn warm_up() {
    crate::mail::extract::warm_up();
    std::sync::LazyLock::force(&SANITISER);
}

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
        // Across daemons, one batch at a time in arrival order (see ProcessingTurn).
        let Some(turn) = store.processing_turn(TURN_WAIT).await? else {
            return Ok(Pass::default());
        };
        let mut mails = store
            .claim_raw_rows(&self.holder, now, CLAIM_MS, limit, turn.exclusive(), 0)
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
        turn.release().await;
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

    /// Claims and processes batches of up to `limit` stored mails back to
    /// back, at most `batches` of them in one processing turn, while
    /// `go_on()` says so: each next batch is claimed before the current one
    /// is written, and its bytes are read and its mails prepared on the
    /// helper runtime meanwhile, so that the write lock (the bound on
    /// SQLite) waits on nothing else. Batches stay in arrival order: each
    /// claims only mails after the last one's.
    pub async fn run_pipelined(
        &self,
        limit: i64,
        batches: usize,
        go_on: impl Fn() -> bool,
    ) -> Result<Pass, Transient> {
        let store = self.actions.store();
        let Some(turn) = store.processing_turn(TURN_WAIT).await? else {
            return Ok(Pass::default());
        };
        let exclusive = turn.exclusive();
        let now = crate::store::now_millis();
        let mut ahead = self.claim_ahead(limit, now, exclusive, 0).await?;
        let mut pass = Pass::default();
        for round in 1..=batches {
            let Some(last) = ahead.ids.last().copied() else {
                break;
            };
            let ids = std::mem::take(&mut ahead.ids);
            let give_back = |more: &[i64]| {
                let all: Vec<i64> = ids.iter().chain(more).copied().collect();
                async move {
                    let _ = store.release_claims(&all, &self.holder).await;
                }
            };
            let (raws, mut parsed) = match ahead.wait().await {
                Ok(batch) => batch,
                Err(e) => {
                    give_back(&[]).await;
                    return Err(e);
                }
            };
            let now = crate::store::now_millis();
            let next = if round < batches && go_on() {
                match self.claim_ahead(limit, now, exclusive, last).await {
                    Ok(next) => Some(next),
                    Err(e) => {
                        give_back(&[]).await;
                        return Err(e);
                    }
                }
            } else {
                None
            };
            let started = std::time::Instant::now();
            match self.process_prepared(&raws, &mut parsed, now).await {
                Ok(out) => {
                    tracing::debug!(mails = raws.len(), elapsed = ?started.elapsed(), "batch processed");
                    for d in out {
                        match d {
                            Disposition::Quarantined(_) => pass.quarantined += 1,
                            _ => pass.processed += 1,
                        }
                    }
                }
                Err(e) => {
                    give_back(next.as_ref().map_or(&[][..], |n| &n.ids)).await;
                    return Err(e);
                }
            }
            match next {
                Some(next) => ahead = next,
                None => break,
            }
        }
        turn.release().await;
        Ok(pass)
    }

    /// Claims the next batch (mails after id `after`) and starts reading
    /// and preparing it on the helper runtime, or does so at once without one.
    async fn claim_ahead(
        &self,
        limit: i64,
        now: Millis,
        exclusive: bool,
        after: i64,
    ) -> Result<Ahead, Transient> {
        let mut raws = self
            .actions
            .store()
            .claim_raw_rows(&self.holder, now, CLAIM_MS, limit, exclusive, after)
            .await?;
        let ids = raws.iter().map(|r| r.id).collect();
        let ready = match &self.helper {
            Some(helper) if !raws.is_empty() => {
                let store = helper.store.clone();
                AheadState::Pending(helper.runtime.spawn(async move {
                    store.load_raw(&mut raws).await?;
                    let parsed = tokio::task::spawn_blocking(move || {
                        let parsed: Vec<Parsed> = raws.iter().map(prepare).collect();
                        (raws, parsed)
                    })
                    .await
                    .map_err(|e| StoreError::TaskStopped(format!("preparing a batch: {e}")))?;
                    Ok(parsed)
                }))
            }
            _ => {
                self.actions.store().load_raw(&mut raws).await?;
                let parsed = raws.iter().map(prepare).collect();
                AheadState::Ready((raws, parsed))
            }
        };
        Ok(Ahead { ids, ready })
    }

    /// Processes the stored mail `id` in a turn of its own (the `ingest` and
    /// `quarantine retry` commands, beside running daemons). `Ok(None)` when
    /// it is not waiting (a daemon took it) or no turn came within 30 s: it
    /// stays stored for the daemons either way.
    pub async fn process_id(&self, id: i64, now: Millis) -> Result<Option<Disposition>, Transient> {
        let store = self.actions.store();
        let Some(turn) = store
            .processing_turn(std::time::Duration::from_secs(30))
            .await?
        else {
            return Ok(None);
        };
        let Some(raw) = store.claim_raw_id(id, &self.holder, now, CLAIM_MS).await? else {
            turn.release().await;
            return Ok(None);
        };
        let done = self.process(&raw, now).await?;
        turn.release().await;
        Ok(Some(done))
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
    /// as [`Processor::process_batch`] says.
    async fn process_prepared(
        &self,
        raws: &[RawMail],
        parsed: &mut [Parsed],
        now: Millis,
    ) -> Result<Vec<Disposition>, Transient> {
        if raws.is_empty() {
            return Ok(Vec::new());
        }
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
                .await
            {
                Ok(d) => {
                    if careful {
                        tx.release_savepoint().await?;
                    }
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

    async fn apply(
        &self,
        tx: &mut Tx,
        raw: &RawMail,
        prepared: &Prepared,
        mailbox: Option<&MailboxRow>,
        batch: &mut Batch,
        now: Millis,
    ) -> Result<Disposition, Refused> {
        let mail = &prepared.mail;
        let settings = self.actions.settings();
        let prefix = &settings.tickets.prefix;
        // In-Reply-To first, then References from the newest; one lookup for
        // them and the mail's own Message-ID.
        let wanted: Vec<&str> = mail
            .in_reply_to
            .iter()
            .chain(mail.references.iter().rev())
            .map(String::as_str)
            .collect();
        let own = mail.message_id.as_deref();
        let asked: Vec<&str> = asked_ids(mail).collect();
        let seen = batch.mail_ids_known(tx, &asked).await?;
        // Postdesk's own mail coming back, or a copy already processed; or
        // a mail whose reply outran it (its Message-ID named by a ticket's
        // mail, not yet a message of its own).
        let mut outran_by = None;
        if let Some(id) = own {
            match seen.iter().find(|(k, ..)| k == id) {
                Some((_, _, true)) => {
                    batch.done.push(Finished {
                        id: raw.id,
                        ticket_id: None,
                        note: Some("postdesk's own mail".into()),
                    });
                    return Ok(Disposition::Duplicate);
                }
                Some((_, ticket, false)) => {
                    if tx.mail_id_has_message(id).await? {
                        batch.done.push(Finished {
                            id: raw.id,
                            ticket_id: Some(*ticket),
                            note: Some("duplicate".into()),
                        });
                        return Ok(Disposition::Duplicate);
                    }
                    outran_by = Some(*ticket);
                }
                None => {}
            }
        }
        let known: Vec<(String, i64, bool)> = seen
            .into_iter()
            .filter(|(k, ..)| wanted.contains(&k.as_str()))
            .collect();
        let support: Option<EmailAddress> = mailbox.map(|m| m.settings.address.clone());
        let mut found = Found::default();
        let recipients: Vec<&EmailAddress> =
            mail.to.iter().chain(&mail.cc).map(|m| &m.email).collect();
        // Plus-address tokens, from the addressed recipients and from what
        // the receiving servers recorded (a Bcc, a bounce's envelope).
        let delivered: Vec<EmailAddress> = mail
            .delivered_to
            .iter()
            .filter_map(|d| d.parse().ok())
            .collect();
        let tokens = match &support {
            Some(support) => plus_tokens(recipients.iter().copied().chain(&delivered), support),
            None => Vec::new(),
        };
        for token in &tokens {
            if found.reply_token.is_none()
                && let Some(n) = self.key.verify_reply_token(token)
            {
                found.reply_token = tx.ticket_id_by_number(n).await?;
            }
            if found.agent_token.is_none()
                && let Some((n, user)) = self.key.verify_agent_token(token)
                && let Some(t) = tx.ticket_id_by_number(n).await?
            {
                found.agent_token = Some((t, user));
            }
        }
        let matched_id = wanted
            .iter()
            .find_map(|id| known.iter().find(|(k, ..)| k == id));
        found.message_id = matched_id.map(|(_, t, _)| *t);
        if let Some(n) = self.key.find_marker(&mail.text, prefix) {
            found.marker = tx.ticket_id_by_number(n).await?;
        }
        if let Some(tag) = ticket_tag(&mail.subject, prefix) {
            found.subject_tag = tx.ticket_id_by_number(tag.number()).await?;
        }
        if prepared.class != Classification::Human {
            let (class, bounce) = (prepared.class.clone(), prepared.bounce.clone());
            return self
                .record_automated(tx, raw, mail, class, bounce, found, &tokens, batch, now)
                .await;
        }
        let Some(from) = mail.from.clone() else {
            return Err(Refused::Quarantine(
                "the mail has no usable From address".into(),
            ));
        };
        // A From address is a claim (SPEC §5.11): what a trusted server says of it.
        let verification = verify_with(
            &mail.auth_results,
            from.email.domain(),
            &mailbox
                .map(|m| m.settings.sender_trust())
                .unwrap_or_default(),
            prepared.local_auth.as_ref(),
        );
        let verified = verification.is_verified();
        // A Message-ID is the sender's secret when postdesk sent it to that
        // very address, or when it was received on the ticket (a
        // participant replying to the thread holds it; non-participants
        // never join by it).
        // Only an unverified sender needs it: spare the lookup otherwise.
        found.message_id_secret = match matched_id {
            _ if verified => false,
            Some((id, _, true)) => match self.key.outbox_id_of(id) {
                Some(outbox) => tx
                    .outbox_recipient(outbox)
                    .await?
                    .is_some_and(|(_, to)| to.eq_ignore_ascii_case(from.email.as_str())),
                None => false,
            },
            Some((_, _, false)) => true,
            None => false,
        };
        let staff = match batch.staff.get(&from.email) {
            Some(known) => known.clone(),
            None => {
                let user = tx.user_by_email(&from.email).await?.filter(|u| u.active);
                batch.staff.insert(from.email.clone(), user.clone());
                user
            }
        };
        // A known requester is taken as read, unless the mail names one
        // whose name is still unknown (the upsert fills it in).
        let requester = match batch.requesters.get(&from.email) {
            Some(known)
                if !(known.first_name.is_empty()
                    && known.last_name.is_empty()
                    && from.name.as_deref().is_some_and(|n| !n.trim().is_empty())) =>
            {
                known.clone()
            }
            known => {
                // Not among the senders the batch read: most likely new.
                let likely_new = known.is_none() && batch.mail_ids.is_some();
                let row = tx
                    .upsert_requester(&from.email, from.name.as_deref(), now, likely_new)
                    .await?;
                batch.requesters.insert(from.email.clone(), row.clone());
                row
            }
        };
        let is_participant = match found.first() {
            Some((t, _)) => tx.is_participant(t, requester.id).await?,
            None => false,
        };
        let mut decision = decide(
            &found,
            Sender {
                agent: staff.as_ref().map(|u| u.id),
                is_participant,
                verified,
            },
        );
        // A reply that arrived first (reordered in transit, or committed by
        // another daemon first) opened a ticket naming this mail: this mail
        // joins that conversation instead of opening a second one, with no
        // notification of its own.
        let mut joined_late = false;
        if let Some(n) = outran_by
            && staff.is_none()
            && matches!(decision, Decision::New | Decision::NewLinked(..))
            && let Some(t) = tx.ticket(n).await?
            && now - t.created_at <= LATE_PARENT_MS
        {
            decision = Decision::RequesterReply(n);
            joined_late = true;
        }
        let (body_text, full_text, body_html) = (
            prepared.body_text.clone(),
            prepared.full_text.clone(),
            prepared.body_html.clone(),
        );
        let stored_verification = Some(verification.stored());
        let notice = prepared.mail.html_notice.clone();
        // CC participants: everyone addressed but the support address(es)
        // and the sender; only a verified mail adds them (SPEC §5.11).
        let ours = |e: &EmailAddress| {
            settings.mailboxes.iter().any(|m| {
                let (local, domain) = m.address.as_str().split_once('@').unwrap_or_default();
                e.domain() == domain
                    && (e.as_str() == m.address.as_str()
                        || e.as_str().starts_with(&format!("{local}+")))
            }) || support.as_ref().is_some_and(|s| {
                let (local, domain) = s.as_str().split_once('@').unwrap_or_default();
                e.domain() == domain && (e == s || e.as_str().starts_with(&format!("{local}+")))
            })
        };
        let cc: Vec<EmailAddress> = if verified {
            recipients
                .iter()
                .filter(|e| !ours(e) && **e != &from.email)
                .map(|e| (*e).clone())
                .take(50)
                .collect()
        } else {
            Vec::new()
        };
        let silent = raw.silent;
        let (ticket_id, message_id, disposition) = match decision {
            Decision::UnverifiedAgent(t) => {
                let note = UnverifiedAgentMail {
                    claimed_from: from.email.to_string(),
                    body_text,
                    full_text,
                    mail_message_id: mail.message_id.clone(),
                    inbound_id: Some(raw.id),
                    verification: stored_verification,
                };
                let id = self
                    .actions
                    .unverified_agent_mail_in(tx, t, note, now)
                    .await?;
                (t, id, Disposition::Noted { ticket_id: t })
            }
            Decision::AgentReply(t) | Decision::RequesterReply(t) => {
                // A long text may still quote one of the ticket's messages
                // in a language or shape no rule knows; cut the copy
                // (SPEC §5.6).
                let (body_text, full_text) = if suspect_quote(&body_text) {
                    let texts = tx.recent_reply_texts(t, KNOWN_REPLIES).await?;
                    let known = Known::new(texts.iter().map(String::as_str));
                    let cut = extract_reply_in_thread(&mail.text, &known);
                    if cut.len() < body_text.len() {
                        (cut, Some(mail.text.clone()))
                    } else {
                        (body_text, full_text)
                    }
                } else {
                    (body_text, full_text)
                };
                let actor = match (decision, &staff) {
                    (Decision::AgentReply(_), Some(u)) => Actor::Staff {
                        user_id: u.id,
                        role: u.role,
                    },
                    _ => Actor::Requester {
                        requester_id: requester.id,
                    },
                };
                let input = ReplyInput {
                    body_text,
                    full_text,
                    body_html,
                    status: None,
                    mail_message_id: mail.message_id.clone(),
                    inbound_id: Some(raw.id),
                    silent: silent || joined_late,
                    verification: stored_verification,
                    notice,
                };
                let participant = if joined_late {
                    tx.is_participant(t, requester.id).await?
                } else {
                    is_participant
                };
                if !actor.is_staff() && !participant {
                    // Matched by signed token (or named by the thread's
                    // first reply): the sender becomes a participant.
                    tx.add_participant(t, requester.id).await?;
                }
                if joined_late {
                    let text = format!(
                        "A mail from {} arrived after a reply to it and was joined to this conversation",
                        from.email
                    );
                    tx.insert_message(NewMessage::system(t, text, now)).await?;
                }
                match self.actions.reply_in(tx, actor, t, input, now).await? {
                    ReplyOutcome::Added { message_id, .. } => {
                        (t, message_id, Disposition::Replied { ticket_id: t })
                    }
                    ReplyOutcome::NewTicket { ticket_id, .. } => {
                        let first = tx.first_message_id(ticket_id).await?;
                        (ticket_id, first, Disposition::Opened { ticket_id })
                    }
                }
            }
            Decision::New | Decision::NewLinked(..) => {
                let subject = clean_subject(&mail.subject, prefix);
                let mut open =
                    OpenTicket::new(from.email.clone(), &subject, &body_text, Channel::Email);
                open.requester_name = from.name.clone();
                open.full_text = full_text;
                open.body_html = body_html;
                open.cc = cc.clone();
                open.mailbox_id = raw.mailbox_id;
                open.mail_message_id = mail.message_id.clone();
                open.inbound_id = Some(raw.id);
                open.silent = silent;
                open.requester_row = Some(requester.clone());
                open.verification = stored_verification;
                open.notice = notice;
                open.content_key = content_key(&open.body_text);
                if let Decision::NewLinked(old, why) = decision {
                    open.linked_ticket_id = Some(old);
                    open.link_reason = Some(match why {
                        LinkReason::NotAParticipant => {
                            "a reply from someone who takes no part in that ticket".to_string()
                        }
                        LinkReason::UnverifiedSender => format!(
                            "unverified sender: the mail named that ticket but could not be \
                                 verified as from {} ({}), so it was not added to it",
                            from.email, verification.reason
                        ),
                    });
                }
                if let Some(m) = mailbox {
                    open.priority = m.settings.default_priority;
                    open.category = m.settings.default_category.clone();
                    open.default_assignee = m.settings.default_assignee.clone();
                }
                let opened = self.actions.open_in(tx, None, open, now).await?;
                (
                    opened.ticket_id,
                    opened.message_id,
                    Disposition::Opened {
                        ticket_id: opened.ticket_id,
                    },
                )
            }
        };
        if matches!(disposition, Disposition::Replied { .. }) && staff.is_none() {
            for e in &cc {
                let p = tx.upsert_requester(e, None, now, false).await?;
                tx.add_participant(ticket_id, p.id).await?;
            }
        }
        // Ancestors named in In-Reply-To/References join this conversation.
        let mut referenced: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|id| !known.iter().any(|(k, ..)| k == id))
            .collect();
        referenced.sort_unstable();
        referenced.dedup();
        tx.record_referenced_ids(&referenced, ticket_id, now)
            .await?;
        // As the database did: the mail's own id (by trigger), then the first
        // 50 ancestors.
        batch.recorded(
            own.into_iter().chain(referenced.iter().copied().take(50)),
            ticket_id,
        );
        self.store_attachments(tx, ticket_id, message_id, mail, now)
            .await?;
        batch.done.push(Finished {
            id: raw.id,
            ticket_id: Some(ticket_id),
            note: None,
        });
        Ok(disposition)
    }

    async fn store_attachments(
        &self,
        tx: &mut Tx,
        ticket_id: i64,
        message_id: i64,
        mail: &ParsedMail,
        now: Millis,
    ) -> Result<(), Refused> {
        let limit = self.actions.settings().tickets.max_attachment_bytes;
        for a in &mail.attachments {
            if a.data.len() as u64 > limit {
                let text = format!(
                    "Attachment \"{}\" ({} bytes) was refused: it is larger than the limit of {limit} bytes",
                    a.filename,
                    a.data.len()
                );
                tx.insert_message(NewMessage::system(ticket_id, text, now))
                    .await?;
            } else {
                tx.insert_attachment(message_id, a).await?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_automated(
        &self,
        tx: &mut Tx,
        raw: &RawMail,
        mail: &ParsedMail,
        class: Classification,
        bounce: Option<BounceInfo>,
        found: Found,
        tokens: &[String],
        batch: &mut Batch,
        now: Millis,
    ) -> Result<Disposition, Refused> {
        let sender = mail
            .from
            .as_ref()
            .map(|f| f.email.to_string())
            .unwrap_or_else(|| "an unknown sender".into());
        let mut ticket = found.first().map(|(t, _)| t);
        let text = match &bounce {
            Some(b) => {
                if let Some(orig) = &b.original_message_id
                    && let Some((t, _)) = tx.ticket_of_mail_id(orig).await?
                {
                    ticket = Some(t);
                }
                // Only a report that came back to the signed envelope sender
                // of one of our mails may change an address (SPEC §5.12),
                // and only the address that mail went to.
                let mut sent_to = None;
                for token in tokens {
                    if let Some(outbox) = self.key.verify_bounce_token(token)
                        && let Some((t, to)) = tx.outbox_recipient(outbox).await?
                    {
                        if t.is_some() {
                            ticket = t;
                        }
                        sent_to = Some(to);
                        break;
                    }
                }
                let kind = if b.permanent {
                    "permanent"
                } else {
                    "temporary"
                };
                match sent_to {
                    Some(to) => {
                        let named = b
                            .recipients
                            .iter()
                            .any(|r| r.trim().eq_ignore_ascii_case(&to));
                        if b.permanent
                            && named
                            && let Ok(e) = to.parse::<EmailAddress>()
                        {
                            tx.mark_undeliverable(
                                &e,
                                &format!("permanent bounce: {}", mail.subject),
                                now,
                            )
                            .await?;
                        }
                        if named {
                            format!(
                                "Delivery failure ({kind}) for {}: {}",
                                b.recipients.join(", "),
                                mail.subject
                            )
                        } else {
                            format!(
                                "Untrusted delivery report (it names {} but the mail it returns went to {to}); nothing was changed: {}",
                                b.recipients.join(", "),
                                mail.subject
                            )
                        }
                    }
                    None => format!(
                        "Untrusted delivery report ({kind}) for {} (it did not come back to a signed bounce address); nothing was changed: {}",
                        b.recipients.join(", "),
                        mail.subject
                    ),
                }
            }
            None => format!("Automatic reply received from {sender}: {}", mail.subject),
        };
        if let Some(t) = ticket {
            let mut note = NewMessage::system(t, text, now);
            note.mail_message_id = mail.message_id.clone();
            note.inbound_id = Some(raw.id);
            note.full_text = Some(mail.text.chars().take(20_000).collect());
            tx.insert_message(note).await?;
            batch.recorded(mail.message_id.as_deref(), t);
        }
        let what = if class == Classification::Bounce {
            "bounce"
        } else {
            "auto-reply"
        };
        let note = if ticket.is_none() {
            format!("{what} for no known ticket")
        } else {
            what.to_string()
        };
        batch.done.push(Finished {
            id: raw.id,
            ticket_id: ticket,
            note: Some(note),
        });
        Ok(Disposition::Automated { ticket_id: ticket })
    }
}
