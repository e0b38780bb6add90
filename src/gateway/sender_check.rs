//! DKIM, SPF and DMARC checked by postdesk itself (SPEC §5.11), for
//! mailboxes that no trusted server stamps results for
//! (`verify_in_process`). The checks are the Stalwart project's
//! `mail-auth`; DNS goes through hickory's resolver with a timeout and a
//! cache (`[dns]`). What they find is written as an [`AuthResults`], the
//! same shape as a trusted server's header, so one pure decision
//! (`mail::auth::verify_with`) reads both.
//!
//! This is I/O at the edge of the gateway: the processor runs it for a
//! batch's mails at once, bounded by one deadline, before it opens the
//! batch's transaction. A sender controls the DNS of its own domain, so a
//! domain whose lookups did not answer in time is remembered for a while
//! and not waited for again: an attacker's slow name server costs the
//! gateway one timeout, not one per mail.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::FutureExt;
use mail_auth::dmarc::Alignment;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::hickory_resolver::config::{
    NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, DkimResult, DmarcResult, MessageAuthenticator, SpfOutput, SpfResult,
};

use crate::config::DnsSettings;
use crate::mail::auth::{AuthResults, MethodResult, aligned, received_client};

/// The authserv-id of results postdesk found itself (shown in reasons:
/// "dkim=pass … (by postdesk)"). A header a sender writes under this name
/// counts for nothing: local results never come from the mail's headers.
pub const LOCAL_ID: &str = "postdesk";

/// DKIM signatures checked per mail (each costs a lookup); the rest are
/// ignored. Real mail carries one to three.
const MAX_SIGNATURES: usize = 5;

/// How long a domain whose lookups timed out is not waited for again.
const SLOW_FOR: Duration = Duration::from_secs(600);

/// Domains remembered as slow, at most (then the oldest are forgotten).
const SLOW_MAX: usize = 10_000;

/// Why the checker could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SenderCheckError {
    #[error("dns.servers: {0} is not IP or IP:PORT")]
    BadServer(String),
    #[error("the system's DNS configuration (/etc/resolv.conf) could not be read: {0}")]
    SystemConf(String),
}

/// The in-process checker: one resolver (and its cache) per daemon.
pub struct SenderCheck {
    auth: MessageAuthenticator,
    timeout: Duration,
    /// Domains (their last two labels) whose lookups timed out, and when.
    slow: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for SenderCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderCheck")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SenderCheck {
    /// A checker resolving through `settings.servers` (UDP, then TCP for
    /// long answers), or the system's resolvers when none are named.
    pub fn new(settings: &DnsSettings) -> Result<Self, SenderCheckError> {
        let servers = settings
            .server_addrs()
            .map_err(SenderCheckError::BadServer)?;
        let mut opts = ResolverOpts::default();
        opts.timeout = settings.timeout.0;
        opts.attempts = 1;
        opts.cache_size = settings.cache_size.max(16);
        let config = if servers.is_empty() {
            let (config, _) = mail_auth::hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| SenderCheckError::SystemConf(e.to_string()))?;
            config
        } else {
            let mut config = ResolverConfig::default();
            for addr in servers {
                config.add_name_server(NameServerConfig::new(addr, ProtocolConfig::Udp));
                config.add_name_server(NameServerConfig::new(addr, ProtocolConfig::Tcp));
            }
            config
        };
        let auth = MessageAuthenticator::new(config, opts)
            .map_err(|e| SenderCheckError::SystemConf(e.to_string()))?;
        Ok(SenderCheck {
            auth,
            timeout: settings.timeout.0,
            slow: Mutex::new(HashMap::new()),
        })
    }

    /// A checker of name servers at `servers` (tests, tools).
    pub fn with_servers(
        servers: &[SocketAddr],
        timeout: Duration,
    ) -> Result<Self, SenderCheckError> {
        SenderCheck::new(&DnsSettings {
            servers: servers.iter().map(|s| s.to_string()).collect(),
            timeout: crate::domain::Span(timeout),
            ..DnsSettings::default()
        })
    }

    /// The results of every mail when no checker could be built.
    pub fn unavailable(why: &str) -> AuthResults {
        only(
            "dkim",
            "temperror",
            &format!("in-process verification is unavailable: {why}"),
        )
    }

    /// Checks the mails `(raw bytes, the mailbox's receiving hosts)` side
    /// by side, all within one timeout; each gets its results in order.
    pub async fn check_all(&self, mails: &[(&[u8], &[String])]) -> Vec<AuthResults> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let checks = mails.iter().map(|(raw, hosts)| async move {
            let guarded = std::panic::AssertUnwindSafe(self.check(raw, hosts)).catch_unwind();
            match tokio::time::timeout_at(deadline, guarded).await {
                Ok(Ok(results)) => results,
                Ok(Err(_)) => only("dkim", "temperror", "the check failed (a bug in postdesk)"),
                Err(_) => {
                    self.remember_slow(raw);
                    only(
                        "dkim",
                        "temperror",
                        &format!("DNS did not answer within {:?}", self.timeout),
                    )
                }
            }
        });
        futures::future::join_all(checks).await
    }

    /// Checks one mail: its DKIM signatures, SPF for the client our own
    /// server's Received line names, and the From domain's DMARC policy.
    ///
    /// Long because it runs DKIM, SPF and DMARC in the order each needs the one before,
    /// each with its own timeouts and outcome.
    pub async fn check(&self, raw: &[u8], hosts: &[String]) -> AuthResults {
        let Some(mut message) = AuthenticatedMessage::parse(raw) else {
            return only("dkim", "permerror", "the mail's headers could not be read");
        };
        message.dkim_headers.truncate(MAX_SIGNATURES);
        let from_domain = message
            .from
            .first()
            .and_then(|f| f.rsplit_once('@'))
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        if self.is_slow(&from_domain)
            || message
                .dkim_headers
                .iter()
                .filter_map(|h| h.header.as_ref().ok())
                .any(|s| self.is_slow(&s.d))
        {
            return only(
                "dkim",
                "temperror",
                "this domain's DNS did not answer in time recently",
            );
        }
        let dkim = self.auth.verify_dkim(&message).await;
        let mut results = Vec::new();
        for out in &dkim {
            let Some(sig) = out.signature() else { continue };
            let (result, why) = dkim_word(out.result());
            let mut props = vec![
                ("header.d".to_string(), sig.d.to_ascii_lowercase()),
                ("header.s".to_string(), sig.s.clone()),
            ];
            if !why.is_empty() {
                props.push(("reason".to_string(), why));
            }
            results.push(MethodResult {
                method: "dkim".into(),
                result: result.into(),
                props,
            });
        }
        if dkim.is_empty() {
            results.push(MethodResult {
                method: "dkim".into(),
                result: "none".into(),
                props: Vec::new(),
            });
        }

        // SPF: the client our own receiving server names, and the envelope
        // sender it recorded (Return-Path).
        let mail_from = header(&message, "Return-Path")
            .map(|v| {
                v.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        let client = message
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"Received"))
            .find_map(|(_, v)| received_client(&String::from_utf8_lossy(v), hosts));
        let spf = match &client {
            Some((helo, ip)) => {
                let host = hosts.first().map(String::as_str).unwrap_or("localhost");
                let sender = if mail_from.contains('@') {
                    mail_from.clone()
                } else {
                    format!("postmaster@{helo}")
                };
                let out = self
                    .auth
                    .verify_spf(SpfParameters::verify_mail_from(*ip, helo, host, &sender))
                    .await;
                results.push(MethodResult {
                    method: "spf".into(),
                    result: spf_word(out.result()).into(),
                    props: vec![("smtp.mailfrom".to_string(), sender.clone())],
                });
                Some((out, sender))
            }
            None => {
                results.push(MethodResult {
                    method: "spf".into(),
                    result: "none".into(),
                    props: vec![(
                        "reason".to_string(),
                        "no Received line of our own server names the client".to_string(),
                    )],
                });
                None
            }
        };

        // DMARC: the From domain's policy, and whether an aligned DKIM or
        // SPF pass meets it.
        if !from_domain.is_empty() {
            let none_spf = SpfOutput::new(String::new());
            let (spf_out, mail_from_domain) = match &spf {
                Some((out, sender)) => (
                    out,
                    sender.rsplit_once('@').map(|(_, d)| d).unwrap_or_default(),
                ),
                None => (&none_spf, ""),
            };
            let output = self
                .auth
                .verify_dmarc(DmarcParameters::new(
                    &message,
                    &dkim,
                    mail_from_domain,
                    spf_out,
                ))
                .await;
            let result = match output.dmarc_record() {
                Some(record) => {
                    let fits = |d: &str, how: &Alignment| match how {
                        Alignment::Strict => d.eq_ignore_ascii_case(&from_domain),
                        Alignment::Relaxed => aligned(d, &from_domain),
                    };
                    let dkim_ok = dkim.iter().any(|o| {
                        o.result() == &DkimResult::Pass
                            && o.signature().is_some_and(|s| fits(&s.d, &record.adkim))
                    });
                    let spf_ok =
                        spf_out.result() == SpfResult::Pass && fits(mail_from_domain, &record.aspf);
                    if dkim_ok || spf_ok { "pass" } else { "fail" }
                }
                None => match output.dkim_result() {
                    DmarcResult::TempError(_) => "temperror",
                    DmarcResult::PermError(_) => "permerror",
                    _ => "none",
                },
            };
            results.push(MethodResult {
                method: "dmarc".into(),
                result: result.into(),
                props: vec![("header.from".to_string(), from_domain.clone())],
            });
        }
        AuthResults {
            authserv_id: LOCAL_ID.into(),
            results,
        }
    }

    fn is_slow(&self, domain: &str) -> bool {
        if domain.is_empty() {
            return false;
        }
        let key = base_domain(domain);
        let mut slow = self.slow.lock().unwrap_or_else(|p| p.into_inner());
        match slow.get(&key) {
            Some(at) if at.elapsed() < SLOW_FOR => true,
            Some(_) => {
                slow.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Remembers the domains of a mail whose check timed out.
    fn remember_slow(&self, raw: &[u8]) {
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            return;
        };
        let mut domains: Vec<String> = message
            .dkim_headers
            .iter()
            .take(MAX_SIGNATURES)
            .filter_map(|h| h.header.as_ref().ok().map(|s| s.d.clone()))
            .collect();
        if let Some((_, d)) = message.from.first().and_then(|f| f.rsplit_once('@')) {
            domains.push(d.to_string());
        }
        let mut slow = self.slow.lock().unwrap_or_else(|p| p.into_inner());
        if slow.len() >= SLOW_MAX {
            slow.retain(|_, at| at.elapsed() < SLOW_FOR);
            if slow.len() >= SLOW_MAX {
                slow.clear();
            }
        }
        let now = Instant::now();
        for d in domains {
            slow.insert(base_domain(&d), now);
        }
    }
}

/// The last two labels of a domain: a sender controls every name below
/// its own domain, so slowness is remembered for all of them at once.
fn base_domain(domain: &str) -> String {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = d.rsplit('.').take(2).collect();
    labels.into_iter().rev().collect::<Vec<_>>().join(".")
}

/// The first value of header `name`.
fn header(message: &AuthenticatedMessage<'_>, name: &str) -> Option<String> {
    message
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

/// Results of one method only, with a reason.
fn only(method: &str, result: &str, reason: &str) -> AuthResults {
    AuthResults {
        authserv_id: LOCAL_ID.into(),
        results: vec![MethodResult {
            method: method.into(),
            result: result.into(),
            props: vec![("reason".to_string(), reason.to_string())],
        }],
    }
}

fn dkim_word(r: &DkimResult) -> (&'static str, String) {
    match r {
        DkimResult::Pass => ("pass", String::new()),
        DkimResult::Neutral(e) => ("neutral", e.to_string()),
        DkimResult::Fail(e) => ("fail", e.to_string()),
        DkimResult::PermError(e) => ("permerror", e.to_string()),
        DkimResult::TempError(e) => ("temperror", e.to_string()),
        DkimResult::None => ("none", String::new()),
    }
}

fn spf_word(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowness_is_remembered_for_the_whole_domain() {
        assert_eq!(
            base_domain("sel._domainkey.a.b.evil.example."),
            "evil.example"
        );
        assert_eq!(base_domain("Example"), "example");
        let check =
            SenderCheck::with_servers(&["127.0.0.1:9".parse().unwrap()], Duration::from_millis(50))
                .unwrap();
        let mail = b"From: x@sub.evil.example\r\nDKIM-Signature: v=1; a=rsa-sha256; d=k.evil.example; s=s; h=from; bh=AAAA; b=AAAA\r\n\r\nhi\r\n";
        assert!(!check.is_slow("other.evil.example"));
        check.remember_slow(mail);
        assert!(check.is_slow("other.evil.example"));
        assert!(!check.is_slow("example.org"));
    }
}
