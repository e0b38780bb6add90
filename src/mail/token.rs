//! Signed tokens that tie a mail to a ticket: the reply token of a plus
//! address (`support+t42-…@`) and the ticket marker hidden in the body of
//! every mail postdesk sends (`[ref:TKT-42-…]`). HMAC-SHA256 with the
//! install's secret key, truncated to 80 bits.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The install's signing key.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(********)")
    }
}

impl SigningKey {
    /// A key from secret bytes (at least 32 expected).
    pub fn new(secret: &[u8]) -> Self {
        SigningKey(secret.to_vec())
    }

    fn mac(&self, purpose: &str, number: i64) -> String {
        self.mac_of(purpose, &number.to_string())
    }

    fn mac_of(&self, purpose: &str, data: &str) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(format!("{purpose}:{data}").as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..10])
    }

    /// The Message-ID of the `outbox_id`-th mail postdesk sends: the same on
    /// a retry (so a receiver can tell a resend), unique to this install.
    pub fn outbound_message_id(&self, outbox_id: i64, domain: &str) -> String {
        format!("<pd.{outbox_id}.{}@{domain}>", self.mac("msgid", outbox_id))
    }

    /// The outbox row a Message-ID of [`SigningKey::outbound_message_id`]
    /// names, if its signature holds (any domain).
    pub fn outbox_id_of(&self, message_id: &str) -> Option<i64> {
        let inner = message_id.trim().trim_start_matches('<');
        let (local, _) = inner.split_once('@')?;
        let mut parts = local.strip_prefix("pd.")?.splitn(2, '.');
        let (number, mac) = (parts.next()?, parts.next()?);
        self.check("msgid", number, mac)
    }

    /// The stable root of ticket `n`'s thread: first in every References.
    pub fn thread_root(&self, prefix: &str, n: i64, domain: &str) -> String {
        format!("<pd.{prefix}-{n}.{}@{domain}>", self.mac("root", n))
    }

    /// A portal sign-in token for one ticket and one person on it, valid
    /// until `expires` (seconds since the epoch): `42.7.1800000000.<mac>`.
    pub fn portal_token(&self, ticket_number: i64, requester_id: i64, expires: i64) -> String {
        let data = format!("{ticket_number}.{requester_id}.{expires}");
        let mac = self.mac_of("portal", &data);
        format!("{data}.{mac}")
    }

    /// Reads a portal token: `Ok` when signed and unexpired at `now`
    /// (seconds); `Err(Some(grant))` when signed but expired (the page can
    /// offer a fresh link), `Err(None)` when forged or garbled.
    pub fn verify_portal_token(
        &self,
        token: &str,
        now: i64,
    ) -> Result<PortalGrant, Option<PortalGrant>> {
        let mut parts = token.splitn(4, '.');
        let (Some(n), Some(r), Some(e), Some(mac)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(None);
        };
        let num = |s: &str| {
            (!s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<i64>().ok())
                .flatten()
        };
        let (Some(ticket_number), Some(requester_id), Some(expires)) = (num(n), num(r), num(e))
        else {
            return Err(None);
        };
        let want = self.mac_of("portal", &format!("{n}.{r}.{e}"));
        if mac.len() != want.len() || !constant_time_eq(&want, &mac.to_ascii_lowercase()) {
            return Err(None);
        }
        let grant = PortalGrant {
            ticket_number,
            requester_id,
            expires,
        };
        if now >= expires {
            Err(Some(grant))
        } else {
            Ok(grant)
        }
    }

    fn check(&self, purpose: &str, number: &str, mac: &str) -> Option<i64> {
        if number.is_empty()
            || number.len() > 18
            || !number.bytes().all(|b| b.is_ascii_digit())
            || mac.len() != 20
        {
            return None;
        }
        let n: i64 = number.parse().ok()?;
        let want = self.mac(purpose, n);
        constant_time_eq(&want, &mac.to_ascii_lowercase()).then_some(n)
    }

    /// The plus-address token for ticket number `n`: `t42-<20 hex>`.
    pub fn reply_token(&self, n: i64) -> String {
        format!("t{n}-{}", self.mac("reply", n))
    }

    /// The ticket number a reply token stands for, if its signature holds.
    pub fn verify_reply_token(&self, token: &str) -> Option<i64> {
        let (number, mac) = token.strip_prefix('t')?.split_once('-')?;
        self.check("reply", number, mac)
    }

    /// The plus-address token of agent `user_id`'s notifications about
    /// ticket number `n`: `a42-7-<20 hex>`. An agent's reply by mail counts
    /// only with their own token (SPEC §5.11).
    pub fn agent_token(&self, n: i64, user_id: i64) -> String {
        format!(
            "a{n}-{user_id}-{}",
            self.mac_of("agent", &format!("{n}.{user_id}"))
        )
    }

    /// The ticket number and agent an agent token stands for, if signed.
    pub fn verify_agent_token(&self, token: &str) -> Option<(i64, i64)> {
        let mut parts = token.strip_prefix('a')?.splitn(3, '-');
        let (n, user, mac) = (parts.next()?, parts.next()?, parts.next()?);
        let (n, user) = (digits(n)?, digits(user)?);
        let want = self.mac_of("agent", &format!("{n}.{user}"));
        (mac.len() == want.len() && constant_time_eq(&want, &mac.to_ascii_lowercase()))
            .then_some((n, user))
    }

    /// The VERP token of outbox row `outbox_id`'s envelope sender
    /// (`support+b-42-<20 hex>@…`): a delivery report counts only when it
    /// comes back to it (SPEC §5.12).
    pub fn bounce_token(&self, outbox_id: i64) -> String {
        format!("b-{outbox_id}-{}", self.mac("bounce", outbox_id))
    }

    /// The outbox row a VERP token names, if its signature holds.
    pub fn verify_bounce_token(&self, token: &str) -> Option<i64> {
        let (number, mac) = token.strip_prefix("b-")?.split_once('-')?;
        self.check("bounce", number, mac)
    }

    /// The token of a "How did we do?" link: ticket number `n`, asked of
    /// requester `requester_id` (`s-42-7-<20 hex>`).
    pub fn rating_token(&self, n: i64, requester_id: i64) -> String {
        let data = format!("{n}-{requester_id}");
        format!("s-{data}-{}", self.mac_of("rating", &data))
    }

    /// The (ticket number, requester) a rating token names, if its
    /// signature holds.
    pub fn verify_rating_token(&self, token: &str) -> Option<(i64, i64)> {
        let mut parts = token.strip_prefix("s-")?.splitn(3, '-');
        let (n, who, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if n.len() > 18 || who.len() > 18 {
            return None;
        }
        let (n, who): (i64, i64) = (n.parse().ok()?, who.parse().ok()?);
        let want = self.mac_of("rating", &format!("{n}-{who}"));
        (n > 0
            && who > 0
            && mac.len() == want.len()
            && constant_time_eq(&want, &mac.to_ascii_lowercase()))
        .then_some((n, who))
    }

    /// The marker hidden in outbound bodies: `[ref:TKT-42-<20 hex>]`.
    pub fn marker(&self, prefix: &str, n: i64) -> String {
        format!("[ref:{prefix}-{n}-{}]", self.mac("marker", n))
    }

    /// The first valid marker with this prefix in a text.
    pub fn find_marker(&self, text: &str, prefix: &str) -> Option<i64> {
        let mut rest = text;
        while let Some(at) = rest.find("[ref:") {
            let after = &rest[at + 5..];
            if let Some(end) = after.find(']').filter(|e| *e < 64) {
                let inner = &after[..end];
                let mut parts = inner.splitn(3, '-');
                if let (Some(p), Some(n), Some(mac)) = (parts.next(), parts.next(), parts.next())
                    && p.eq_ignore_ascii_case(prefix)
                    && let Some(n) = self.check("marker", n, mac)
                {
                    return Some(n);
                }
            }
            rest = after;
        }
        None
    }
}

/// A decimal number of at most 18 digits.
fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Compares two equally long digests without an early exit.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// What a valid portal token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortalGrant {
    pub ticket_number: i64,
    pub requester_id: i64,
    /// Seconds since the epoch.
    pub expires: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rating_tokens_name_their_ticket_and_requester_only() {
        let key = SigningKey::new(&[7; 32]);
        let t = key.rating_token(42, 7);
        assert_eq!(key.verify_rating_token(&t), Some((42, 7)));
        assert_eq!(
            key.verify_rating_token(&t.to_uppercase().replacen("S-", "s-", 1)),
            Some((42, 7))
        );
        let forged = t.replacen("s-42-7-", "s-43-7-", 1);
        assert_eq!(key.verify_rating_token(&forged), None);
        assert_eq!(SigningKey::new(&[8; 32]).verify_rating_token(&t), None);
        for bad in [
            "",
            "s-",
            "s-1-2",
            "s-x-2-00",
            "s-0-0-00000000000000000000",
            &format!("s-{}-1-0", "9".repeat(40)),
        ] {
            assert_eq!(key.verify_rating_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn tokens_verify_and_forgeries_fail() {
        let k = SigningKey::new(b"0123456789abcdef0123456789abcdef");
        let t = k.reply_token(42);
        assert_eq!(k.verify_reply_token(&t), Some(42));
        assert_eq!(k.verify_reply_token(&t.replace("t42", "t43")), None);
        assert_eq!(k.verify_reply_token("t42-00000000000000000000"), None);
        assert_eq!(k.verify_reply_token("garbage"), None);
        let other = SigningKey::new(b"another key another key another!");
        assert_eq!(other.verify_reply_token(&t), None);
        let body = format!("Hello\n\n{}\n", k.marker("TKT", 7));
        assert_eq!(k.find_marker(&body, "TKT"), Some(7));
        assert_eq!(k.find_marker(&body, "HD"), None);
        assert_eq!(k.find_marker("[ref:TKT-7-zzzz] [ref:", "TKT"), None);
    }

    #[test]
    fn agent_and_bounce_tokens_verify_and_do_not_stand_in_for_each_other() {
        let k = SigningKey::new(b"0123456789abcdef0123456789abcdef");
        let a = k.agent_token(42, 7);
        assert_eq!(k.verify_agent_token(&a), Some((42, 7)));
        assert_eq!(k.verify_agent_token(&a.replace("-7-", "-8-")), None);
        assert_eq!(k.verify_agent_token(&a.replace("a42", "a43")), None);
        assert_eq!(k.verify_reply_token(&a), None);
        let r = k.reply_token(42);
        assert_eq!(k.verify_agent_token(&r), None);
        let id = k.outbound_message_id(99, "example.test");
        assert_eq!(k.outbox_id_of(&id), Some(99));
        assert_eq!(k.outbox_id_of(&id.replace("pd.99", "pd.98")), None);
        assert_eq!(
            k.outbox_id_of(&k.thread_root("TKT", 99, "example.test")),
            None
        );
        let b = k.bounce_token(99);
        assert_eq!(k.verify_bounce_token(&b), Some(99));
        assert_eq!(k.verify_bounce_token(&b.replace("b-99", "b-98")), None);
        assert_eq!(k.verify_bounce_token("b-99-00000000000000000000"), None);
        assert_eq!(k.verify_reply_token(&b), None);
        assert_eq!(k.verify_agent_token("a1-2-"), None);
        assert_eq!(k.verify_agent_token("a--"), None);
    }

    #[test]
    fn portal_tokens_expire_and_cannot_be_retargeted() {
        let k = SigningKey::new(b"0123456789abcdef0123456789abcdef");
        let t = k.portal_token(42, 7, 1_000);
        let grant = k.verify_portal_token(&t, 999).unwrap();
        assert_eq!((grant.ticket_number, grant.requester_id), (42, 7));
        assert_eq!(k.verify_portal_token(&t, 1_000), Err(Some(grant)));
        assert_eq!(
            k.verify_portal_token(&t.replacen("42.", "43.", 1), 0),
            Err(None)
        );
        assert_eq!(
            k.verify_portal_token(&t.replace(".7.", ".8."), 0),
            Err(None)
        );
        assert_eq!(
            k.verify_portal_token(&t.replace("1000", "9999"), 0),
            Err(None)
        );
        assert_eq!(k.verify_portal_token("1.2.3", 0), Err(None));
        assert_eq!(k.verify_portal_token("a.b.c.d", 0), Err(None));
        let other = SigningKey::new(b"another key another key another!");
        assert_eq!(other.verify_portal_token(&t, 0), Err(None));
        assert_ne!(
            k.outbound_message_id(1, "x.org"),
            k.outbound_message_id(2, "x.org")
        );
        assert_eq!(
            k.thread_root("TKT", 5, "x.org"),
            k.thread_root("TKT", 5, "x.org")
        );
        assert!(k.thread_root("TKT", 5, "x.org").starts_with("<pd.TKT-5."));
    }
}
