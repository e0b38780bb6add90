//! Automated mail (auto-replies, delivery reports) recorded on its ticket
//! and never acted on; a trusted report (VERP token) marks an address
//! undeliverable (SPEC §5.12).

use super::*;

impl Processor {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn record_automated(
        &self,
        tx: &mut Tx,
        raw: &RawMail,
        mail: &ParsedMail,
        class: Classification,
        bounce: Option<BounceInfo>,
        found: Found,
        tokens: &[String],
        batch: &mut Batch,
        now: Millis,
    ) -> Result<Disposition, Refused> {
        let sender = mail
            .from
            .as_ref()
            .map(|f| f.email.to_string())
            .unwrap_or_else(|| "an unknown sender".into());
        let mut ticket = found.first().map(|(t, _)| t);
        let text = match &bounce {
            Some(b) => {
                if let Some(orig) = &b.original_message_id
                    && let Some((t, _)) = tx.ticket_of_mail_id(orig).await?
                {
                    ticket = Some(t);
                }
                // Only a report that came back to the signed envelope sender
                // of one of our mails may change an address (SPEC §5.12),
                // and only the address that mail went to.
                let mut sent_to = None;
                for token in tokens {
                    if let Some(outbox) = self.key.verify_bounce_token(token)
                        && let Some((t, to)) = tx.outbox_recipient(outbox).await?
                    {
                        if t.is_some() {
                            ticket = t;
                        }
                        sent_to = Some(to);
                        break;
                    }
                }
                let kind = if b.permanent {
                    "permanent"
                } else {
                    "temporary"
                };
                match sent_to {
                    Some(to) => {
                        let named = b
                            .recipients
                            .iter()
                            .any(|r| r.trim().eq_ignore_ascii_case(&to));
                        if b.permanent
                            && named
                            && let Ok(e) = to.parse::<EmailAddress>()
                        {
                            tx.mark_undeliverable(
                                &e,
                                &format!("permanent bounce: {}", mail.subject),
                                now,
                            )
                            .await?;
                        }
                        if named {
                            format!(
                                "Delivery failure ({kind}) for {}: {}",
                                b.recipients.join(", "),
                                mail.subject
                            )
                        } else {
                            format!(
                                "Untrusted delivery report (it names {} but the mail it returns went to {to}); nothing was changed: {}",
                                b.recipients.join(", "),
                                mail.subject
                            )
                        }
                    }
                    None => format!(
                        "Untrusted delivery report ({kind}) for {} (it did not come back to a signed bounce address); nothing was changed: {}",
                        b.recipients.join(", "),
                        mail.subject
                    ),
                }
            }
            None => format!("Automatic reply received from {sender}: {}", mail.subject),
        };
        if let Some(t) = ticket {
            let mut note = NewMessage::system(t, text, now);
            note.mail_message_id = mail.message_id.clone();
            note.inbound_id = Some(raw.id);
            note.full_text = Some(mail.text.chars().take(20_000).collect());
            tx.insert_message(note).await?;
            batch.recorded(mail.message_id.as_deref(), t);
        }
        let what = if class == Classification::Bounce {
            "bounce"
        } else {
            "auto-reply"
        };
        let note = if ticket.is_none() {
            format!("{what} for no known ticket")
        } else {
            what.to_string()
        };
        batch.done.push(Finished {
            id: raw.id,
            ticket_id: ticket,
            note: Some(note),
        });
        Ok(Disposition::Automated { ticket_id: ticket })
    }
}
