//! Opening a ticket, from any channel.

use super::{ActionError, Actions, Result, require};
use crate::domain::people::Capability;
use crate::domain::{
    Actor, AuthorKind, Channel, EmailAddress, MessageKind, Millis, Priority, TicketRef,
};
use crate::store::outbox::Notice;
use crate::store::{NewMessage, NewTicket, Tx};

/// Longest subject kept, in characters: all of a real one (RFC 5322's line
/// limit), so that another help desk's tag at its end (`[desk #4711]`)
/// goes back out in our replies; pages shorten it for display.
const MAX_SUBJECT: usize = 998;

/// What a new ticket is opened with.
#[derive(Debug, Clone)]
pub struct OpenTicket {
    pub requester: EmailAddress,
    /// The requester's display name, if known (mail From, form, agent input).
    pub requester_name: Option<String>,
    pub subject: String,
    pub body_text: String,
    pub full_text: Option<String>,
    pub body_html: Option<String>,
    pub channel: Channel,
    pub priority: Option<Priority>,
    pub category: Option<String>,
    /// Staff only: who should work on it.
    pub assignee: Option<EmailAddress>,
    /// The mailbox's default assignee, applied when no one is chosen; an
    /// address that is no active agent leaves the ticket unassigned.
    pub default_assignee: Option<EmailAddress>,
    pub related: Option<(String, String)>,
    /// CC participants.
    pub cc: Vec<EmailAddress>,
    pub mailbox_id: Option<i64>,
    pub mail_message_id: Option<String>,
    pub inbound_id: Option<i64>,
    /// The ticket this one continues (reply after the reopen window).
    pub linked_ticket_id: Option<i64>,
    /// Why it was linked rather than added to that ticket, as the system
    /// message says it ("a reply after that ticket was closed" when `None`).
    pub link_reason: Option<String>,
    /// For mail: the sender's verification, as stored (SPEC §5.11).
    pub verification: Option<String>,
    /// For mail: how it was read, when that needs saying.
    pub notice: Option<String>,
    /// Import without telling anyone.
    pub silent: bool,
    /// The requester's row, when the caller has just read or made it in
    /// the same transaction (the gateway): spares looking it up again.
    pub requester_row: Option<crate::store::Requester>,
    /// For mail: the loop guard's key for its words
    /// ([`crate::mail::classify::content_key`]).
    /// Files attached to the first message (see [`Actions::attach_in`]).
    pub files: Vec<crate::mail::Attachment>,
    pub content_key: Option<String>,
}

impl OpenTicket {
    /// A ticket with just the essentials; the rest defaulted.
    pub fn new(requester: EmailAddress, subject: &str, body: &str, channel: Channel) -> Self {
        OpenTicket {
            requester,
            requester_name: None,
            subject: subject.to_string(),
            body_text: body.to_string(),
            full_text: None,
            body_html: None,
            channel,
            priority: None,
            category: None,
            assignee: None,
            default_assignee: None,
            related: None,
            cc: Vec::new(),
            mailbox_id: None,
            mail_message_id: None,
            inbound_id: None,
            linked_ticket_id: None,
            link_reason: None,
            verification: None,
            notice: None,
            silent: false,
            requester_row: None,
            content_key: None,
            files: Vec::new(),
        }
    }
}

/// The ticket that was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub ticket_id: i64,
    pub reference: TicketRef,
    pub requester_id: i64,
    pub message_id: i64,
}

/// A clean one-line subject: control characters gone, whitespace collapsed, length capped.
fn clean_subject(s: &str) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let s: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SUBJECT)
        .collect();
    if s.is_empty() {
        "(no subject)".to_string()
    } else {
        s
    }
}

impl Actions {
    /// Opens a ticket. `by` is `None` when the requester opens it themselves
    /// (mail, portal), or the staff member opening it on their behalf.
    pub async fn open_ticket(
        &self,
        by: Option<Actor>,
        input: OpenTicket,
        now: Millis,
    ) -> Result<Opened> {
        let mut tx = self.store.begin().await?;
        let opened = self.open_in(&mut tx, by, input, now).await?;
        tx.commit().await?;
        Ok(opened)
    }

    /// [`Actions::open_ticket`] inside a transaction the caller commits.
    pub async fn open_in(
        &self,
        tx: &mut Tx,
        by: Option<Actor>,
        mut input: OpenTicket,
        now: Millis,
    ) -> Result<Opened> {
        let staff = match by {
            None => None,
            Some(actor @ Actor::Staff { user_id, .. }) => Some((actor, user_id)),
            Some(other) => {
                return Err(ActionError::Forbidden(format!(
                    "{other:?} cannot open tickets for others"
                )));
            }
        };
        let settings = self.settings.get();
        let tickets = &settings.tickets;
        let (category, assignee) = self.checked(tx, staff, &input).await?;
        let requester = match input.requester_row.take() {
            Some(row) if row.email == input.requester => row,
            _ => {
                tx.upsert_requester(
                    &input.requester,
                    input.requester_name.as_deref(),
                    now,
                    false,
                )
                .await?
            }
        };
        let priority = input.priority.unwrap_or(tickets.default_priority);
        let (sla_state, sla_due_at) = self.sla_at_creation(priority, now);
        let new = NewTicket {
            subject: clean_subject(&input.subject),
            priority,
            sla_state,
            sla_due_at,
            category,
            channel: input.channel,
            requester_id: requester.id,
            assignee_id: assignee.as_ref().map(|u| u.id),
            mailbox_id: input.mailbox_id,
            related: input.related.clone(),
            linked_ticket_id: input.linked_ticket_id,
            content_key: input.content_key.clone(),
            now,
        };
        let (ticket_id, number) = tx.insert_ticket(&new).await?;
        for cc in input.cc.iter().filter(|cc| **cc != input.requester) {
            let p = tx.upsert_requester(cc, None, now, false).await?;
            tx.add_participant(ticket_id, p.id).await?;
        }
        // The first message is the requester's words, also when an agent
        // enters them (a phone call, a chat): it says who entered it.
        let entered_by = match staff {
            Some((_, user_id)) => entered_by(tx, user_id, input.channel).await?,
            None => None,
        };
        let (author_kind, author_user_id, author_requester_id) =
            (AuthorKind::Requester, None, Some(requester.id));
        let message_id = tx
            .insert_message(NewMessage {
                ticket_id,
                kind: MessageKind::Reply,
                author_kind,
                author_user_id,
                author_requester_id,
                body_text: input.body_text,
                full_text: input.full_text,
                body_html: input.body_html,
                mail_message_id: input.mail_message_id,
                inbound_id: input.inbound_id,
                verification: input.verification,
                notice: input.notice.or(entered_by),
                now,
            })
            .await?;
        self.attach_in(tx, ticket_id, message_id, &input.files, now)
            .await?;
        let reference = TicketRef::new(&tickets.prefix, number);
        let assigned = assignee.as_ref().map(|u| &u.email);
        let follows = (input.linked_ticket_id, input.link_reason.as_deref());
        opening_notes(tx, (ticket_id, &reference), follows, assigned, now).await?;
        if !input.silent {
            let first = (ticket_id, message_id);
            self.notify_opened(tx, first, &requester, assignee.as_ref(), staff, now)
                .await?;
        }
        Ok(Opened {
            ticket_id,
            reference,
            requester_id: requester.id,
            message_id,
        })
    }

    /// The ticket's category and assignee as the request asks, checked
    /// against the settings and the actor's rights, with the request's
    /// related reference kind and channel.
    async fn checked(
        &self,
        tx: &mut Tx,
        staff: Option<(Actor, i64)>,
        input: &OpenTicket,
    ) -> Result<(String, Option<crate::store::users::User>)> {
        let settings = self.settings.get();
        let tickets = &settings.tickets;
        let category = match &input.category {
            Some(c) => tickets
                .category(c)
                .ok_or_else(|| {
                    ActionError::Invalid(format!(
                        "category `{c}` is not one of: {}",
                        tickets.categories.join(", ")
                    ))
                })?
                .to_string(),
            None => tickets.default_category().to_string(),
        };
        let assignee = match &input.assignee {
            Some(email) => {
                let (actor, _) = staff.ok_or_else(|| {
                    ActionError::Forbidden("a requester may not assign tickets".into())
                })?;
                require(actor, Capability::SetAssignee, "assign tickets")?;
                let user = tx.user_by_email(email).await?.filter(|u| u.active);
                Some(user.ok_or_else(|| {
                    ActionError::Invalid(format!("no active agent has the address {email}"))
                })?)
            }
            None => match input
                .default_assignee
                .as_ref()
                .or(tickets.default_assignee.as_ref())
            {
                Some(email) => {
                    let user = tx.user_by_email(email).await?.filter(|u| u.active);
                    if user.is_none() {
                        tracing::warn!(%email, "the default assignee is no active agent; left unassigned");
                    }
                    user
                }
                None => None,
            },
        };
        if let Some((kind, _)) = &input.related
            && !tickets.related_kinds.iter().any(|k| k == kind)
        {
            return Err(ActionError::Invalid(format!(
                "related reference kind `{kind}` is not enabled"
            )));
        }
        if staff.is_none() && input.channel != Channel::Email && input.channel != Channel::Web {
            return Err(ActionError::Forbidden(format!(
                "only staff open {} tickets",
                input.channel
            )));
        }
        Ok((category, assignee))
    }

    /// Who hears of a new ticket: the requester (a receipt), the team's
    /// address, and the assignee unless they assigned it themselves.
    async fn notify_opened(
        &self,
        tx: &mut Tx,
        (ticket_id, message_id): (i64, i64),
        requester: &crate::store::Requester,
        assignee: Option<&crate::store::users::User>,
        staff: Option<(Actor, i64)>,
        now: Millis,
    ) -> Result<()> {
        let settings = self.settings.get();
        let tickets = &settings.tickets;
        self.notify(
            tx,
            ticket_id,
            Notice::Receipt,
            requester.email.as_str(),
            Some(message_id),
            now,
        )
        .await?;
        if let Some(team) = &tickets.notification_address {
            self.notify(
                tx,
                ticket_id,
                Notice::TeamNewTicket,
                team.as_str(),
                Some(message_id),
                now,
            )
            .await?;
        }
        // The assignee hears of it, unless they assigned it themselves.
        if let Some(assignee) = assignee
            && staff.is_none_or(|(_, actor_id)| assignee.id != actor_id)
        {
            self.notify(
                tx,
                ticket_id,
                Notice::Assigned,
                assignee.email.as_str(),
                Some(message_id),
                now,
            )
            .await?;
        }
        Ok(())
    }
}

/// The system messages of a new ticket: a follow-up says what it follows
/// (and the old ticket says where it went on); an assigned one says to whom.
async fn opening_notes(
    tx: &mut Tx,
    (ticket_id, reference): (i64, &TicketRef),
    (linked, link_reason): (Option<i64>, Option<&str>),
    assigned: Option<&crate::domain::EmailAddress>,
    now: Millis,
) -> Result<()> {
    if let Some(linked) = linked
        && let Some(old) = tx.ticket(linked).await?
    {
        let why = link_reason.unwrap_or("a reply after that ticket was closed");
        let text = format!("Opened as a follow-up of {} ({why})", old.reference);
        tx.insert_message(NewMessage::system(ticket_id, text, now))
            .await?;
        let back = format!("A later reply opened the follow-up ticket {reference}");
        tx.insert_message(NewMessage::system(linked, back, now))
            .await?;
    }
    if let Some(email) = assigned {
        let text = format!("Assigned to {email}");
        tx.insert_message(NewMessage::system(ticket_id, text, now))
            .await?;
    }
    Ok(())
}

/// "Entered by Alan Agent (phone)": the first message's note when an agent
/// entered the requester's words.
async fn entered_by(tx: &mut Tx, user_id: i64, channel: Channel) -> Result<Option<String>> {
    Ok(tx.user(user_id).await?.map(|u| {
        let who = if u.name.trim().is_empty() {
            u.email.to_string()
        } else {
            u.name.clone()
        };
        format!("Entered by {who} ({channel})")
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn subjects_are_cleaned() {
        assert_eq!(
            super::clean_subject("  Printer\n\tbroken  "),
            "Printer broken"
        );
        assert_eq!(super::clean_subject(" \u{7} "), "(no subject)");
        assert_eq!(
            super::clean_subject(&"x".repeat(2000)).chars().count(),
            super::MAX_SUBJECT
        );
        // Another help desk's tag at the end of a long subject stays.
        let long = format!("{} [otherdesk.example #4711]", "word ".repeat(54));
        assert!(long.chars().count() > 270);
        assert!(super::clean_subject(&long).ends_with("[otherdesk.example #4711]"));
    }
}
