//! Mail as values: bytes in, values out, no I/O. Parsing (mail-parser),
//! classification (human / auto-reply / bounce), reply extraction, subject
//! clean-up and the `inspect` view all live here.

pub mod auth;
pub mod classify;
pub mod compose;
pub mod conversation;
pub mod extract;
pub mod html;
pub mod inspect;
pub mod subject;
pub mod token;

use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};

use crate::domain::EmailAddress;

/// The largest mail accepted; larger ones are quarantined unread.
pub const MAX_MAIL_BYTES: usize = 50 * 1024 * 1024;

/// Why bytes could not be read as a mail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    #[error("the input is empty")]
    Empty,
    #[error("the mail is {0} bytes, more than the {MAX_MAIL_BYTES} accepted")]
    TooLarge(usize),
    #[error("the input is not a mail: no header block with From, To, Subject, Date or Message-ID")]
    NotAMail,
    #[error("the MIME structure is too broken to read (the parser gave up)")]
    Malformed,
}

/// A person in an address header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mailbox {
    pub email: EmailAddress,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An attachment (or inline part) of a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub inline: bool,
    pub data: Vec<u8>,
    /// The content's SHA-256 in hex, under which its bytes are stored once.
    pub sha256: String,
}

impl Attachment {
    /// An attachment of `data`, its digest computed here: when a mail is
    /// parsed, off the processor's write transaction.
    pub fn new(
        filename: String,
        content_type: String,
        content_id: Option<String>,
        inline: bool,
        data: Vec<u8>,
    ) -> Self {
        use sha2::{Digest, Sha256};
        let sha256 = hex::encode(Sha256::digest(&data));
        Attachment {
            filename,
            content_type,
            content_id,
            inline,
            data,
            sha256,
        }
    }
}

/// The headers that decide whether a mail was written by a person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signals {
    pub auto_submitted: Option<String>,
    pub x_autoreply: bool,
    pub x_autorespond: bool,
    pub precedence: Option<String>,
    /// `Return-Path: <>`.
    pub null_return_path: bool,
    /// `multipart/report` at the top.
    pub report_type: Option<String>,
    pub x_failed_recipients: Vec<String>,
    pub list_id: bool,
    /// Raw From header text (for mailer-daemon detection when it does not parse).
    pub from_raw: String,
    /// `Return-Path: <MAILER-DAEMON@…>` (or postmaster): a bounce's envelope.
    pub daemon_return_path: bool,
    /// A mail or its headers attached (`message/rfc822`, `text/rfc822-headers`):
    /// a returned message, with the other signs of a bounce.
    pub returned_message: bool,
    /// A list manager's error notice: `X-MLServer` from the list's `-admin` address.
    pub list_admin_notice: bool,
}

/// A delivery status report inside a mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// `message/delivery-status` fields: (Final-Recipient, Status, Action) per recipient.
    pub recipients: Vec<(String, Option<String>, Option<String>)>,
    /// Message-ID of the returned mail (from `message/rfc822` or `text/rfc822-headers`).
    pub original_message_id: Option<String>,
}

/// One mail, read once at the edge.
#[derive(Debug, Clone, Default)]
pub struct ParsedMail {
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub subject: String,
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub signals: Signals,
    /// The text body (from text/plain, or converted from HTML).
    pub text: String,
    /// The HTML body as received (sanitise before showing).
    pub html: Option<String>,
    /// The text of the HTML above the quoted history its client marked
    /// (`gmail_quote`, `divRplyFwdMsg`, …; see `extract::quote_start`).
    pub above_quote: Option<String>,
    /// Set when the HTML part was too large or deep to read as a tree
    /// (then `html` is `None` and `text` its stripped text): says so.
    pub html_notice: Option<String>,
    /// The Authentication-Results header values, top first (at most 20).
    pub auth_results: Vec<String>,
    /// The envelope recipients the receiving servers recorded
    /// (`Delivered-To`, `X-Original-To`), top first (at most 10).
    pub delivered_to: Vec<String>,
    pub attachments: Vec<Attachment>,
    pub report: Option<DeliveryReport>,
    pub size: usize,
}

fn mailboxes(addr: Option<&Address<'_>>) -> Vec<Mailbox> {
    let Some(addr) = addr else { return Vec::new() };
    addr.iter()
        .filter_map(|a| {
            let email = a.address()?.parse::<EmailAddress>().ok()?;
            let name = a
                .name()
                .map(|n| n.trim().trim_matches('"').trim().to_string())
                .filter(|n| !n.is_empty());
            Some(Mailbox { email, name })
        })
        .take(200)
        .collect()
}

/// Message-IDs as `<id>`, whatever the header's form.
fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let list: Vec<String> = match value {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    };
    list.into_iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| normalise_id(&s))
        .take(100)
        .collect()
}

/// `<id>` form of a Message-ID, at most 998 bytes.
pub fn normalise_id(id: &str) -> String {
    let bare = id.trim().trim_start_matches('<').trim_end_matches('>');
    let bare: String = bare
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .take(996)
        .collect();
    format!("<{bare}>")
}

fn header_text(m: &Message<'_>, name: &str) -> Option<String> {
    m.header_raw(name).map(|v| v.trim().to_string())
}

/// The text of `html` above the quoted history its client marked, if it
/// marked one and there is text above it.
pub fn html_above_quote(html: &str) -> Option<String> {
    html::check(html).ok()?;
    let at = extract::quote_start(html)?;
    let text = html_to_text(&html[..at]);
    (!text.trim().is_empty()).then_some(text)
}

/// HTML converted to readable text: as a tree when [`html::check`] allows
/// it, otherwise by stripping its tags in one pass.
pub fn html_to_text(html: &str) -> String {
    match html::check(html) {
        Ok(()) => {
            html2text::from_read(html.as_bytes(), 100).unwrap_or_else(|_| html::strip_tags(html))
        }
        Err(_) => html::strip_tags(html),
    }
}

/// The lines of the top header block, each as its text and its line end
/// (`\r\n`, `\n`, or nothing at the end of the input), up to and with the
/// empty line that ends the block.
fn header_lines(raw: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = raw;
    let mut done = false;
    std::iter::from_fn(move || {
        if done || rest.is_empty() {
            return None;
        }
        let (line, eol, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(at) => {
                let text_end = if at > 0 && rest[at - 1] == b'\r' {
                    at - 1
                } else {
                    at
                };
                (&rest[..text_end], &rest[text_end..=at], &rest[at + 1..])
            }
            None => (rest, &rest[rest.len()..], &rest[rest.len()..]),
        };
        done = line.is_empty();
        rest = next;
        Some((line, eol))
    })
}

/// A `Date:` or `Resent-Date:` line ending in a zone of one or two letters
/// ("Z", "UT", the military zones).
fn short_zone_date(line: &[u8]) -> bool {
    let name = |n: &[u8]| line.len() > n.len() && line[..n.len()].eq_ignore_ascii_case(n);
    if !name(b"date:") && !name(b"resent-date:") {
        return false;
    }
    let last = line
        .split(|b| b.is_ascii_whitespace())
        .rfind(|t| !t.is_empty())
        .unwrap_or_default();
    (1..=2).contains(&last.len()) && last.iter().all(u8::is_ascii_alphabetic)
}

/// The mail as mail-parser 0.11 reads it right: its top header block with
/// CRLF line ends, and two spaces after a one- or two-letter zone ending a
/// date line. That parser takes the two bytes after a zone's first letter
/// whatever they are, so "Z\r\n" or a bare-LF "UT\n" swallowed the line end
/// and the next header with it (the `From:` of such a mail went missing).
/// Mail that needs neither (IMAP mail is CRLF) is borrowed as it is.
/// mail-parser 1.0 reads these right (its regression mails `date-zone-*`
/// are in the corpus) but needs rustc 1.98: drop this when moving to it.
fn parser_safe(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut end = 0;
    let mut rewrite = false;
    for (line, eol) in header_lines(raw) {
        end += line.len() + eol.len();
        rewrite |= eol == b"\n" || short_zone_date(line);
    }
    if !rewrite {
        return std::borrow::Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + end / 16 + 4);
    for (line, eol) in header_lines(raw) {
        out.extend_from_slice(line);
        if short_zone_date(line) {
            out.extend_from_slice(b"  ");
        }
        if !eol.is_empty() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(&raw[end..]);
    std::borrow::Cow::Owned(out)
}

/// Parses raw bytes. Never panics; a broken part is decoded lossily.
pub fn parse(raw: &[u8]) -> Result<ParsedMail, MailError> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(MailError::Empty);
    }
    if raw.len() > MAX_MAIL_BYTES {
        return Err(MailError::TooLarge(raw.len()));
    }
    let bytes = parser_safe(raw);
    // mail-parser 0.11 panics on some malformed MIME trees (its own test
    // corpus has one); hostile input must never take the gateway down, so a
    // panic in the parser becomes an ordinary "malformed" answer.
    let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(&bytes[..]));
    let m = parsed
        .map_err(|_| MailError::Malformed)?
        .ok_or(MailError::NotAMail)?;
    let known = [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "received",
        "return-path",
        "sender",
        "cc",
        "mime-version",
    ];
    let has_headers = m
        .root_part()
        .headers
        .iter()
        .any(|h| known.contains(&h.name().to_ascii_lowercase().as_str()));
    if !has_headers {
        return Err(MailError::NotAMail);
    }
    let precedence = header_text(&m, "Precedence").map(|p| p.to_ascii_lowercase());
    let report_type = m.root_part().content_type().and_then(|ct| {
        let is_report = ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"));
        is_report.then(|| {
            ct.attribute("report-type")
                .unwrap_or("")
                .to_ascii_lowercase()
        })
    });
    let signals = Signals {
        auto_submitted: header_text(&m, "Auto-Submitted").map(|v| v.to_ascii_lowercase()),
        x_autoreply: m.header_raw("X-Autoreply").is_some()
            || m.header_raw("X-Autoreply-From").is_some(),
        x_autorespond: m.header_raw("X-Autorespond").is_some(),
        precedence,
        null_return_path: m
            .header_raw("Return-Path")
            .is_some_and(|v| v.trim() == "<>" || v.trim().is_empty()),
        report_type,
        x_failed_recipients: header_text(&m, "X-Failed-Recipients")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        list_id: m.header_raw("List-Id").is_some(),
        from_raw: header_text(&m, "From").unwrap_or_default(),
        daemon_return_path: header_text(&m, "Return-Path").is_some_and(|v| {
            let local = v.trim().trim_start_matches('<').to_ascii_lowercase();
            let local = local.split('@').next().unwrap_or_default();
            local.contains("mailer-daemon") || local == "postmaster"
        }),
        returned_message: m.parts.iter().skip(1).take(50).any(|p| {
            p.content_type().is_some_and(|ct| {
                let sub = ct.subtype().unwrap_or_default();
                (ct.ctype().eq_ignore_ascii_case("message") && sub.eq_ignore_ascii_case("rfc822"))
                    || (ct.ctype().eq_ignore_ascii_case("text")
                        && sub.eq_ignore_ascii_case("rfc822-headers"))
            })
        }),
        list_admin_notice: m.header_raw("X-MLServer").is_some()
            && header_text(&m, "From").is_some_and(|f| {
                f.to_ascii_lowercase()
                    .split('@')
                    .next()
                    .is_some_and(|l| l.trim_end().ends_with("-admin"))
            }),
    };
    let auth_results: Vec<String> = m
        .headers_raw()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
        .map(|(_, v)| v.trim().to_string())
        .take(20)
        .collect();
    let delivered_to: Vec<String> = m
        .headers_raw()
        .filter(|(name, _)| {
            name.eq_ignore_ascii_case("Delivered-To") || name.eq_ignore_ascii_case("X-Original-To")
        })
        .map(|(_, v)| v.trim().trim_matches(['<', '>']).trim().to_string())
        .filter(|v| !v.is_empty() && v.len() < 320)
        .take(10)
        .collect();
    let mut text = String::new();
    for (i, part) in m.text_bodies().enumerate().take(20) {
        // Text bodies of a mail whose only body is HTML are conversions; prefer the real text part.
        if let PartType::Text(t) = &part.body {
            if i > 0 && !text.is_empty() {
                text.push('\n');
            }
            text.push_str(t);
        }
    }
    let mut html = m.html_bodies().find_map(|p| match &p.body {
        PartType::Html(h) => Some(h.to_string()),
        _ => None,
    });
    let has_plain = m.text_bodies().any(|p| matches!(p.body, PartType::Text(_)));
    // HTML past the bounds never reaches a tree builder: its text is
    // stripped in one pass and the mail says so.
    let mut html_notice = None;
    if let Some(refused) = html.as_deref().and_then(|h| html::check(h).err()) {
        if !has_plain && let Some(h) = &html {
            text = html::strip_tags(h);
        }
        html = None;
        html_notice = Some(refused.notice());
    }
    if !has_plain && let Some(h) = &html {
        // Already checked above: read as a tree.
        text = html2text::from_read(h.as_bytes(), 100).unwrap_or_else(|_| html::strip_tags(h));
    }
    let above_quote = html.as_deref().and_then(html_above_quote);
    let mut attachments = Vec::new();
    let mut report = None;
    for part in m.attachments().take(500) {
        let ct = part.content_type();
        let content_type = ct
            .map(|c| {
                format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream"))
                    .to_ascii_lowercase()
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        if content_type == "message/delivery-status"
            || content_type == "message/global-delivery-status"
        {
            let r = report.get_or_insert_with(DeliveryReport::default);
            r.recipients
                .extend(delivery_status(&String::from_utf8_lossy(part.contents())));
        }
        if content_type == "text/rfc822-headers" || content_type == "message/rfc822-headers" {
            let r = report.get_or_insert_with(DeliveryReport::default);
            if r.original_message_id.is_none() {
                r.original_message_id =
                    header_in_text(&String::from_utf8_lossy(part.contents()), "message-id");
            }
        }
        let data: Vec<u8> = match &part.body {
            PartType::Message(inner) => {
                if let Some(id) = inner.message_id() {
                    report
                        .get_or_insert_with(DeliveryReport::default)
                        .original_message_id
                        .get_or_insert(normalise_id(id));
                }
                inner.raw_message().to_vec()
            }
            _ => part.contents().to_vec(),
        };
        let filename = part
            .attachment_name()
            .map(str::to_string)
            .unwrap_or_else(|| default_name(&content_type));
        let inline = part
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"));
        attachments.push(Attachment::new(
            filename
                .chars()
                .filter(|c| !c.is_control() && *c != '/' && *c != '\\')
                .take(200)
                .collect(),
            content_type,
            part.content_id()
                .map(|c| c.trim_matches(['<', '>']).to_string()),
            inline,
            data,
        ));
    }
    // A DSN without structured parts still names the returned mail in its text.
    if let Some(r) = &mut report
        && r.original_message_id.is_none()
    {
        r.original_message_id = header_in_text(&text, "message-id");
    }
    Ok(ParsedMail {
        from: mailboxes(m.from())
            .into_iter()
            .next()
            .or_else(|| mailboxes(m.sender()).into_iter().next()),
        to: mailboxes(m.to()),
        cc: mailboxes(m.cc()),
        reply_to: mailboxes(m.reply_to()).into_iter().next(),
        subject: m.subject().unwrap_or_default().chars().take(1000).collect(),
        message_id: m
            .message_id()
            .filter(|id| !id.trim().is_empty())
            .map(normalise_id),
        in_reply_to: ids(m.in_reply_to()),
        references: ids(m.references()),
        signals,
        text,
        html,
        above_quote,
        html_notice,
        auth_results,
        delivered_to,
        attachments,
        report,
        size: raw.len(),
    })
}

fn default_name(content_type: &str) -> String {
    match content_type {
        "message/rfc822" => "message.eml".into(),
        t if t.starts_with("image/") => format!("image.{}", &t[6..]),
        _ => "attachment".into(),
    }
}

/// The value of `name:` in a block of header text, if present.
pub fn header_in_text(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim().eq_ignore_ascii_case(name) && !value.trim().is_empty())
            .then(|| normalise_id(value))
    })
}

/// (Final-Recipient, Status, Action) per recipient block of a delivery-status part.
fn delivery_status(body: &str) -> Vec<(String, Option<String>, Option<String>)> {
    let mut out = Vec::new();
    for block in body.replace("\r\n", "\n").split("\n\n") {
        let mut recipient = None;
        let (mut status, mut action) = (None, None);
        for line in block.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim().to_ascii_lowercase().as_str() {
                "final-recipient" | "original-recipient" if recipient.is_none() => {
                    let addr = value.split_once(';').map(|(_, a)| a).unwrap_or(value);
                    recipient = Some(addr.trim().trim_matches(['<', '>']).to_string());
                }
                "status" => {
                    status = Some(
                        value
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_string(),
                    )
                }
                "action" => action = Some(value.to_ascii_lowercase()),
                _ => {}
            }
        }
        if let Some(r) = recipient {
            out.push((r, status, action));
        }
        if out.len() >= 100 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_with_a_short_zone_does_not_swallow_the_next_header() {
        for (zone, eol) in ["UT", "Z", "A", "M", "GMT", "+0000"]
            .into_iter()
            .flat_map(|z| [(z, "\n"), (z, "\r\n")])
        {
            let raw = format!(
                "Date: Sat, 22 Apr 2006 17:14:50 {zone}{eol}From: Jane <jane@example.org>{eol}Subject: hi{eol}{eol}body\nline two\n"
            );
            let m = parse(raw.as_bytes()).unwrap();
            let from = m.from.as_ref().map(|f| f.email.as_str());
            assert_eq!(from, Some("jane@example.org"), "zone {zone}");
            assert_eq!(m.subject, "hi");
            assert_eq!(
                m.text.trim_end(),
                "body\nline two",
                "the body is left as it is"
            );
            assert_eq!(m.size, raw.len(), "the size is the mail's own");
        }
    }

    #[test]
    fn only_the_header_block_of_a_mail_is_rewritten_for_the_parser() {
        let crlf = b"From: a@example.org\r\nDate: Sat, 1 Jan 2000 00:00:00 GMT\r\n\r\nbody\n";
        assert!(matches!(parser_safe(crlf), std::borrow::Cow::Borrowed(_)));
        let rewritten: [(&[u8], &[u8]); 4] = [
            (
                b"From: a@example.org\nSubject: x\n\nbody\nmore\n",
                b"From: a@example.org\r\nSubject: x\r\n\r\nbody\nmore\n",
            ),
            (
                b"From: a@example.org\r\nSubject: x\n\r\nbody\n",
                b"From: a@example.org\r\nSubject: x\r\n\r\nbody\n",
            ),
            (
                b"DATE: Sat, 1 Jan 2000 00:00:00 Z\r\nFrom: a@example.org\r\n\r\nDate: 1 Z\r\n",
                b"DATE: Sat, 1 Jan 2000 00:00:00 Z  \r\nFrom: a@example.org\r\n\r\nDate: 1 Z\r\n",
            ),
            (
                b"From: a@example.org\nSubject: x",
                b"From: a@example.org\r\nSubject: x",
            ),
        ];
        for (raw, read) in rewritten {
            assert_eq!(
                &parser_safe(raw)[..],
                read,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        assert!(matches!(
            parser_safe(b"\r\nbody\n"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert!(!short_zone_date(b"X-Date: 1 Jan 2000 Z"));
        assert!(!short_zone_date(b"Date: 1 Jan 2000 +0000"));
        assert!(short_zone_date(b"Resent-Date: 1 Jan 2000 ut "));
    }

    #[test]
    fn a_parsed_attachment_carries_the_digest_its_bytes_are_stored_under() {
        let raw = b"From: a@example.org\r\nSubject: file\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee file\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=a.bin\r\n\
Content-Transfer-Encoding: base64\r\n\r\nYWJj\r\n--b--\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].data, b"abc");
        // SHA-256 of "abc" (FIPS 180-2, appendix B.1).
        assert_eq!(
            m.attachments[0].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn every_common_charset_decodes_in_subjects_and_bodies() {
        // (charset, base64 of the text in it, the text)
        let cases = [
            (
                "gb2312",
                "1tDOxLLiytQgtPLTobv6u7XByw==",
                "中文测试 打印机坏了",
            ),
            ("GBK", "1tDOxLLiytQgtPLTobv6u7XByw==", "中文测试 打印机坏了"),
            (
                "gb18030",
                "1tDOxLLiytQgtPLTobv6u7XByw==",
                "中文测试 打印机坏了",
            ),
            (
                "big5",
                "wWPF6aSkpOUgpkyq7b73w2GkRg==",
                "繁體中文 印表機壞了",
            ),
            (
                "shift_jis",
                "k/qWe4zqgsyDZYNYg2cgg3aDioOTg14=",
                "日本語のテスト プリンタ",
            ),
            (
                "euc-jp",
                "xvzL3LjspM6lxqW5pcggpdel6qXzpb8=",
                "日本語のテスト プリンタ",
            ),
            ("euc-kr", "x9Gxub7uIL3Dx+ggx8G4sMXN", "한국어 시험 프린터"),
            (
                "iso-2022-jp",
                "GyRCRnxLXDhsJE4lRiU5JUgbKEIgGyRCJVclaiVzJT8bKEI=",
                "日本語のテスト プリンタ",
            ),
            ("koi8-r", "8NLJztTF0iDTzM/NwczT0Q==", "Принтер сломался"),
            (
                "windows-1251",
                "z/Do7fLl8CDx6+7s4Ovx/w==",
                "Принтер сломался",
            ),
            ("iso-8859-7", "zyDl6vT18Pn03vI=", "Ο εκτυπωτής"),
            ("windows-1256", "x+HYx8jaySDj2tjhyQ==", "الطابعة معطلة"),
        ];
        for (charset, b64, text) in cases {
            let raw = format!(
                "From: a@example.org\r\nTo: b@example.org\r\nSubject: =?{charset}?B?{b64}?=\r\n\
                 Message-ID: <c@example.org>\r\nMIME-Version: 1.0\r\n\
                 Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
            );
            let m = parse(raw.as_bytes()).unwrap();
            assert_eq!(m.subject, text, "{charset} subject");
            assert_eq!(m.text.trim(), text, "{charset} body");
        }
    }

    #[test]
    fn parses_a_simple_mail() {
        let raw = b"From: Jane Doe <Jane@Example.org>\r\nTo: support@example.test, \"Bob\" <bob@example.org>\r\n\
Subject: Re: [TKT-7] Printer\r\nMessage-ID: <abc@x>\r\nIn-Reply-To: <p1@x>\r\nReferences: <p0@x> <p1@x>\r\n\r\nHello\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.from.unwrap().email.as_str(), "jane@example.org");
        assert_eq!(m.to.len(), 2);
        assert_eq!(m.message_id.as_deref(), Some("<abc@x>"));
        assert_eq!(m.references, vec!["<p0@x>", "<p1@x>"]);
        assert_eq!(m.in_reply_to, vec!["<p1@x>"]);
        assert!(m.text.contains("Hello"));
    }

    #[test]
    fn rejects_what_is_not_a_mail() {
        assert_eq!(parse(b"").unwrap_err(), MailError::Empty);
        assert_eq!(
            parse(b"just some words\nand more\n").unwrap_err(),
            MailError::NotAMail
        );
        assert_eq!(
            parse(&[0u8, 159, 146, 150, 1, 2]).unwrap_err(),
            MailError::NotAMail
        );
    }

    #[test]
    fn html_only_mail_becomes_text() {
        let raw = b"From: a@b.org\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>there</b></p><script>x()</script>\r\n";
        let m = parse(raw).unwrap();
        assert!(m.text.contains("Hello"), "{}", m.text);
        assert!(m.html.unwrap().contains("<b>there</b>"));
    }
}
