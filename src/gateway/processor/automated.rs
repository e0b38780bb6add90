//! Automated mail (auto-replies, delivery reports): which ticket it is
//! about and whether a delivery report can be trusted (SPEC §5.12); the
//! action `Actions::record_automated_in` writes it. It is never acted on.

use super::*;
use crate::actions::AutomatedMail;

/// What a delivery report says and may change: the system message's text,
/// and the address to mark undeliverable (only for a permanent failure of
/// the very address the returned mail went to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReportNote {
    pub text: String,
    pub undeliverable: Option<EmailAddress>,
}

/// Reads a delivery report. `sent_to` is the recipient of the mail it
/// returns, known only when the report came back to a signed envelope
/// sender of one of our mails; without it the report is a claim and
/// changes nothing.
pub(super) fn report_note(b: &BounceInfo, sent_to: Option<&str>, subject: &str) -> ReportNote {
    let kind = if b.permanent {
        "permanent"
    } else {
        "temporary"
    };
    let names = b.recipients.join(", ");
    let Some(to) = sent_to else {
        return ReportNote {
            text: format!(
                "Untrusted delivery report ({kind}) for {names} (it did not come back to a signed bounce address); nothing was changed: {subject}"
            ),
            undeliverable: None,
        };
    };
    let named = b
        .recipients
        .iter()
        .any(|r| r.trim().eq_ignore_ascii_case(to));
    if !named {
        return ReportNote {
            text: format!(
                "Untrusted delivery report (it names {names} but the mail it returns went to {to}); nothing was changed: {subject}"
            ),
            undeliverable: None,
        };
    }
    ReportNote {
        text: format!("Delivery failure ({kind}) for {names}: {subject}"),
        undeliverable: if b.permanent {
            to.parse::<EmailAddress>().ok()
        } else {
            None
        },
    }
}

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
        let mut ticket = found.first().map(|(t, _)| t);
        let (text, undeliverable) = match &bounce {
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
                let note = report_note(b, sent_to.as_deref(), &mail.subject);
                let reason = format!("permanent bounce: {}", mail.subject);
                (note.text, note.undeliverable.map(|e| (e, reason)))
            }
            None => {
                let sender = mail
                    .from
                    .as_ref()
                    .map(|f| f.email.to_string())
                    .unwrap_or_else(|| "an unknown sender".into());
                (
                    format!("Automatic reply received from {sender}: {}", mail.subject),
                    None,
                )
            }
        };
        let record = AutomatedMail {
            ticket_id: ticket,
            text,
            undeliverable,
            mail_message_id: mail.message_id.clone(),
            inbound_id: Some(raw.id),
            text_of_mail: &mail.text,
        };
        self.actions.record_automated_in(tx, record, now).await?;
        if let Some(t) = ticket {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn report(permanent: bool, recipients: &[&str]) -> BounceInfo {
        BounceInfo {
            original_message_id: None,
            recipients: recipients.iter().map(|r| r.to_string()).collect(),
            permanent,
        }
    }

    #[test]
    fn only_a_signed_permanent_report_for_its_own_address_marks_it() {
        let b = report(true, &["Ann@Example.org "]);
        let n = report_note(&b, Some("ann@example.org"), "Undelivered");
        assert_eq!(
            n.undeliverable.map(|e| e.to_string()).as_deref(),
            Some("ann@example.org")
        );
        assert_eq!(
            n.text,
            "Delivery failure (permanent) for Ann@Example.org : Undelivered"
        );
    }

    #[test]
    fn a_temporary_failure_changes_nothing() {
        let b = report(false, &["ann@example.org"]);
        let n = report_note(&b, Some("ann@example.org"), "Delayed");
        assert_eq!(n.undeliverable, None);
        assert!(n.text.starts_with("Delivery failure (temporary)"));
    }

    #[test]
    fn a_report_naming_another_address_is_untrusted() {
        let b = report(true, &["boss@example.org"]);
        let n = report_note(&b, Some("ann@example.org"), "x");
        assert_eq!(n.undeliverable, None);
        assert!(n.text.contains("went to ann@example.org"), "{}", n.text);
    }

    #[test]
    fn an_unsigned_report_is_untrusted() {
        let b = report(true, &["ann@example.org"]);
        let n = report_note(&b, None, "x");
        assert_eq!(n.undeliverable, None);
        assert!(n.text.starts_with("Untrusted delivery report (permanent)"));
    }
}
