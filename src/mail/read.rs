//! Reading a raw mail: bytes → [`ParsedMail`], bounded and never
//! panicking. The header block is made safe for the parser first; then
//! what the classifier needs (signals), the text and HTML bodies, the
//! files and any delivery report are read, each by its own function.

use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};

use super::extract;
use super::html;
use super::{Attachment, DeliveryReport, MAX_MAIL_BYTES, MailError, Mailbox, ParsedMail, Signals};
use crate::domain::EmailAddress;

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
pub(super) fn short_zone_date(line: &[u8]) -> bool {
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
pub(super) fn parser_safe(raw: &[u8]) -> std::borrow::Cow<'_, [u8]> {
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
    let signals = signals(&m);
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
    let Bodies {
        text,
        html,
        html_notice,
        above_quote,
    } = bodies(&m);
    let (attachments, mut report) = files(&m);
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

/// What the classifier reads of the headers and the MIME tree.
fn signals(m: &Message<'_>) -> Signals {
    let precedence = header_text(m, "Precedence").map(|p| p.to_ascii_lowercase());
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
    Signals {
        auto_submitted: header_text(m, "Auto-Submitted").map(|v| v.to_ascii_lowercase()),
        x_autoreply: m.header_raw("X-Autoreply").is_some()
            || m.header_raw("X-Autoreply-From").is_some(),
        x_autorespond: m.header_raw("X-Autorespond").is_some(),
        precedence,
        null_return_path: m
            .header_raw("Return-Path")
            .is_some_and(|v| v.trim() == "<>" || v.trim().is_empty()),
        report_type,
        x_failed_recipients: header_text(m, "X-Failed-Recipients")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        list_id: m.header_raw("List-Id").is_some(),
        from_raw: header_text(m, "From").unwrap_or_default(),
        daemon_return_path: header_text(m, "Return-Path").is_some_and(|v| {
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
            && header_text(m, "From").is_some_and(|f| {
                f.to_ascii_lowercase()
                    .split('@')
                    .next()
                    .is_some_and(|l| l.trim_end().ends_with("-admin"))
            }),
    }
}

/// A mail's readable text and HTML.
struct Bodies {
    /// The text parts, or the HTML's text when there are none.
    text: String,
    /// The HTML part, unless it is past the bounds [`html::check`] sets.
    html: Option<String>,
    /// What the reader should be told about HTML left out.
    html_notice: Option<String>,
    /// The HTML's text above its client's quote container, if it has one.
    above_quote: Option<String>,
}

fn bodies(m: &Message<'_>) -> Bodies {
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
    Bodies {
        text,
        html,
        html_notice,
        above_quote,
    }
}

/// A mail's files (at most 500), and the delivery report its parts make
/// up, if it is one.
fn files(m: &Message<'_>) -> (Vec<Attachment>, Option<DeliveryReport>) {
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
    (attachments, report)
}
