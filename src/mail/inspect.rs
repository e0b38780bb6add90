//! `postdesk inspect`: how the gateway reads one mail, without storing it.
//! The JSON form is a stable contract for corpus tests and outside tools.

use serde::Serialize;

use super::classify::{BounceInfo, Classification, classify};
use super::extract::extract_reply_with_html;
use super::subject::{clean_subject, reply_token, ticket_tag};
use super::{MailError, Mailbox, ParsedMail, parse};
use crate::domain::EmailAddress;

/// An attachment as `inspect` lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AttachmentView {
    pub filename: String,
    pub content_type: String,
    pub size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
}

/// What the gateway sees in a mail.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub subject: String,
    pub clean_subject: String,
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub ticket_tag: Option<String>,
    pub reply_token: Option<String>,
    pub classification: Classification,
    pub bounce: Option<BounceInfo>,
    pub reply_text: String,
    pub body_text: String,
    pub attachments: Vec<AttachmentView>,
}

/// Reads a parsed mail the way the gateway does. `mailbox` is the support
/// address it arrived at, if known (for the plus-address token).
pub fn inspect_parsed(
    mail: &ParsedMail,
    prefix: &str,
    mailbox: Option<&EmailAddress>,
) -> Inspection {
    let (classification, bounce) = classify(mail);
    let recipients: Vec<&EmailAddress> = mail.to.iter().chain(&mail.cc).map(|m| &m.email).collect();
    let token = match mailbox {
        Some(mb) => reply_token(recipients.iter().copied(), mb),
        None => recipients.iter().find_map(|r| {
            let local = r.as_str().split('@').next()?;
            local
                .split_once('+')
                .map(|(_, t)| t.to_string())
                .filter(|t| !t.is_empty())
        }),
    };
    Inspection {
        from: mail.from.clone(),
        to: mail.to.clone(),
        cc: mail.cc.clone(),
        subject: mail.subject.clone(),
        clean_subject: clean_subject(&mail.subject, prefix),
        message_id: mail.message_id.clone(),
        in_reply_to: mail.in_reply_to.clone(),
        references: mail.references.clone(),
        ticket_tag: ticket_tag(&mail.subject, prefix).map(|t| t.to_string()),
        reply_token: token,
        classification,
        bounce,
        reply_text: extract_reply_with_html(&mail.text, mail.above_quote.as_deref()),
        body_text: mail.text.clone(),
        attachments: mail
            .attachments
            .iter()
            .map(|a| AttachmentView {
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                size: a.data.len(),
                content_id: a.content_id.clone(),
            })
            .collect(),
    }
}

/// Parses and inspects raw bytes.
pub fn inspect(
    raw: &[u8],
    prefix: &str,
    mailbox: Option<&EmailAddress>,
) -> Result<Inspection, MailError> {
    Ok(inspect_parsed(&parse(raw)?, prefix, mailbox))
}

/// The human-readable form of an inspection.
pub fn render_text(i: &Inspection) -> String {
    let people = |list: &[Mailbox]| {
        list.iter()
            .map(|m| m.email.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::new();
    let mut line = |k: &str, v: &str| out.push_str(&format!("{k:<15}{v}\n"));
    line(
        "from:",
        &i.from
            .as_ref()
            .map(|f| f.email.to_string())
            .unwrap_or_else(|| "(none)".into()),
    );
    line("to:", &people(&i.to));
    line("cc:", &people(&i.cc));
    line("subject:", &i.subject);
    line("clean subject:", &i.clean_subject);
    line("message-id:", i.message_id.as_deref().unwrap_or("(none)"));
    line("in-reply-to:", &i.in_reply_to.join(" "));
    line("references:", &i.references.join(" "));
    line("ticket tag:", i.ticket_tag.as_deref().unwrap_or("(none)"));
    line("reply token:", i.reply_token.as_deref().unwrap_or("(none)"));
    line(
        "class:",
        &serde_json::to_value(&i.classification)
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .unwrap_or_default(),
    );
    if let Some(b) = &i.bounce {
        line(
            "bounce of:",
            b.original_message_id.as_deref().unwrap_or("(unknown)"),
        );
        line("failed:", &b.recipients.join(", "));
        line("permanent:", if b.permanent { "yes" } else { "no" });
    }
    for a in &i.attachments {
        line(
            "attachment:",
            &format!("{} ({}, {} bytes)", a.filename, a.content_type, a.size),
        );
    }
    out.push_str("--- new text ---\n");
    out.push_str(&i.reply_text);
    out.push('\n');
    out
}
