//! One poller per mailbox: connect, fetch new UIDs in batches with
//! `BODY.PEEK[]`, commit the raw mail and the new position in one
//! transaction, wake the processor, then post-process on the server (seen,
//! move, delete) up to the stored position. IDLE where the server has it,
//! polling otherwise; reconnects with backoff and records its last error.
//! The `\Seen` flag is never read as state: UIDs are.

use futures::TryStreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

mod units;

use super::imap::{ImapError, Session, connect_with};
use crate::config::{AfterAction, StartMode};
use crate::store::mailboxes::MailboxRow;
use crate::store::{Store, StoreError, now_millis};
use units::{FetchedGroup, Landed, UidSize, Unit, fetch_bytes, uid_set, units};

/// UIDs fetched per round trip.
const BATCH: usize = 500;
/// Re-IDLE before servers drop an idle connection (RFC 2177 asks clients to re-issue within 29 minutes).
const IDLE_FOR: Duration = Duration::from_secs(20 * 60);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the mailbox was removed")]
    Removed,
}

impl From<async_imap::error::Error> for PollError {
    fn from(e: async_imap::error::Error) -> Self {
        PollError::Imap(ImapError::Protocol(e))
    }
}

/// What one sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Synced {
    /// Mails newly stored.
    pub stored: usize,
    /// The position reached.
    pub last_uid: i64,
    /// The server announced new mail (EXISTS, RECENT) while this sync ran:
    /// look again before waiting.
    pub more: bool,
}

/// Reads the responses the server sent between commands; whether any
/// announced new mail (a mail delivered while we fetched, or between a
/// fetch and IDLE, must not wait for the next one).
fn announced_new_mail(session: &mut Session) -> bool {
    let responses = &session.unsolicited_responses;
    any_new_mail(std::iter::from_fn(|| responses.try_recv().ok()))
}

/// Reads every response (all of them: the channel is drained); whether one
/// announced new mail.
fn any_new_mail(responses: impl Iterator<Item = async_imap::types::UnsolicitedResponse>) -> bool {
    responses.fold(false, |news, r| {
        news | matches!(
            r,
            async_imap::types::UnsolicitedResponse::Exists(_)
                | async_imap::types::UnsolicitedResponse::Recent(_)
        )
    })
}

/// Polls one mailbox.
pub struct Poller {
    store: Store,
    mailbox_id: i64,
    /// Wakes the processor when new mail is stored.
    wake: Arc<Notify>,
    /// Where fetches and failures are counted, under the mailbox's name.
    metrics: Option<(Arc<crate::metrics::Metrics>, String)>,
    /// Access tokens, for a mailbox that signs in with OAuth2.
    tokens: crate::oauth::Tokens,
}

impl Poller {
    /// A poller for the stored mailbox `mailbox_id`.
    pub fn new(store: Store, mailbox_id: i64, wake: Arc<Notify>) -> Self {
        Poller {
            tokens: crate::oauth::Tokens::new(store.clone()),
            store,
            mailbox_id,
            wake,
            metrics: None,
        }
    }

    /// Shares the daemon's OAuth2 access tokens.
    pub fn with_tokens(mut self, tokens: crate::oauth::Tokens) -> Self {
        self.tokens = tokens;
        self
    }

    /// Counts `postdesk_mail_fetched_total` and `postdesk_mailbox_errors_total`
    /// under the label `mailbox="name"`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>, name: &str) -> Self {
        self.metrics = Some((metrics, name.to_string()));
        self
    }

    fn count(&self, series: &'static str, by: usize) {
        if let Some((m, name)) = &self.metrics {
            m.inc(series, &[("mailbox", name)], by as f64);
        }
    }

    async fn row(&self) -> Result<MailboxRow, PollError> {
        self.store
            .mailbox(self.mailbox_id)
            .await?
            .ok_or(PollError::Removed)
    }

    /// Fetches and stores everything new, then post-processes. Safe to repeat.
    ///
    /// Long because it holds the fetch pipeline's three stages in one place (fetch the
    /// next group, store its bytes, store its rows: each overlapping the others), and
    /// their ordering is what keeps a failed store from moving the position.
    pub async fn sync(&self, session: &mut Session) -> Result<Synced, PollError> {
        let row = self.row().await?;
        let settings = &row.settings;
        let selected = session.select(&settings.folder).await?;
        let uidvalidity = i64::from(selected.uid_validity.unwrap_or(0));
        let uid_next = i64::from(selected.uid_next.unwrap_or(1));
        let now = now_millis();
        let (mut last_uid, silent, done) = match (row.uidvalidity, row.last_uid) {
            (Some(v), Some(last)) if v == uidvalidity => {
                (last, false, row.done_uid.unwrap_or(last))
            }
            (Some(_), _) => {
                // UIDVALIDITY changed: read the folder again from the start; the
                // Message-ID check in the processor keeps anything from doubling.
                tracing::warn!(mailbox = %row.name, "UIDVALIDITY changed; re-reading the folder");
                self.store
                    .reset_mailbox_position(row.id, uidvalidity, 0, now)
                    .await?;
                (0, false, 0)
            }
            (None, _) => {
                let from = if settings.start == StartMode::Now {
                    uid_next - 1
                } else {
                    0
                };
                self.store
                    .reset_mailbox_position(row.id, uidvalidity, from, now)
                    .await?;
                (from, settings.start == StartMode::BacklogSilent, from)
            }
        };
        let mut stored = 0;
        let found = session
            .uid_search(format!("UID {}:*", last_uid + 1))
            .await?;
        // `N:*` also answers the highest UID when it is below N: filter.
        let mut uids: Vec<u32> = found
            .into_iter()
            .filter(|u| i64::from(*u) > last_uid)
            .collect();
        uids.sort_unstable();
        // A pipeline of three stages: while a unit is fetched, the one
        // before has its bytes committed (SQLite's mail file, under that
        // file's lock) and the one before that its rows (the main file's
        // write lock, for which it may wait behind a processor batch), since
        // the fetch waits on the server, the bytes on the disk and the rows
        // on the processor. Sizes come first, a chunk of UIDs at a time, so
        // memory stays bounded: a poller holds at most two units of bodies
        // (`fetch_bytes`, or one mail each; a third on PostgreSQL, whose
        // bytes go in with the rows), and a mail over the size limit is
        // never downloaded whole: its header is kept and it goes to
        // quarantine. Bytes are committed before their rows, and units'
        // rows in order, so the stored position never passes a mail that
        // is not stored.
        let budget = fetch_bytes(self.store.backend());
        let mut chunks = uids.chunks(BATCH);
        let mut queue: std::collections::VecDeque<Unit> = Default::default();
        let mut fetched: Option<FetchedGroup> = None;
        let mut landed: Option<Landed> = None;
        loop {
            let fetch = async {
                if queue.is_empty() {
                    let Some(chunk) = chunks.next() else {
                        return Ok::<_, PollError>(None);
                    };
                    let stream = session
                        .uid_fetch(uid_set(chunk), "(UID RFC822.SIZE)")
                        .await?;
                    let fetches: Vec<_> = stream.try_collect().await?;
                    let sizes: Vec<UidSize> = fetches
                        .iter()
                        .filter_map(|f| Some((f.uid?, f.size.unwrap_or(0))))
                        .collect();
                    queue.extend(units(chunk, &sizes, budget));
                }
                let Some(unit) = queue.pop_front() else {
                    return Ok(None);
                };
                if unit.uids.is_empty() {
                    return Ok(Some(FetchedGroup {
                        fetches: Vec::new(),
                        unit,
                    }));
                }
                let what = if unit.too_large.is_some() {
                    "(UID BODY.PEEK[HEADER])"
                } else {
                    "(UID BODY.PEEK[])"
                };
                let started = std::time::Instant::now();
                let stream = session.uid_fetch(uid_set(&unit.uids), what).await?;
                let fetches: Vec<_> = stream.try_collect().await?;
                tracing::debug!(mails = fetches.len(), elapsed = ?started.elapsed(), "group fetched");
                Ok(Some(FetchedGroup { fetches, unit }))
            };
            let bytes = async {
                let Some(group) = fetched.take() else {
                    return Ok::<_, PollError>(None);
                };
                let started = std::time::Instant::now();
                let apart = self
                    .store
                    .store_fetched_bytes(row.id, uidvalidity, &group.mails())
                    .await?;
                tracing::debug!(mails = group.fetches.len(), elapsed = ?started.elapsed(), "group's bytes stored");
                Ok(Some(Landed::from(group, apart)))
            };
            let rows = async {
                let Some(group) = &landed else {
                    return Ok::<_, PollError>(None);
                };
                let started = std::time::Instant::now();
                let mails = group.mails();
                let new = self
                    .store
                    .store_fetched_rows(row.id, uidvalidity, &mails, silent, group.position(), now)
                    .await?;
                tracing::debug!(mails = mails.len(), elapsed = ?started.elapsed(), "group stored");
                // Where a mail's story starts in the log: its IMAP UID and
                // the stored row the processor and outbox name it by.
                for (inbound, uid) in &new {
                    tracing::debug!(mailbox = %row.name, uid, inbound, "mail stored");
                }
                Ok(Some((new.len(), mails.len(), group.position())))
            };
            let (next, bytes, rows) = futures::future::join3(fetch, bytes, rows).await;
            // A failed store comes first: its unit is not acknowledged, and
            // the next sync starts over from the stored position.
            if let Some((new, mails, position)) = rows? {
                stored += new;
                self.count("postdesk_mail_fetched_total", mails);
                last_uid = position.unwrap_or(last_uid);
                // Wake every idle processor worker, and leave a permit for one busy now.
                self.wake.notify_waiters();
                self.wake.notify_one();
            }
            landed = bytes?;
            fetched = next?;
            if fetched.is_none() && landed.is_none() {
                break;
            }
        }
        let mut more = announced_new_mail(session);
        self.post_process(session, &row, done, last_uid).await?;
        more |= announced_new_mail(session);
        Ok(Synced {
            stored,
            last_uid,
            more,
        })
    }

    /// Tells the server what it may do with mail already stored: UIDs in
    /// (done_uid, last_uid]. Repeating it is harmless.
    async fn post_process(
        &self,
        session: &mut Session,
        row: &MailboxRow,
        done: i64,
        last_uid: i64,
    ) -> Result<(), PollError> {
        if last_uid > done {
            let range = format!("{}:{last_uid}", done + 1);
            let present: Vec<u32> = {
                let mut v: Vec<u32> = session
                    .uid_search(format!("UID {range}"))
                    .await?
                    .into_iter()
                    .filter(|u| i64::from(*u) > done && i64::from(*u) <= last_uid)
                    .collect();
                v.sort_unstable();
                v
            };
            for chunk in present.chunks(BATCH) {
                let set = uid_set(chunk);
                match &row.settings.after {
                    AfterAction::Seen => {
                        let _: Vec<_> = session
                            .uid_store(&set, "+FLAGS.SILENT (\\Seen)")
                            .await?
                            .try_collect()
                            .await?;
                    }
                    AfterAction::Move(folder) => session.uid_mv(&set, folder).await?,
                    AfterAction::Delete => {
                        let _: Vec<_> = session
                            .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                            .await?
                            .try_collect()
                            .await?;
                        let _: Vec<_> = session.uid_expunge(&set).await?.try_collect().await?;
                    }
                }
            }
        }
        self.store
            .set_mailbox_done(row.id, last_uid.max(done), now_millis())
            .await?;
        Ok(())
    }

    /// Waits for the server to announce new mail (IDLE), at most `bound`
    /// (the mailbox's poll interval: a check comes at least that often even
    /// while idling) and `IDLE_FOR`, or for shutdown. An EXISTS the server
    /// sent before IDLE began (async-imap files the untagged responses that
    /// precede the continuation away) ends the wait at once. Returns the
    /// session, or `None` on shutdown.
    async fn idle(
        &self,
        session: Session,
        shutdown: &CancellationToken,
        bound: Duration,
    ) -> Result<Option<Session>, PollError> {
        let news = session.unsolicited_responses.clone();
        let mut handle = session.idle();
        handle.init().await?;
        let pending = any_new_mail(std::iter::from_fn(|| news.try_recv().ok()));
        let stopped = if pending {
            false
        } else {
            let (wait, stop) =
                handle.wait_with_timeout(IDLE_FOR.min(bound.max(Duration::from_secs(1))));
            let stopped = tokio::select! {
                r = wait => { r?; false }
                _ = shutdown.cancelled() => true,
            };
            drop(stop);
            stopped
        };
        let session = handle.done().await?;
        drop(news);
        Ok((!stopped).then_some(session))
    }

    /// One connection's life: sync, wait, sync… until shutdown or an error.
    async fn connected(
        &self,
        shutdown: &CancellationToken,
        healthy: &mut bool,
    ) -> Result<(), PollError> {
        let row = self.row().await?;
        let mut session = connect_with(&row.settings.imap, Some(&self.tokens)).await?;
        let idle = row.settings.idle && session.capabilities().await?.has_str("IDLE");
        loop {
            let row = self.row().await?;
            if row.paused {
                let _ = session.logout().await;
                return Ok(());
            }
            let synced = self.sync(&mut session).await?;
            *healthy = true;
            if synced.stored > 0 {
                tracing::debug!(mailbox = %row.name, stored = synced.stored, last_uid = synced.last_uid, "mailbox synced");
            }
            if synced.more || announced_new_mail(&mut session) {
                // Mail arrived while we fetched: fetch it before waiting.
                continue;
            }
            if idle {
                match self
                    .idle(session, shutdown, row.settings.poll_interval.0)
                    .await?
                {
                    Some(s) => session = s,
                    None => return Ok(()),
                }
            } else {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        let _ = session.logout().await;
                        return Ok(());
                    }
                    _ = tokio::time::sleep(row.settings.poll_interval.0) => {}
                }
            }
        }
    }

    /// Runs until shutdown (or the mailbox is removed or paused), reconnecting
    /// with exponential backoff and recording each failure on the mailbox.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_secs(1);
        while !shutdown.is_cancelled() {
            let mut healthy = false;
            let result = self.connected(&shutdown, &mut healthy).await;
            if healthy {
                backoff = Duration::from_secs(1);
            }
            match result {
                Ok(()) => break,
                Err(PollError::Removed) => break,
                Err(e) => {
                    self.count("postdesk_mailbox_errors_total", 1);
                    tracing::warn!(mailbox = self.mailbox_id, error = %e, retry_in = ?backoff, "mailbox poll failed");
                    let _ = self
                        .store
                        .set_mailbox_error(self.mailbox_id, &e.to_string(), now_millis())
                        .await;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}
