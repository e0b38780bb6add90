//! Automated mail — auto-replies and delivery reports — written on its
//! ticket as a system message, and a trusted permanent bounce's address
//! marked undeliverable (SPEC §5.12). The gateway decides which ticket the
//! mail is about and whether a report can be trusted
//! (`gateway/processor/automated.rs`); this action writes what it decided,
//! in the caller's transaction. Nothing is ever sent about automated mail.

use super::{Actions, Result};
use crate::domain::{EmailAddress, Millis};
use crate::store::{NewMessage, Tx};

/// How much of an automated mail's text is kept with its system message.
const KEPT_TEXT_CHARS: usize = 20_000;

/// What the gateway read from one automated mail.
#[derive(Debug, Clone)]
pub struct AutomatedMail<'a> {
    /// The ticket it is about, if any was found.
    pub ticket_id: Option<i64>,
    /// What the ticket's system message says.
    pub text: String,
    /// An address a trusted permanent bounce names, and why: it is marked
    /// undeliverable, so no more mail is sent to it.
    pub undeliverable: Option<(EmailAddress, String)>,
    /// The automated mail's own Message-ID (a copy of it is then a duplicate).
    pub mail_message_id: Option<String>,
    /// The stored raw mail it came from.
    pub inbound_id: Option<i64>,
    /// The mail's whole text; the first 20,000 characters are kept.
    pub text_of_mail: &'a str,
}

impl Actions {
    /// Records automated mail inside `tx`: the undeliverable mark, then the
    /// system message on its ticket (none when no ticket was found).
    /// Returns the system message's id.
    pub async fn record_automated_in(
        &self,
        tx: &mut Tx,
        mail: AutomatedMail<'_>,
        now: Millis,
    ) -> Result<Option<i64>> {
        if let Some((address, reason)) = &mail.undeliverable {
            tx.mark_undeliverable(address, reason, now).await?;
        }
        let Some(ticket_id) = mail.ticket_id else {
            return Ok(None);
        };
        let mut note = NewMessage::system(ticket_id, mail.text, now);
        note.mail_message_id = mail.mail_message_id;
        note.inbound_id = mail.inbound_id;
        note.full_text = Some(mail.text_of_mail.chars().take(KEPT_TEXT_CHARS).collect());
        Ok(Some(tx.insert_message(note).await?))
    }
}
