//! A human mail's decision turned into one action: a reply on its ticket
//! (mending a race that split its conversation), or a new ticket.

use super::apply::{Race, Writer};
use super::*;

/// How many of a ticket's latest replies a reply is compared with.
const KNOWN_REPLIES: i64 = 6;

/// Whether a reply's text, as the rules cut it, is long enough to hold a
/// quoted copy of an earlier message (the thread-aware check costs a
/// query, so short replies skip it).
fn suspect_quote(text: &str) -> bool {
    text.split_whitespace().nth(24).is_some()
}

impl Processor {
    /// A reply by mail on ticket `t`, by an agent or a requester.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn reply_from_mail(
        &self,
        tx: &mut Tx,
        raw: &RawMail,
        prepared: &Prepared,
        writer: &Writer,
        as_agent: bool,
        t: i64,
        race: Race,
        cc: Vec<EmailAddress>,
        now: Millis,
    ) -> Result<(i64, i64, Disposition), Refused> {
        let mail = &prepared.mail;
        let (body_text, full_text) = (prepared.body_text.clone(), prepared.full_text.clone());
        // A long text may still quote one of the ticket's messages in a
        // language or shape no rule knows; cut the copy (SPEC §5.6).
        let (body_text, full_text) = if suspect_quote(&body_text) {
            let texts = tx.recent_reply_texts(t, KNOWN_REPLIES).await?;
            let known = Known::new(texts.iter().map(String::as_str));
            let cut = extract_reply_in_thread(&mail.text, &known);
            if cut.len() < body_text.len() {
                (cut, Some(mail.text.clone()))
            } else {
                (body_text, full_text)
            }
        } else {
            (body_text, full_text)
        };
        let actor = match (as_agent, &writer.staff) {
            (true, Some(u)) => Actor::Staff {
                user_id: u.id,
                role: u.role,
            },
            _ => Actor::Requester {
                requester_id: writer.requester.id,
            },
        };
        let participant = if race.joined_late {
            tx.is_participant(t, writer.requester.id).await?
        } else {
            writer.is_participant
        };
        let input = ReplyInput {
            body_text,
            full_text,
            body_html: prepared.body_html.clone(),
            status: None,
            mail_message_id: mail.message_id.clone(),
            inbound_id: Some(raw.id),
            silent: raw.silent || race.joined_late,
            verification: Some(writer.verification.stored()),
            notice: mail.html_notice.clone(),
            // The mail's files are stored after the action, with the rest of the mail.
            files: Vec::new(),
            // Matched by signed token (or named by the thread's first
            // reply): the sender becomes a participant.
            join_sender: !participant,
            arrived_late: race.joined_late,
            cc: if writer.staff.is_none() {
                cc
            } else {
                Vec::new()
            },
        };
        Ok(
            match self.actions.reply_in(tx, actor, t, input, now).await? {
                ReplyOutcome::Added { message_id, .. } => {
                    let t = match race.split {
                        Some(n) => self.actions.join_split_in(tx, n, t, now).await?,
                        None => t,
                    };
                    (t, message_id, Disposition::Replied { ticket_id: t })
                }
                ReplyOutcome::NewTicket { ticket_id, .. } => {
                    let first = tx.first_message_id(ticket_id).await?;
                    (ticket_id, first, Disposition::Opened { ticket_id })
                }
            },
        )
    }

    /// A new ticket from mail, linked to an old one when the decision says so.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn open_from_mail(
        &self,
        tx: &mut Tx,
        raw: &RawMail,
        prepared: &Prepared,
        mailbox: Option<&MailboxRow>,
        writer: &Writer,
        decision: Decision,
        cc: Vec<EmailAddress>,
        now: Millis,
    ) -> Result<(i64, i64, Disposition), Refused> {
        let mail = &prepared.mail;
        let from = &writer.from;
        let subject = clean_subject(&mail.subject, &self.actions.settings().tickets.prefix);
        let mut open = OpenTicket::new(
            from.email.clone(),
            &subject,
            &prepared.body_text,
            Channel::Email,
        );
        open.requester_name = from.name.clone();
        open.full_text = prepared.full_text.clone();
        open.body_html = prepared.body_html.clone();
        open.cc = cc;
        open.mailbox_id = raw.mailbox_id;
        open.mail_message_id = mail.message_id.clone();
        open.inbound_id = Some(raw.id);
        open.silent = raw.silent;
        open.requester_row = Some(writer.requester.clone());
        open.verification = Some(writer.verification.stored());
        open.notice = mail.html_notice.clone();
        open.content_key = content_key(&open.body_text);
        if let Decision::NewLinked(old, why) = decision {
            open.linked_ticket_id = Some(old);
            open.link_reason = Some(match why {
                LinkReason::NotAParticipant => {
                    "a reply from someone who takes no part in that ticket".to_string()
                }
                LinkReason::UnverifiedSender => format!(
                    "unverified sender: the mail named that ticket but could not be \
                         verified as from {} ({}), so it was not added to it",
                    from.email, writer.verification.reason
                ),
            });
        }
        if let Some(m) = mailbox {
            open.priority = m.settings.default_priority;
            open.category = m.settings.default_category.clone();
            open.default_assignee = m.settings.default_assignee.clone();
        }
        let opened = self.actions.open_in(tx, None, open, now).await?;
        Ok((
            opened.ticket_id,
            opened.message_id,
            Disposition::Opened {
                ticket_id: opened.ticket_id,
            },
        ))
    }
}
