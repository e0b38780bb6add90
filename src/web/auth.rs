//! Browser sign-in: session cookies (random, stored only as a digest),
//! CSRF tokens bound to the session, and the portal's magic-link session.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::secrets::bytes_digest;
use crate::store::sessions::WebSession;
use crate::store::{Store, StoreError};

/// The session cookie's name.
pub const COOKIE: &str = "pd_session";
/// How long a portal session lasts.
pub const SESSION_MS: i64 = 7 * 24 * 3_600_000;

/// Random bytes as hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source");
    hex::encode(buf)
}

/// The value of a cookie in a request, if present.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The digest under which a request's session cookie is stored, if it
/// carries a well-formed one.
pub fn cookie_digest(headers: &HeaderMap) -> Option<String> {
    let value = cookie(headers, COOKIE)?;
    (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| bytes_digest(value.as_bytes()))
}

/// The signed-in session of a request, with its cookie's digest.
pub async fn current(
    store: &Store,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<(String, WebSession)>, StoreError> {
    let Some(digest) = cookie_digest(headers) else {
        return Ok(None);
    };
    Ok(store.session(&digest, now).await?.map(|s| (digest, s)))
}

/// Who a browser session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOf {
    /// A requester, scoped to one ticket (its link) or to all of theirs.
    Requester(i64, Option<i64>),
    Staff(i64),
}

/// How long a staff session lasts (a working day and a half; signing in
/// again each morning is expected of a console).
pub const STAFF_SESSION_MS: i64 = 36 * 3_600_000;

/// Starts a session for a requester, scoped to `ticket_id` when opened by
/// that ticket's link; returns the `Set-Cookie` value.
pub async fn start_requester_session(
    store: &Store,
    requester_id: i64,
    ticket_id: Option<i64>,
    secure: bool,
    now: i64,
) -> Result<HeaderValue, StoreError> {
    start_session(
        store,
        SessionOf::Requester(requester_id, ticket_id),
        secure,
        now,
    )
    .await
}

/// Starts a session; returns the `Set-Cookie` value.
pub async fn start_session(
    store: &Store,
    of: SessionOf,
    secure: bool,
    now: i64,
) -> Result<HeaderValue, StoreError> {
    let value = random_hex(32);
    let (requester_id, ticket_id, user_id, lasts) = match of {
        SessionOf::Requester(id, ticket) => (Some(id), ticket, None, SESSION_MS),
        SessionOf::Staff(id) => (None, None, Some(id), STAFF_SESSION_MS),
    };
    let session = WebSession {
        requester_id,
        ticket_id,
        user_id,
        csrf: random_hex(16),
        expires_at: now + lasts,
    };
    store
        .insert_session(&bytes_digest(value.as_bytes()), &session, now)
        .await?;
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        lasts / 1000
    );
    Ok(HeaderValue::from_str(&cookie).expect("an ASCII cookie"))
}

/// Whether a form's CSRF token is the session's (constant time).
pub fn csrf_ok(session: &WebSession, sent: &str) -> bool {
    let want = session.csrf.as_bytes();
    let got = sent.as_bytes();
    want.len() == got.len() && want.iter().zip(got).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others_and_csrf_compares_exactly() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; pd_session=abc ; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        let s = WebSession {
            requester_id: Some(1),
            ticket_id: None,
            user_id: None,
            csrf: "0123".into(),
            expires_at: 0,
        };
        assert!(csrf_ok(&s, "0123"));
        assert!(!csrf_ok(&s, "0124"));
        assert!(!csrf_ok(&s, "012"));
        assert!(!csrf_ok(&s, ""));
        assert_eq!(random_hex(32).len(), 64);
    }
}
