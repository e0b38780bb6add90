//! What guards the console's sign-in (SPEC §7): who the client is (its
//! address, from `X-Forwarded-For` only behind a trusted proxy), whether a
//! sign-in form came from our own pages (login CSRF), throttles by client
//! and by account and client with growing waits instead of locking an
//! account for everyone, and a bound on concurrent password checks (each
//! argon2 check holds 19 MiB).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::AppState;
use super::throttle::{Throttle, doubling};

/// The client of a request: the peer, or the address a trusted proxy
/// forwarded for (the right-most untrusted hop of `X-Forwarded-For`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    /// The key a throttle counts this client under: its address, an IPv6
    /// client by its /64 (one host owns a whole /64).
    pub fn key(&self) -> String {
        match self.0 {
            Some(IpAddr::V4(ip)) => ip.to_string(),
            Some(IpAddr::V6(ip)) => {
                let s = ip.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            None => "unknown".into(),
        }
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("unknown"),
        }
    }
}

/// Whether `ip` is within `net` (`203.0.113.7`, `10.0.0.0/8`, `::1`, `fd00::/8`).
pub fn in_net(ip: IpAddr, net: &str) -> bool {
    let (addr, bits) = match net.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok()),
        None => (net, None),
    };
    let Ok(addr) = addr.trim().parse::<IpAddr>() else {
        return false;
    };
    match (ip, addr) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V4(_)) => a
            .to_ipv4_mapped()
            .is_some_and(|a| in_net(IpAddr::V4(a), net)),
        _ => false,
    }
}

/// The client address of a request from `peer` (pure): `X-Forwarded-For`
/// is read only when the peer is a trusted proxy, from the right, skipping
/// trusted hops.
pub fn client_of(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[String]) -> ClientAddr {
    let trusted_ip = |ip: IpAddr| trusted.iter().any(|n| in_net(ip, n));
    let Some(peer) = peer else {
        return ClientAddr(None);
    };
    if !trusted_ip(peer) {
        return ClientAddr(Some(peer));
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    ClientAddr(Some(
        hops.iter()
            .rev()
            .copied()
            .find(|ip| !trusted_ip(*ip))
            .unwrap_or(peer),
    ))
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(client_of(
            peer,
            &parts.headers,
            &state.settings().http.trusted_proxies,
        ))
    }
}

/// Whether a form post came from our own pages: a browser says where it
/// came from (`Sec-Fetch-Site`, else `Origin`); a cross-site form is
/// refused. A client that says neither (a script) is let through: login
/// CSRF needs a victim's browser, and every current one says.
pub fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    // Every current browser says `Sec-Fetch-Site`; it is the whole answer.
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    // Older ones send `Origin` on a form post; `null` is what our own
    // pages' no-referrer policy makes of it.
    let Some(origin) = headers
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null")
    else {
        return true;
    };
    let host_of = |url: &str| {
        url.split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or("").to_ascii_lowercase())
    };
    let Some(origin_host) = host_of(origin) else {
        return false;
    };
    let public = host_of(public_url.trim_end_matches('/'));
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    public.as_deref() == Some(origin_host.as_str()) || host.as_deref() == Some(origin_host.as_str())
}

/// Failed sign-ins from one client (any account) before waits start.
const CLIENT_FREE: u32 = 20;
/// Sign-ins to one account from one client before waits start.
const ACCOUNT_FREE: u32 = 3;
/// Windows and the longest waits.
const WINDOW_MS: i64 = 15 * 60_000;

fn client_policy(n: u32) -> i64 {
    doubling(n, CLIENT_FREE, 5 * 60_000)
}

fn account_policy(n: u32) -> i64 {
    doubling(n, ACCOUNT_FREE, WINDOW_MS)
}

/// The sign-in guard of one daemon.
#[derive(Debug)]
pub struct SignInGuard {
    by_client: Throttle,
    by_account: Throttle,
    checks: tokio::sync::Semaphore,
    /// How long a password check took lately (µs), for answers that skip one.
    typical_us: AtomicU64,
}

impl Default for SignInGuard {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        SignInGuard {
            by_client: Throttle::new(50_000, WINDOW_MS, client_policy),
            by_account: Throttle::new(50_000, WINDOW_MS, account_policy),
            checks: tokio::sync::Semaphore::new(cores),
            typical_us: AtomicU64::new(0),
        }
    }
}

/// What the guard says of a sign-in attempt before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead and check the password.
    Check,
    /// This client (for this account) must wait: answer as for a wrong password.
    Throttled,
}

impl SignInGuard {
    fn account_key(email: &str, client: &ClientAddr) -> String {
        format!("{}|{}", email.trim().to_ascii_lowercase(), client.key())
    }

    /// Counts an attempt (before its outcome, so parallel guesses cannot
    /// all be checked) and says whether it may be checked.
    pub fn admit(&self, email: &str, client: &ClientAddr, now: i64) -> Admission {
        let by_client = self.by_client.attempt(&client.key(), now);
        let by_account = self
            .by_account
            .attempt(&Self::account_key(email, client), now);
        if by_client.is_ok() && by_account.is_ok() {
            Admission::Check
        } else {
            Admission::Throttled
        }
    }

    /// A sign-in succeeded: its account's count from this client ends, and
    /// it does not count against the client.
    pub fn succeeded(&self, email: &str, client: &ClientAddr) {
        self.by_account.clear(&Self::account_key(email, client));
        self.by_client.refund(&client.key());
    }

    /// An attempt that was never checked (no turn came): it does not count.
    pub fn not_checked(&self, email: &str, client: &ClientAddr) {
        self.by_account.refund(&Self::account_key(email, client));
        self.by_client.refund(&client.key());
    }

    /// Waits for a turn to check a password: `None` when none came within
    /// `wait` (the answer is 429 with Retry-After).
    pub async fn turn(&self, wait: Duration) -> Option<tokio::sync::SemaphorePermit<'_>> {
        tokio::time::timeout(wait, self.checks.acquire())
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Checks `password` (its first 1,024 characters) against `hash` off
    /// the async threads, in a turn (see [`SignInGuard::turn`]): `None`
    /// when no turn came within `wait`.
    pub async fn verify(&self, password: &str, hash: String, wait: Duration) -> Option<bool> {
        let turn = self.turn(wait).await?;
        let password: String = password.chars().take(1024).collect();
        let started = std::time::Instant::now();
        let ok =
            tokio::task::spawn_blocking(move || crate::secrets::verify_password(&password, &hash))
                .await
                .unwrap_or(false);
        self.checked_in(started.elapsed());
        drop(turn);
        Some(ok)
    }

    /// Notes how long a password check took.
    pub fn checked_in(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let old = self.typical_us.load(Ordering::Relaxed);
        let new = if old == 0 { us } else { (old * 3 + us) / 4 };
        self.typical_us.store(new.max(1), Ordering::Relaxed);
    }

    /// How long a password check takes lately (`None` before the first):
    /// an answer that skips the check takes as long.
    pub fn typical(&self) -> Option<Duration> {
        match self.typical_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let h = headers(&[("x-forwarded-for", "198.51.100.9, 10.0.0.5")]);
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(client_of(Some(peer), &h, &[]).0, Some(peer));
        let trusted = vec!["10.0.0.0/8".to_string()];
        assert_eq!(
            client_of(Some(peer), &h, &trusted).0,
            Some("198.51.100.9".parse().unwrap())
        );
        let outside: IpAddr = "203.0.113.1".parse().unwrap();
        assert_eq!(client_of(Some(outside), &h, &trusted).0, Some(outside));
        assert_eq!(client_of(Some(peer), &headers(&[]), &trusted).0, Some(peer));
        assert!(in_net("::ffff:10.1.2.3".parse().unwrap(), "10.0.0.0/8"));
        assert!(in_net("fd00::1".parse().unwrap(), "fd00::/8"));
        assert!(!in_net("fe00::1".parse().unwrap(), "fd00::/8"));
        assert!(!in_net("10.0.0.1".parse().unwrap(), "garbage"));
        let v6 = ClientAddr(Some("2001:db8:1:2:3:4:5:6".parse().unwrap()));
        assert_eq!(v6.key(), "2001:db8:1:2::/64");
    }

    #[test]
    fn cross_site_sign_in_forms_are_refused() {
        let public = "https://desk.example.test";
        assert!(same_origin(&headers(&[]), public));
        assert!(same_origin(
            &headers(&[
                ("sec-fetch-site", "same-origin"),
                ("origin", "https://desk.example.test")
            ]),
            public
        ));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            public
        ));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "same-site")]),
            public
        ));
        assert!(!same_origin(
            &headers(&[("origin", "https://evil.example")]),
            public
        ));
        // Our own pages' no-referrer policy makes Chromium send `Origin: null`.
        assert!(same_origin(
            &headers(&[("origin", "null"), ("sec-fetch-site", "same-origin")]),
            public
        ));
        assert!(!same_origin(
            &headers(&[("origin", "null"), ("sec-fetch-site", "cross-site")]),
            public
        ));
        assert!(same_origin(
            &headers(&[
                ("origin", "http://127.0.0.1:8080"),
                ("host", "127.0.0.1:8080")
            ]),
            public
        ));
    }

    #[test]
    fn the_owner_elsewhere_is_not_held_back_by_an_attack_on_their_account() {
        let g = SignInGuard::default();
        let attacker = ClientAddr(Some("203.0.113.66".parse().unwrap()));
        let owner = ClientAddr(Some("198.51.100.7".parse().unwrap()));
        for _ in 0..40 {
            let _ = g.admit("admin@example.test", &attacker, 0);
        }
        assert_eq!(
            g.admit("admin@example.test", &attacker, 1),
            Admission::Throttled
        );
        assert_eq!(g.admit("Admin@Example.test", &owner, 1), Admission::Check);
        g.succeeded("admin@example.test", &owner);
        // Many successful sign-ins behind one address never throttle it.
        let office = ClientAddr(Some("192.0.2.1".parse().unwrap()));
        for i in 0..100 {
            let who = format!("agent{i}@example.test");
            assert_eq!(g.admit(&who, &office, 2), Admission::Check);
            g.succeeded(&who, &office);
        }
    }
}
