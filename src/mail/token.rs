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
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(format!("{purpose}:{number}").as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..10])
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
        // Constant-time comparison of the hex digests.
        let same = want
            .bytes()
            .zip(mac.to_ascii_lowercase().bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        same.then_some(n)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
