//! Sender verification from `Authentication-Results` (RFC 8601), as a pure
//! decision (SPEC §5.11). A From header is a claim; a mail is *verified*
//! for its From address when a server the mailbox trusts says DMARC passed
//! for that domain, or DKIM passed for a domain aligned with it. Only the
//! headers of trusted servers count (by `authserv-id`, or the topmost one
//! for providers that stamp their own without a stable id): anyone can
//! write an Authentication-Results header into the mail they send.

use serde::{Deserialize, Serialize};

/// Whose Authentication-Results a mailbox trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderTrust {
    /// The `authserv-id`s of the receiving servers that stamp results
    /// (Postfix with OpenDMARC or rspamd: its hostname; Gmail:
    /// `mx.google.com`). Case-insensitive.
    #[serde(default)]
    pub authserv_ids: Vec<String>,
    /// Trust the topmost Authentication-Results header whatever its id
    /// (Microsoft 365 and others that stamp their own and strip the sender's).
    #[serde(default)]
    pub topmost: bool,
}

impl SenderTrust {
    /// Whether anything is trusted at all.
    pub fn is_set(&self) -> bool {
        self.topmost || self.authserv_ids.iter().any(|i| !i.trim().is_empty())
    }
}

/// What could be told of a mail's sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A trusted server says DMARC passed, or aligned DKIM passed.
    Verified,
    /// Nothing trusted says either way.
    Unverified,
    /// A trusted server says DMARC or the aligned DKIM signature failed.
    Failed,
}

impl State {
    /// The word stored and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Verified => "verified",
            State::Unverified => "unverified",
            State::Failed => "failed",
        }
    }
}

/// The verdict on a mail's sender, with the reason shown to agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub state: State,
    pub reason: String,
}

impl Verification {
    /// Verified or not.
    pub fn is_verified(&self) -> bool {
        self.state == State::Verified
    }

    /// As stored on the message: `verified: dmarc=pass …`.
    pub fn stored(&self) -> String {
        format!("{}: {}", self.state.as_str(), self.reason)
    }

    fn new(state: State, reason: impl Into<String>) -> Self {
        Verification {
            state,
            reason: reason.into(),
        }
    }
}

/// One `method=result` of a header, with its properties (`header.from`, `header.d`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    pub method: String,
    pub result: String,
    pub props: Vec<(String, String)>,
}

impl MethodResult {
    fn prop(&self, name: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An Authentication-Results header read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResults {
    pub authserv_id: String,
    pub results: Vec<MethodResult>,
}

/// Drops RFC 5322 comments (`(…)`, nested) and unfolds lines.
fn without_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            '\r' | '\n' | '\t' if depth == 0 => out.push(' '),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Reads one header's value; `None` when it has no authserv-id.
pub fn parse(value: &str) -> Option<AuthResults> {
    if value.len() > 16 * 1024 {
        return None;
    }
    let clean = without_comments(value);
    let mut parts = clean.split(';');
    let head = parts.next()?.trim();
    // `authserv-id [version]`
    let authserv_id = head
        .split_whitespace()
        .next()?
        .trim_matches('"')
        .to_string();
    if authserv_id.is_empty() || authserv_id.contains('=') {
        return None;
    }
    let mut results = Vec::new();
    for part in parts.take(50) {
        let mut words = part.split_whitespace();
        let Some(first) = words.next() else { continue };
        let Some((method, result)) = first.split_once('=') else {
            continue;
        };
        // `dkim/1=pass`: a method may carry a version.
        let method = method.split('/').next().unwrap_or(method);
        let mut props = Vec::new();
        for w in words {
            if let Some((k, v)) = w.split_once('=')
                && k.contains('.')
            {
                props.push((k.to_ascii_lowercase(), v.trim_matches('"').to_string()));
            }
        }
        results.push(MethodResult {
            method: method.to_ascii_lowercase(),
            result: result.trim_matches('"').to_ascii_lowercase(),
            props,
        });
    }
    Some(AuthResults {
        authserv_id,
        results,
    })
}

/// Whether domains `a` and `b` are aligned in DMARC's relaxed sense: the
/// same, or one a subdomain of the other.
pub fn aligned(a: &str, b: &str) -> bool {
    let (a, b) = (
        a.trim_end_matches('.').to_ascii_lowercase(),
        b.trim_end_matches('.').to_ascii_lowercase(),
    );
    if a.is_empty() || b.is_empty() {
        return false;
    }
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

/// The domain a DKIM result speaks for: `header.d`, else `header.i`'s.
fn dkim_domain(r: &MethodResult) -> Option<&str> {
    r.prop("header.d")
        .or_else(|| r.prop("header.i").and_then(|i| i.rsplit('@').next()))
}

/// Decides whether the mail is verified for `from_domain`, given its
/// Authentication-Results header values top first (as the servers
/// prepended them) and what the mailbox trusts.
pub fn verify(headers: &[String], from_domain: &str, trust: &SenderTrust) -> Verification {
    verify_with(headers, from_domain, trust, None)
}

/// As [`verify`], with what postdesk found checking DKIM, SPF and DMARC
/// itself (`local`, for a mailbox that asks for it): a trusted server's
/// header is read first; without one, the local results decide.
pub fn verify_with(
    headers: &[String],
    from_domain: &str,
    trust: &SenderTrust,
    local: Option<&AuthResults>,
) -> Verification {
    let trusted = |id: &str| {
        trust
            .authserv_ids
            .iter()
            .any(|t| !t.trim().is_empty() && t.trim().eq_ignore_ascii_case(id))
    };
    // The first (topmost) header of a trusted server: a receiving server
    // prepends its own above anything the sender wrote.
    let chosen = if !trust.is_set() {
        None
    } else if trust.topmost {
        headers.first().and_then(|h| parse(h))
    } else {
        headers
            .iter()
            .filter_map(|h| parse(h))
            .find(|r| trusted(&r.authserv_id))
    };
    match (chosen, local) {
        (Some(ar), _) => decide(&ar, from_domain),
        (None, Some(local)) => decide(local, from_domain),
        (None, None) if !trust.is_set() => Verification::new(
            State::Unverified,
            "no trusted Authentication-Results server is configured for this mailbox",
        ),
        (None, None) => Verification::new(
            State::Unverified,
            "no Authentication-Results header from a trusted server",
        ),
    }
}

/// The verdict of one trusted set of results for `from_domain`.
fn decide(ar: &AuthResults, from_domain: &str) -> Verification {
    let by = &ar.authserv_id;
    let dmarc = ar.results.iter().find(|r| r.method == "dmarc");
    if let Some(d) = dmarc {
        let domain_ok = d
            .prop("header.from")
            .is_none_or(|f| aligned(f, from_domain));
        match d.result.as_str() {
            "pass" if domain_ok => {
                return Verification::new(
                    State::Verified,
                    format!("dmarc=pass for {from_domain} (by {by})"),
                );
            }
            "fail" if domain_ok => {
                return Verification::new(
                    State::Failed,
                    format!("dmarc=fail for {from_domain} (by {by})"),
                );
            }
            _ => {}
        }
    }
    let dkim: Vec<&MethodResult> = ar
        .results
        .iter()
        .filter(|r| r.method == "dkim" && dkim_domain(r).is_some_and(|d| aligned(d, from_domain)))
        .collect();
    if let Some(pass) = dkim.iter().find(|r| r.result == "pass") {
        return Verification::new(
            State::Verified,
            format!(
                "dkim=pass for {} aligned with {from_domain} (by {by})",
                dkim_domain(pass).unwrap_or_default()
            ),
        );
    }
    if dkim.iter().any(|r| r.result == "fail") {
        return Verification::new(
            State::Failed,
            format!("dkim=fail for {from_domain} (by {by})"),
        );
    }
    let seen: Vec<String> = ar
        .results
        .iter()
        .map(|r| format!("{}={}", r.method, r.result))
        .collect();
    let seen = if seen.is_empty() {
        "no results".to_string()
    } else {
        seen.join(" ")
    };
    Verification::new(
        State::Unverified,
        format!("no DMARC pass or aligned DKIM pass for {from_domain} ({seen}, by {by})"),
    )
}

/// The client a receiving server names in its `Received:` header, for SPF:
/// `(HELO name, address)` when the header was written `by` one of `hosts`
/// (the mailbox's own MX; any other Received line is the sender's claim).
/// Postfix: `from helo (rdns [192.0.2.1]) by mx.example (Postfix) …`;
/// Exim: `from rdns ([192.0.2.1] helo=helo) by mx.example with esmtp …`.
pub fn received_client(value: &str, hosts: &[String]) -> Option<(String, std::net::IpAddr)> {
    if value.len() > 4096 {
        return None;
    }
    let flat: String = value
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    let lower = flat.to_ascii_lowercase();
    let rest = lower.trim_start().strip_prefix("from ")?;
    let by_at = rest.find(" by ")?;
    let (from_part, after) = rest.split_at(by_at);
    let by = after[4..].split_whitespace().next()?.trim_end_matches(';');
    if !hosts
        .iter()
        .any(|h| !h.trim().is_empty() && h.trim().eq_ignore_ascii_case(by))
    {
        return None;
    }
    let mut helo = from_part.split_whitespace().next()?.to_string();
    if let Some(at) = from_part.find("helo=") {
        helo = from_part[at + 5..]
            .split(|c: char| c.is_whitespace() || c == ')')
            .next()
            .unwrap_or_default()
            .to_string();
    }
    let ip = from_part.split('[').skip(1).find_map(|chunk| {
        let inside = chunk.split(']').next()?;
        let inside = inside.strip_prefix("ipv6:").unwrap_or(inside);
        inside.parse::<std::net::IpAddr>().ok()
    })?;
    let helo = helo.trim_matches(|c| c == '[' || c == ']').to_string();
    Some((helo, ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[&str]) -> SenderTrust {
        SenderTrust {
            authserv_ids: ids.iter().map(|s| s.to_string()).collect(),
            topmost: false,
        }
    }

    fn h(v: &str) -> Vec<String> {
        vec![v.to_string()]
    }

    #[test]
    fn reads_the_common_stamps() {
        let gmail = "mx.google.com;\r\n       dkim=pass header.i=@example.org header.s=s1 header.b=abc;\r\n       spf=pass (google.com: domain of jane@example.org designates 1.2.3.4 as permitted sender) smtp.mailfrom=jane@example.org;\r\n       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.org";
        let ar = parse(gmail).unwrap();
        assert_eq!(ar.authserv_id, "mx.google.com");
        assert_eq!(
            ar.results
                .iter()
                .map(|r| r.method.as_str())
                .collect::<Vec<_>>(),
            ["dkim", "spf", "dmarc"]
        );
        assert_eq!(ar.results[2].prop("header.from"), Some("example.org"));
        let v = verify(&h(gmail), "example.org", &ids(&["mx.google.com"]));
        assert_eq!(v.state, State::Verified, "{v:?}");
        assert!(v.reason.contains("dmarc=pass"));
        // OpenDMARC's own header, versioned methods, comments in odd places.
        let odmarc = "mx.support.test (1) ; dmarc=pass (p=reject dis=none) header.from=Example.ORG";
        assert!(verify(&h(odmarc), "example.org", &ids(&["MX.support.test"])).is_verified());
        assert!(parse("; dkim=pass").is_none());
        assert!(parse("").is_none());
    }

    #[test]
    fn only_a_trusted_server_counts() {
        let forged = "evil.example; dmarc=pass header.from=example.org";
        let v = verify(&h(forged), "example.org", &ids(&["mx.support.test"]));
        assert_eq!(v.state, State::Unverified);
        // Nothing configured: nothing counts, and the reason says so.
        let v = verify(&h(forged), "example.org", &SenderTrust::default());
        assert_eq!(v.state, State::Unverified);
        assert!(v.reason.contains("no trusted"), "{}", v.reason);
        // The trusted server's header wins over a forged one below it.
        let both = vec![
            "mx.support.test; dmarc=fail header.from=example.org".to_string(),
            "mx.support.test; dmarc=pass header.from=example.org".to_string(),
        ];
        assert_eq!(
            verify(&both, "example.org", &ids(&["mx.support.test"])).state,
            State::Failed
        );
        // Topmost: the first header only, whatever its id.
        let top = SenderTrust {
            authserv_ids: vec![],
            topmost: true,
        };
        let m365 = vec![
            "spf=pass (sender IP is 1.2.3.4) smtp.mailfrom=example.org; dkim=pass (signature was verified) header.d=example.org;dmarc=pass action=none header.from=example.org;compauth=pass reason=100".to_string(),
        ];
        // Microsoft's header has no authserv-id before the first result.
        assert!(!verify(&m365, "example.org", &top).is_verified());
        let with_id = vec![
            "mx.microsoft.com 1; dmarc=pass action=none header.from=example.org".to_string(),
            "mx.support.test; dmarc=fail header.from=example.org".to_string(),
        ];
        assert!(verify(&with_id, "example.org", &top).is_verified());
    }

    #[test]
    fn dmarc_must_be_for_the_from_domain_and_dkim_aligned() {
        let trust = ids(&["mx"]);
        let other = "mx; dmarc=pass header.from=attacker.example";
        assert_eq!(
            verify(&h(other), "example.org", &trust).state,
            State::Unverified
        );
        let unaligned =
            "mx; dkim=pass header.d=attacker.example; spf=pass smtp.mailfrom=example.org";
        let v = verify(&h(unaligned), "example.org", &trust);
        assert_eq!(v.state, State::Unverified);
        assert!(v.reason.contains("spf=pass"), "{}", v.reason);
        let sub = "mx; dkim=pass header.d=mail.example.org";
        assert!(verify(&h(sub), "example.org", &trust).is_verified());
        let parent = "mx; dkim=pass header.i=@example.org";
        assert!(verify(&h(parent), "eu.example.org", &trust).is_verified());
        let lookalike = "mx; dkim=pass header.d=badexample.org";
        assert!(!verify(&h(lookalike), "example.org", &trust).is_verified());
        let failed = "mx; dkim=fail header.d=example.org";
        assert_eq!(
            verify(&h(failed), "example.org", &trust).state,
            State::Failed
        );
        let none = "mx; none";
        assert_eq!(
            verify(&h(none), "example.org", &trust).state,
            State::Unverified
        );
    }

    #[test]
    fn the_client_is_read_from_our_own_received_line_only() {
        let ours = vec!["mx.support.test".to_string()];
        let postfix = "from mail.example.org (mail.example.org [192.0.2.1])\r\n\tby mx.support.test (Postfix) with ESMTPS id 4Q1;\r\n\tMon, 7 Dec 2026 10:00:00 +0000";
        assert_eq!(
            received_client(postfix, &ours),
            Some(("mail.example.org".into(), "192.0.2.1".parse().unwrap()))
        );
        let exim = "from host.example.org ([2001:db8::5] helo=smtp.example.org)\n by MX.support.test with esmtps (TLS1.3) id 1x";
        assert_eq!(
            received_client(exim, &ours),
            Some(("smtp.example.org".into(), "2001:db8::5".parse().unwrap()))
        );
        let v6 =
            "from [IPv6:2001:db8::9] (unknown [IPv6:2001:db8::9]) by mx.support.test (Postfix)";
        assert_eq!(
            received_client(v6, &ours).map(|(_, ip)| ip),
            Some("2001:db8::9".parse().unwrap())
        );
        // A line the sender wrote, naming another server, or none at all.
        let theirs = "from evil (evil [198.51.100.1]) by relay.evil.example (Postfix)";
        assert_eq!(received_client(theirs, &ours), None);
        assert_eq!(received_client(postfix, &[]), None);
        assert_eq!(received_client("by mx.support.test", &ours), None);
        assert_eq!(
            received_client("from x (no address) by mx.support.test", &ours),
            None
        );
        assert_eq!(received_client(&"from [".repeat(5000), &ours), None);
    }

    #[test]
    fn local_results_decide_when_no_trusted_header_does() {
        let local = AuthResults {
            authserv_id: "postdesk".into(),
            results: vec![MethodResult {
                method: "dkim".into(),
                result: "pass".into(),
                props: vec![("header.d".into(), "example.org".into())],
            }],
        };
        let forged = h("evil.example; dmarc=fail header.from=example.org");
        let v = verify_with(
            &forged,
            "example.org",
            &SenderTrust::default(),
            Some(&local),
        );
        assert!(v.is_verified(), "{v:?}");
        assert!(v.reason.contains("by postdesk"), "{}", v.reason);
        // A trusted server's header still comes first.
        let stamped = h("mx; dmarc=fail header.from=example.org");
        let v = verify_with(&stamped, "example.org", &ids(&["mx"]), Some(&local));
        assert_eq!(v.state, State::Failed);
        // Unaligned local results verify nothing.
        let v = verify_with(&[], "other.example", &SenderTrust::default(), Some(&local));
        assert_eq!(v.state, State::Unverified);
    }

    #[test]
    fn hostile_values_are_bounded() {
        let long = format!("mx; {}", "dkim=pass header.d=x; ".repeat(10_000));
        assert!(parse(&long).is_none());
        let nested = format!("mx; dmarc=pass {}", "(".repeat(5000));
        let ar = parse(&nested).unwrap();
        assert_eq!(ar.results.len(), 1);
        assert_eq!(
            verify(&h(&"(".repeat(3000)), "example.org", &ids(&["mx"])).state,
            State::Unverified
        );
    }
}
