//! What the portal keeps in memory: recent sessions and read marks, threads
//! read recently (valid while their ticket does not change), and the
//! limiter of link requests per address.

use super::*;

/// A ticket's public thread as the portal shows it.
pub struct Thread {
    pub(super) messages: Vec<crate::store::StoredMessage>,
    pub(super) files: HashMap<i64, Vec<crate::store::sessions::AttachmentInfo>>,
    /// Each HTML message as shown, with the number of images held back
    /// (sanitising is the costly part of a page: done once per thread).
    pub(super) html: HashMap<i64, (String, usize)>,
    /// The conversation as rendered HTML, per viewer (whose own messages
    /// sit on the right): a repeated page view renders only its frame.
    pub(super) rendered: Mutex<HashMap<Option<String>, std::sync::Arc<str>>>,
}

/// Threads read recently, each valid while its ticket's `updated_at` and
/// message count stay the same (every change of a thread moves them), so a
/// page viewed again costs no thread query. Per process; bounded.
#[derive(Default)]
pub struct ThreadCache(Mutex<HashMap<i64, Cached>>);

/// A cached thread with the ticket's (updated_at, message_count) it was read at.
pub(super) type Cached = (i64, i64, std::sync::Arc<Thread>);

/// Sessions and read marks the portal has seen recently, so that viewing a
/// page again costs no session query and no read-mark query. A session is
/// trusted from memory for [`SESSION_MEMORY_MS`]; signing out evicts it
/// here (another daemon may still trust it for those seconds).
#[derive(Default)]
pub struct PortalMemory {
    pub(super) sessions: Mutex<HashMap<String, (WebSession, i64)>>,
    pub(super) read: Mutex<HashMap<(i64, i64), i64>>,
}

/// How long a session read from the database is trusted from memory.
pub(super) const SESSION_MEMORY_MS: i64 = 10_000;
/// Entries kept at most in each map; it starts over when full.
pub(super) const MEMORY_ENTRIES: usize = 20_000;

impl PortalMemory {
    pub(super) fn session(&self, digest: &str, now: i64) -> Option<WebSession> {
        let map = self.sessions.lock().expect("memory");
        map.get(digest)
            .filter(|(s, at)| now - at < SESSION_MEMORY_MS && s.expires_at > now)
            .map(|(s, _)| s.clone())
    }

    pub(super) fn forget_session(&self, digest: &str) {
        self.sessions.lock().expect("memory").remove(digest);
    }

    pub(super) fn remember_session(&self, digest: String, s: WebSession, now: i64) {
        let mut map = self.sessions.lock().expect("memory");
        if map.len() >= MEMORY_ENTRIES {
            map.clear();
        }
        map.insert(digest, (s, now));
    }

    /// Whether `viewer` is known to have read `ticket` up to `message`.
    pub(super) fn has_read(&self, ticket: i64, viewer: i64, message: i64) -> bool {
        self.read
            .lock()
            .expect("memory")
            .get(&(ticket, viewer))
            .is_some_and(|m| *m >= message)
    }

    pub(super) fn remember_read(&self, ticket: i64, viewer: i64, message: i64) {
        let mut map = self.read.lock().expect("memory");
        if map.len() >= MEMORY_ENTRIES {
            map.clear();
        }
        map.insert((ticket, viewer), message);
    }
}

/// Threads kept at most; the cache starts over when full.
pub(super) const THREADS_CACHED: usize = 2_000;

impl ThreadCache {
    pub(super) async fn get(
        &self,
        store: &crate::store::Store,
        t: &Ticket,
    ) -> Result<std::sync::Arc<Thread>, StoreError> {
        if let Some((updated, count, thread)) = self.0.lock().expect("cache").get(&t.id)
            && *updated == t.updated_at
            && *count == t.message_count
        {
            return Ok(thread.clone());
        }
        let messages = store.messages(t.id, false).await?;
        let files = store.ticket_attachments(t.id).await?;
        let html = messages
            .iter()
            .filter(|m| m.kind == MessageKind::Reply)
            .filter_map(|m| {
                let h = m.body_html.as_deref().filter(|h| !h.trim().is_empty())?;
                let shown = files::mail_html(
                    h,
                    files.get(&m.id).map_or(&[][..], Vec::as_slice),
                    "/portal/attachments/",
                );
                Some((m.id, shown))
            })
            .collect();
        let thread = std::sync::Arc::new(Thread {
            messages,
            files,
            html,
            rendered: Mutex::default(),
        });
        let mut map = self.0.lock().expect("cache");
        if map.len() >= THREADS_CACHED {
            map.clear();
        }
        map.insert(t.id, (t.updated_at, t.message_count, thread.clone()));
        Ok(thread)
    }
}

/// Link requests allowed per address and per 15 minutes.
pub(super) const LINKS_PER_WINDOW: u32 = 3;
pub(super) const LINK_WINDOW_MS: i64 = 15 * 60_000;
/// Addresses the link limiter holds at most.
pub(super) const LINK_KEYS: usize = 100_000;

pub(super) fn link_policy(n: u32) -> i64 {
    if n >= LINKS_PER_WINDOW {
        LINK_WINDOW_MS
    } else {
        0
    }
}

/// Rate-limits link requests per address: bounded, and a flood of other
/// addresses never makes it forget a recent one (see [`Throttle`]).
#[derive(Debug)]
pub struct LinkLimiter(crate::web::throttle::Throttle);

impl Default for LinkLimiter {
    fn default() -> Self {
        LinkLimiter(crate::web::throttle::Throttle::new(
            LINK_KEYS,
            LINK_WINDOW_MS,
            link_policy,
        ))
    }
}

impl LinkLimiter {
    /// Whether one more request under `key` at `now` is allowed (and counts it).
    pub fn allow(&self, key: &str, now: i64) -> bool {
        self.0.attempt(key, now).is_ok()
    }
}
