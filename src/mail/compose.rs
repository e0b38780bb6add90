//! Outbound mail as bytes: headers that thread (Message-ID, In-Reply-To,
//! References with the ticket's stable root, capped), the subject tag, the
//! automated markers of SPEC §6, a text and an HTML part. No I/O; the outbox
//! worker renders the templates, this builds the message, SMTP sends it.

use std::time::SystemTime;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};

use crate::domain::EmailAddress;
use crate::domain::notify::AutoSubmitted;

/// The most Message-IDs a References header carries: the root, the first
/// mail of the conversation and the latest ones.
pub const MAX_REFERENCES: usize = 12;

/// A person on a header line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub email: EmailAddress,
}

/// Everything an outbound mail is made of.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub from: Person,
    /// The envelope recipient (and the To header unless `shown_to` is set).
    pub to: Person,
    /// The To header when it is not the envelope recipient: an agent's
    /// reply shows the requester in To and the CCs in Cc on every copy, so
    /// that Reply All reaches everyone.
    pub shown_to: Option<Person>,
    /// The Cc header (no envelope recipients: each person gets their own copy).
    pub cc: Vec<Person>,
    pub reply_to: Option<Person>,
    /// The envelope sender: where bounces go (the support mailbox).
    pub bounce_to: EmailAddress,
    pub subject: String,
    /// With angle brackets.
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub automated: Option<AutoSubmitted>,
    pub text: String,
    pub html: String,
    pub date: SystemTime,
    /// Files that travel with the mail (an agent's reply's attachments).
    pub files: Vec<OutgoingFile>,
}

/// A file attached to an outbound mail, as it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingFile {
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// Why a mail could not be built (an address lettre refuses, say).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the mail: {0}")]
pub struct ComposeError(String);

fn mailbox(p: &Person) -> Result<Mailbox, ComposeError> {
    let address = p
        .email
        .as_str()
        .parse()
        .map_err(|e| ComposeError(format!("{}: {e}", p.email)))?;
    let name = p.name.trim();
    Ok(Mailbox::new(
        (!name.is_empty()).then(|| name.replace(['\r', '\n'], " ")),
        address,
    ))
}

/// A header whose value is ours (ASCII, no line breaks).
fn raw(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(
        HeaderName::new_from_ascii_str(name),
        value.replace(['\r', '\n'], " "),
    )
}

/// The envelope sender and recipient, and the message as bytes.
pub fn compose(o: &Outgoing) -> Result<(lettre::address::Envelope, Vec<u8>), ComposeError> {
    let mut b = lettre::Message::builder()
        .from(mailbox(&o.from)?)
        .to(mailbox(o.shown_to.as_ref().unwrap_or(&o.to))?)
        .subject(o.subject.replace(['\r', '\n'], " "))
        .message_id(Some(o.message_id.clone()))
        .date(o.date);
    for cc in &o.cc {
        b = b.cc(mailbox(cc)?);
    }
    if let Some(r) = &o.reply_to {
        b = b.reply_to(mailbox(r)?);
    }
    if let Some(id) = &o.in_reply_to {
        b = b.in_reply_to(id.clone());
    }
    if !o.references.is_empty() {
        b = b.references(o.references.join(" "));
    }
    if let Some(auto) = o.automated {
        b = b
            .raw_header(raw("Auto-Submitted", auto.as_str()))
            .raw_header(raw("X-Auto-Response-Suppress", "All"));
    }
    let envelope = lettre::address::Envelope::new(
        Some(
            o.bounce_to
                .as_str()
                .parse()
                .map_err(|e| ComposeError(format!("{}: {e}", o.bounce_to)))?,
        ),
        vec![
            o.to.email
                .as_str()
                .parse()
                .map_err(|e| ComposeError(format!("{}: {e}", o.to.email)))?,
        ],
    )
    .map_err(|e| ComposeError(e.to_string()))?;
    let body = MultiPart::alternative_plain_html(o.text.clone(), o.html.clone());
    let body = if o.files.is_empty() {
        body
    } else {
        let mut mixed = MultiPart::mixed().multipart(body);
        for f in &o.files {
            let content_type = lettre::message::header::ContentType::parse(&f.content_type)
                .unwrap_or(
                    lettre::message::header::ContentType::parse("application/octet-stream")
                        .map_err(|e| ComposeError(e.to_string()))?,
                );
            let name: String = f
                .filename
                .chars()
                .filter(|c| !c.is_control() && !matches!(c, '"' | '/' | '\\'))
                .collect();
            // Base64 always: the same bytes arrive, line ends and all.
            let body = lettre::message::Body::new_with_encoding(
                f.data.clone(),
                lettre::message::header::ContentTransferEncoding::Base64,
            )
            .map_err(|_| ComposeError("an attachment could not be encoded".into()))?;
            mixed =
                mixed.singlepart(lettre::message::Attachment::new(name).body(body, content_type));
        }
        mixed
    };
    let message = b
        .envelope(envelope.clone())
        .multipart(body)
        .map_err(|e| ComposeError(e.to_string()))?;
    Ok((envelope, message.formatted()))
}

/// The References of a mail in a ticket's thread: the stable root first,
/// then the first mail of the conversation, then the latest, at most
/// [`MAX_REFERENCES`] in all and none twice. `thread` is oldest first.
pub fn thread_references(root: &str, thread: &[String]) -> Vec<String> {
    let mut ids: Vec<&String> = Vec::with_capacity(thread.len());
    for id in thread {
        if id != root && !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut out = vec![root.to_string()];
    let room = MAX_REFERENCES - 1;
    if ids.len() <= room {
        out.extend(ids.into_iter().cloned());
    } else {
        out.push(ids[0].clone());
        out.extend(ids[ids.len() - (room - 1)..].iter().map(|s| (*s).clone()));
    }
    out
}

/// The subject with the ticket's tag in it: `[TKT-42] Printer on fire`.
pub fn tagged_subject(subject: &str, tag: &str) -> String {
    let bracketed = format!("[{tag}]");
    if subject.contains(&bracketed) {
        subject.to_string()
    } else {
        format!("{bracketed} {subject}")
    }
}

/// `support@example.org` with a token: `support+t42-…@example.org`.
pub fn plus_address(address: &EmailAddress, token: &str) -> Option<EmailAddress> {
    let (local, domain) = address.as_str().split_once('@')?;
    let local = local.split_once('+').map_or(local, |(l, _)| l);
    format!("{local}+{token}@{domain}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(name: &str, email: &str) -> Person {
        Person {
            name: name.into(),
            email: email.parse().unwrap(),
        }
    }

    fn sample(automated: Option<AutoSubmitted>) -> Outgoing {
        Outgoing {
            from: person("Ünïcode Support", "support@example.org"),
            to: person("", "ann@example.com"),
            shown_to: None,
            cc: Vec::new(),
            reply_to: Some(person("", "support+t7-abc@example.org")),
            bounce_to: "support@example.org".parse().unwrap(),
            subject: "[TKT-7] Drucker brennt\r\nBcc: evil@example.com".into(),
            message_id: "<pd.9.x@example.org>".into(),
            in_reply_to: Some("<orig@example.com>".into()),
            references: vec!["<root@example.org>".into(), "<orig@example.com>".into()],
            automated,
            text: "Hello Ann\n\n[ref:TKT-7-0123456789abcdef0123]\n".into(),
            html: "<p>Hello Ann</p>".into(),
            date: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
            files: Vec::new(),
        }
    }

    #[test]
    fn files_travel_as_base64_parts_with_their_bytes_and_names() {
        let mut o = sample(None);
        o.files = vec![OutgoingFile {
            filename: "fix\".sh".into(),
            content_type: "application/x-sh".into(),
            data: b"line one\nline two\n\x00\xff".to_vec(),
        }];
        let (_, bytes) = compose(&o).unwrap();
        let m = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        let files: Vec<_> = m.attachments().collect();
        assert_eq!(files.len(), 1);
        use mail_parser::MimeHeaders;
        assert_eq!(files[0].attachment_name(), Some("fix.sh"));
        assert_eq!(files[0].contents(), b"line one\nline two\n\x00\xff");
        assert!(m.body_text(0).unwrap().starts_with("Hello Ann"));
    }

    #[test]
    fn composed_mail_parses_back_with_threading_and_markers() {
        let (envelope, bytes) = compose(&sample(Some(AutoSubmitted::AutoReplied))).unwrap();
        assert_eq!(envelope.from().unwrap().to_string(), "support@example.org");
        assert_eq!(envelope.to().len(), 1);
        let m = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(m.message_id(), Some("pd.9.x@example.org"));
        assert_eq!(
            m.in_reply_to().as_text_list().unwrap(),
            vec!["orig@example.com"]
        );
        assert_eq!(
            m.references().as_text_list().unwrap(),
            vec!["root@example.org", "orig@example.com"]
        );
        assert_eq!(
            m.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-replied")
        );
        assert_eq!(
            m.header_raw("X-Auto-Response-Suppress").map(str::trim),
            Some("All")
        );
        // A line break in the subject cannot smuggle a header in.
        assert!(m.header_raw("Bcc").is_none());
        assert!(m.subject().unwrap().starts_with("[TKT-7] Drucker brennt"));
        assert!(m.body_text(0).unwrap().contains("[ref:TKT-7-"));
        assert!(m.body_html(0).unwrap().contains("<p>Hello Ann</p>"));
        assert_eq!(
            m.from().unwrap().first().unwrap().name(),
            Some("Ünïcode Support")
        );
    }

    #[test]
    fn an_agent_reply_is_not_marked_automated() {
        let (_, bytes) = compose(&sample(None)).unwrap();
        let m = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        assert!(m.header_raw("Auto-Submitted").is_none());
        assert!(m.header_raw("X-Auto-Response-Suppress").is_none());
    }

    #[test]
    fn references_keep_root_first_and_latest_within_the_cap() {
        let ids: Vec<String> = (0..40).map(|i| format!("<m{i}@x>")).collect();
        let refs = thread_references("<root@x>", &ids);
        assert_eq!(refs.len(), MAX_REFERENCES);
        assert_eq!(refs[0], "<root@x>");
        assert_eq!(refs[1], "<m0@x>");
        assert_eq!(refs.last().unwrap(), "<m39@x>");
        assert_eq!(refs[2], format!("<m{}@x>", 40 - (MAX_REFERENCES - 2)));
        let short = thread_references(
            "<root@x>",
            &["<a@x>".into(), "<a@x>".into(), "<root@x>".into()],
        );
        assert_eq!(short, vec!["<root@x>", "<a@x>"]);
        assert_eq!(thread_references("<root@x>", &[]), vec!["<root@x>"]);
    }

    #[test]
    fn subjects_carry_the_tag_once_and_plus_addresses_replace_a_token() {
        assert_eq!(tagged_subject("Printer", "TKT-4"), "[TKT-4] Printer");
        assert_eq!(
            tagged_subject("Re: [TKT-4] Printer", "TKT-4"),
            "Re: [TKT-4] Printer"
        );
        let a: EmailAddress = "support@example.org".parse().unwrap();
        assert_eq!(
            plus_address(&a, "t4-abc").unwrap().as_str(),
            "support+t4-abc@example.org"
        );
        let b: EmailAddress = "support+old@example.org".parse().unwrap();
        assert_eq!(
            plus_address(&b, "t5-x").unwrap().as_str(),
            "support+t5-x@example.org"
        );
    }
}
