//! Is a mail from a person, an auto-responder, or a bounce? (SPEC §5.5, §5.8)
//! A pure function over the parsed mail.

use serde::Serialize;

use super::ParsedMail;

/// What kind of mail this is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    Human,
    AutoReply,
    Bounce,
}

/// What a bounce says about the mail it returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BounceInfo {
    /// Message-ID of the returned mail, if it could be found.
    pub original_message_id: Option<String>,
    /// The addresses that failed.
    pub recipients: Vec<String>,
    /// Whether the failure is permanent (5.x.x).
    pub permanent: bool,
}

/// Subjects of bounces from the common servers, lower case.
const BOUNCE_SUBJECTS: [&str; 26] = [
    "permanent delivery failure",
    "non-delivery",
    "undelivered mail returned to sender",
    "delivery status notification (failure)",
    "delivery status notification (delay)",
    "delivery status notification",
    "mail delivery failed",
    "mail delivery failure",
    "undeliverable:",
    "undeliverable mail",
    "undelivered mail",
    "failure notice",
    "returned mail",
    "delivery failure",
    "delivery notification",
    "message delivery failure",
    "mail system error",
    "non remis",
    "unzustellbar",
    "nondeliverable",
    "could not send message",
    "delivery has failed",
    "mail could not be delivered",
    "message not delivered",
    "undeliverable",
    "メールエラー",
];

/// Subject starts of out-of-office and other auto-replies, lower case.
const AUTO_REPLY_SUBJECTS: [&str; 16] = [
    "auto:",
    "automatic reply",
    "autoreply",
    "auto-reply",
    "auto reply",
    "out of office",
    "out of the office",
    "abwesenheitsnotiz",
    "automatische antwort",
    "réponse automatique",
    "respuesta automática",
    "risposta automatica",
    "autosvar",
    "automatisch antwoord",
    "on vacation",
    "away from the office",
];

/// The sender's address in lower case: the parsed one, or the raw `From:`
/// when it did not parse (`<Postmaster\@example.com@relay>`,
/// `<"System Administrator"@example.com>` are seen in real bounces).
fn sender(mail: &ParsedMail) -> String {
    mail.from
        .as_ref()
        .map(|f| f.email.as_str().to_string())
        .unwrap_or_else(|| mail.signals.from_raw.to_ascii_lowercase())
}

/// The local part of a sender, without the quotes, angle brackets and
/// backslashes a broken `From:` leaves around it.
fn local_part(sender: &str) -> &str {
    let local = match sender.rfind('<') {
        Some(at) => &sender[at + 1..],
        None => sender,
    };
    local
        .split('@')
        .next()
        .unwrap_or_default()
        .trim_matches(|c: char| c == '"' || c == '\\' || c == '<' || c.is_whitespace())
}

fn is_mailer_daemon(sender: &str) -> bool {
    let local = local_part(sender);
    local.contains("mailer-daemon")
        || local == "postmaster"
        || local == "post_master"
        || local.contains("mail-daemon")
        || local == "mdaemon"
        || sender.contains("mailer-daemon")
}

/// A sender that is a mail system rather than a person: an SMTP service,
/// a mail server, a virus scanner on the gateway. Such a sender writing
/// under a bounce subject is a bounce; alone it is not enough (a person
/// may sit behind `smtp-admin@`).
fn is_mail_system(sender: &str) -> bool {
    let local = local_part(sender);
    [
        "smtp",
        "mailserver",
        "mail_service",
        "mail-service",
        "mailservice",
        "antivirus",
    ]
    .iter()
    .any(|s| local.contains(s))
        || local == "system administrator"
}

/// Classifies a mail; for a bounce, also says what it returns.
pub fn classify(mail: &ParsedMail) -> (Classification, Option<BounceInfo>) {
    let s = &mail.signals;
    let subject = mail.subject.trim().to_lowercase();
    let dsn = s
        .report_type
        .as_deref()
        .is_some_and(|t| t.contains("delivery-status"))
        || mail
            .report
            .as_ref()
            .is_some_and(|r| !r.recipients.is_empty());
    let bounce_subject = BOUNCE_SUBJECTS.iter().any(|b| subject.contains(b));
    let sender = sender(mail);
    let daemon = is_mailer_daemon(&sender);
    // Amazon SES reports bounces as SNS notifications with a JSON body.
    let ses = subject == "aws notification message" && mail.text.contains("notificationType");
    let is_bounce = dsn
        // SES bounce, complaint and delivery notices are all delivery reports.
        || ses
        || s.list_admin_notice
        // A mailer daemon writes only about delivery (failures, delays, loops).
        || daemon
        || (s.daemon_return_path && (bounce_subject || s.report_type.is_some()))
        || (s.returned_message && (bounce_subject || s.null_return_path))
        || !s.x_failed_recipients.is_empty()
        || (bounce_subject
            && (s.null_return_path
                || is_mail_system(&sender)
                || s.auto_submitted.is_some()
                || mail.report.is_some()
                || s.precedence.is_some()));
    if is_bounce {
        return (Classification::Bounce, Some(bounce_info(mail)));
    }
    let auto_submitted = s
        .auto_submitted
        .as_deref()
        .is_some_and(|v| !v.is_empty() && !v.starts_with("no"));
    let precedence = s.precedence.as_deref().is_some_and(|p| {
        ["bulk", "junk", "list", "auto_reply", "auto-reply"]
            .iter()
            .any(|x| p.starts_with(x))
    });
    let auto_subject = AUTO_REPLY_SUBJECTS.iter().any(|a| subject.starts_with(a));
    let report = s.report_type.is_some()
        // Hotmail's complaint feedback (JMRP): the reported mail attached.
        || (s.returned_message && subject.starts_with("complaint about message from"));
    if auto_submitted
        || s.x_autoreply
        || s.x_autorespond
        || precedence
        || s.null_return_path
        || auto_subject
        || report
    {
        return (Classification::AutoReply, None);
    }
    (Classification::Human, None)
}

fn bounce_info(mail: &ParsedMail) -> BounceInfo {
    let mut info = BounceInfo::default();
    if let Some(r) = &mail.report {
        info.original_message_id = r.original_message_id.clone();
        for (recipient, status, action) in &r.recipients {
            info.recipients.push(recipient.to_lowercase());
            if status.as_deref().is_some_and(|s| s.starts_with('5'))
                || action.as_deref() == Some("failed") && status.is_none()
            {
                info.permanent = true;
            }
        }
    }
    for r in &mail.signals.x_failed_recipients {
        let r = r.trim_matches(['<', '>']).to_lowercase();
        if !info.recipients.contains(&r) {
            info.recipients.push(r);
        }
    }
    if mail.report.as_ref().is_none_or(|r| r.recipients.is_empty()) {
        // Plain-text bounces: a 5xx reply code or a 5.x.x status anywhere in the text.
        info.permanent = permanent_in_text(&mail.text);
        if info.recipients.is_empty() {
            info.recipients = addresses_in_text(&mail.text);
        }
    }
    info
}

fn permanent_in_text(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(5).enumerate().any(|(i, w)| {
        let boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric() && bytes[i - 1] != b'.';
        let enhanced = w[0] == b'5'
            && w[1] == b'.'
            && w[2].is_ascii_digit()
            && w[3] == b'.'
            && w[4].is_ascii_digit();
        let code = w[0] == b'5'
            && w[1].is_ascii_digit()
            && w[2].is_ascii_digit()
            && (w[3] == b' ' || w[3] == b'-')
            && w[1] <= b'5';
        boundary && (enhanced || code)
    }) || {
        let lower = text.to_lowercase();
        [
            "user unknown",
            "no such user",
            "mailbox unavailable",
            "does not exist",
            "permanent error",
            "permanently",
        ]
        .iter()
        .any(|p| lower.contains(p))
    }
}

fn addresses_in_text(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in text.split(|c: char| c.is_whitespace() || "<>()[];:,\"'".contains(c)) {
        if word.contains('@')
            && let Ok(a) = word
                .trim_matches('.')
                .parse::<crate::domain::EmailAddress>()
            && !a.as_str().starts_with("mailer-daemon")
            && !out.iter().any(|o| o == a.as_str())
        {
            out.push(a.to_string());
            if out.len() >= 10 {
                break;
            }
        }
    }
    out
}

/// The loop guard's key for a mail's words: a digest of its letters only
/// (case folded; digits, punctuation, spacing dropped), so that an
/// automated answer repeating itself under changing numbers, dates and
/// addresses has one key. `None` for text too short to tell people's mails
/// apart (fewer than 20 letters: "Thanks!" from many people is no loop).
pub fn content_key(text: &str) -> Option<String> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut letters = 0usize;
    let mut buf = [0u8; 4];
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        for l in c.to_lowercase() {
            hasher.update(l.encode_utf8(&mut buf).as_bytes());
            letters += 1;
        }
    }
    (letters >= 20).then(|| hex::encode(&hasher.finalize()[..16]))
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_content_key_sees_the_same_words_through_numbers_and_spacing() {
        let a = content_key("Thanks, your mail has been received. Ref 4711, 2026-12-07.");
        let b = content_key("THANKS your mail has  been\r\nreceived!  Ref 9, 2027-01-01");
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_ne!(a, content_key("Thanks, your mail has been read. Ref 4711."));
        // Too short to tell people apart.
        assert_eq!(content_key("Thanks! 12345"), None);
        assert_eq!(content_key(""), None);
        // Other scripts count as letters.
        assert!(content_key("Спасибо, ваше письмо получено и прочитано").is_some());
    }
    use super::*;
    use crate::mail::parse;

    fn kind(raw: &str) -> Classification {
        classify(&parse(raw.replace('\n', "\r\n").as_bytes()).unwrap()).0
    }

    #[test]
    fn people_are_human_even_with_outlook_suppress_headers() {
        assert_eq!(
            kind("From: a@b.org\nSubject: Help\nX-Auto-Response-Suppress: All\n\nHi\n"),
            Classification::Human
        );
        assert_eq!(
            kind("From: a@b.org\nSubject: x\nAuto-Submitted: no\n\nHi\n"),
            Classification::Human
        );
    }

    #[test]
    fn auto_replies_by_header_and_subject() {
        for raw in [
            "From: a@b.org\nSubject: x\nAuto-Submitted: auto-replied\n\nAway\n",
            "From: a@b.org\nSubject: x\nX-Autoreply: yes\n\nAway\n",
            "From: a@b.org\nSubject: x\nPrecedence: bulk\n\nAway\n",
            "From: a@b.org\nSubject: Automatic reply: Your ticket\n\nAway\n",
            "From: a@b.org\nSubject: x\nReturn-Path: <>\n\nAway\n",
        ] {
            assert_eq!(kind(raw), Classification::AutoReply, "{raw}");
        }
    }

    #[test]
    fn bounces_known_by_their_envelope_sender_or_returned_message() {
        for raw in [
            // A mailer daemon writes only about delivery, whatever the subject.
            "From: MAILER-DAEMON@mx.example.org\nSubject: Delayed Mail (still being retried)\n\nLater\n",
            "From: post_master@vtext.example.com\nSubject: Re:Test message\n\nError\n",
            // The envelope sender names the daemon; the From does not.
            "Return-Path: <MAILER-DAEMON@mx.example.com>\nFrom: Mail Delivery System <m@mx.example.com>\nSubject: Delivery status notification\n\nx\n",
            // An empty envelope sender and the returned mail attached.
            "Return-Path: <>\nFrom: no-reply@isp.example.jp\nSubject: Mail\nContent-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Type: text/plain\n\nerror\n--B\nContent-Type: message/rfc822\n\nFrom: me@example.jp\nSubject: hi\n\nhi\n--B--\n",
            // A list manager's notice.
            "From: neko-admin@example.org\nX-MLServer: fml [fml 4.0.3]\nSubject: You are not member\n\nx\n",
            "From: MMSC <sysadmin@m01.example.com>\nReturn-Path: <>\nSubject: Undeliverable Message\n\nx\n",
        ] {
            assert_eq!(kind(raw), Classification::Bounce, "{raw}");
        }
        // A complaint feedback report is automated, not a bounce.
        assert_eq!(
            kind(
                "From: staff@hotmail.com\nSubject: complaint about message from 192.0.2.222\nContent-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Type: message/rfc822\n\nFrom: me@example.org\nSubject: hi\n\nhi\n--B--\n"
            ),
            Classification::AutoReply
        );
        // A person forwarding a bounce is a person.
        assert_eq!(
            kind(
                "From: Jane <jane@example.jp>\nSubject: Fwd: Returned mail: see transcript\n\nLook\n"
            ),
            Classification::Human
        );
    }

    #[test]
    fn delivery_reports_are_permanent_bounces_with_the_original_id() {
        let raw = "From: MAILER-DAEMON@mx.example.org\nSubject: Undelivered Mail Returned to Sender\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n--B\nContent-Type: text/plain\n\n\
I'm sorry.\n--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; gone@example.org\n\
Action: failed\nStatus: 5.1.1\n\n--B\nContent-Type: text/rfc822-headers\n\nMessage-ID: <sent-1@postdesk>\nSubject: hi\n\n--B--\n";
        let m = parse(raw.replace('\n', "\r\n").as_bytes()).unwrap();
        let (c, info) = classify(&m);
        assert_eq!(c, Classification::Bounce);
        let info = info.unwrap();
        assert_eq!(
            info.original_message_id.as_deref(),
            Some("<sent-1@postdesk>")
        );
        assert_eq!(info.recipients, vec!["gone@example.org"]);
        assert!(info.permanent);
    }

    #[test]
    fn customers_asking_about_deliveries_are_people() {
        let raw = "From: jane@example.org\nSubject: Delivery status of my order\n\nThe tracking page says it does not exist.\n";
        assert_eq!(kind(raw), Classification::Human);
        let raw = "From: jane@example.org\nSubject: Returned mail?\n\nYour letter came back, the address is permanently closed.\n";
        assert_eq!(
            kind(raw),
            Classification::Human,
            "no automation sign at all: a person"
        );
    }

    #[test]
    fn mail_systems_under_a_bounce_subject_are_bounces() {
        for (from, subject) in [
            (
                "E500_SMTP_Mail_Service@example.org",
                "Returned Mail - Error During Delivery",
            ),
            (
                "Symantec_AntiVirus_for_SMTP_Gateways@x.org",
                "Delivery failure notification",
            ),
            ("<\"System Administrator\"@example.com>", "Delivery Failure"),
            (
                "<Postmaster\\@example.com@relay.example>",
                "Mail Delivery Warning",
            ),
        ] {
            let raw = format!(
                "From: {from}\nSubject: {subject}\n\nCould not deliver to gone@example.org\n"
            );
            assert_eq!(kind(&raw), Classification::Bounce, "{from}");
        }
        // The same senders under another subject, and a person under a
        // bounce subject, are not enough.
        let raw = "From: smtp-admin@example.org\nSubject: Our relay settings\n\nHello\n";
        assert_eq!(kind(raw), Classification::Human);
        let raw = "From: Jane <jane@example.org>\nSubject: Delivery failure\n\nMy mail to sales could not be delivered.\n";
        assert_eq!(kind(raw), Classification::Human);
    }

    #[test]
    fn plain_text_bounces_from_the_daemon() {
        let raw = "From: Mail Delivery System <MAILER-DAEMON@x.org>\nSubject: Mail delivery failed: returning message to sender\n\n\
  gone@example.org\n    SMTP error from remote mail server after RCPT TO:<gone@example.org>:\n    550 5.1.1 User unknown\n";
        let m = parse(raw.replace('\n', "\r\n").as_bytes()).unwrap();
        let (c, info) = classify(&m);
        assert_eq!(c, Classification::Bounce);
        let info = info.unwrap();
        assert!(info.permanent);
        assert_eq!(info.recipients, vec!["gone@example.org"]);
    }
}
