//! Public replies and internal notes.

use super::{
    ActionError, Actions, OpenTicket, Result, actor_label, change_status, load_visible, require,
};
use crate::domain::people::Capability;
use crate::domain::rules::{Event, Transition, apply};
use crate::domain::{Actor, AuthorKind, MessageKind, Millis, Status, TicketRef};
use crate::store::outbox::Notice;
use crate::store::{NewMessage, Tx};

/// A reply as written.
#[derive(Debug, Clone, Default)]
pub struct ReplyInput {
    pub body_text: String,
    pub full_text: Option<String>,
    pub body_html: Option<String>,
    /// Staff: a status chosen alongside the reply. Requesters: only `closed`.
    pub status: Option<Status>,
    pub mail_message_id: Option<String>,
    pub inbound_id: Option<i64>,
    /// Record without notifying anyone (silent import).
    pub silent: bool,
    /// For mail: the sender's verification, as stored (SPEC §5.11).
    pub verification: Option<String>,
    /// For mail: how it was read, when that needs saying.
    pub notice: Option<String>,
    /// Files attached to the reply (see [`Actions::attach_in`]).
    pub files: Vec<crate::mail::Attachment>,
    /// For mail: the requester writing becomes a participant first (they
    /// were matched by a signed token or named by the thread).
    pub join_sender: bool,
    /// For mail: this mail arrived after a reply to it had opened the
    /// ticket; a system message says it was joined to the conversation.
    pub arrived_late: bool,
    /// For mail: the people the requester's verified mail also went to,
    /// who become participants when the reply lands on the ticket.
    pub cc: Vec<crate::domain::EmailAddress>,
}

impl ReplyInput {
    /// A plain reply with just a body.
    pub fn text(body: &str) -> Self {
        ReplyInput {
            body_text: body.to_string(),
            ..ReplyInput::default()
        }
    }
}

/// Where a reply ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// On the ticket, with the status it has now.
    Added { message_id: i64, status: Status },
    /// The ticket was closed past the reopen window: a new linked ticket.
    NewTicket {
        ticket_id: i64,
        reference: TicketRef,
    },
}

fn non_empty(body: &str) -> Result<()> {
    if body.trim().is_empty() {
        return Err(ActionError::Invalid("the message is empty".into()));
    }
    Ok(())
}

impl Actions {
    /// Adds a public reply and applies the status rules.
    pub async fn reply(
        &self,
        actor: Actor,
        ticket_id: i64,
        input: ReplyInput,
        now: Millis,
    ) -> Result<ReplyOutcome> {
        let mut tx = self.store.begin().await?;
        let outcome = self.reply_in(&mut tx, actor, ticket_id, input, now).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// [`Actions::reply`] inside a transaction the caller commits.
    pub async fn reply_in(
        &self,
        tx: &mut Tx,
        actor: Actor,
        ticket_id: i64,
        input: ReplyInput,
        now: Millis,
    ) -> Result<ReplyOutcome> {
        non_empty(&input.body_text)?;
        if let Actor::Requester { requester_id } = actor
            && (input.join_sender || input.arrived_late)
        {
            if input.join_sender {
                tx.add_participant(ticket_id, requester_id).await?;
            }
            if input.arrived_late {
                let sender = tx.requester(requester_id).await?.email;
                let text = format!(
                    "A mail from {sender} arrived after a reply to it and was joined to this conversation"
                );
                tx.insert_message(NewMessage::system(ticket_id, text, now))
                    .await?;
            }
        }
        let mut ticket = load_visible(tx, actor, ticket_id).await?;
        let mut before = ticket.clone();
        let state = ticket.rule_state();
        let transition = apply(
            &state,
            Event::PublicReply {
                chosen: input.status,
            },
            actor.kind(),
            &self.settings.get().rules(),
            now,
        )?;
        if transition == Transition::NewLinkedTicket {
            return self.follow_up(tx, actor, &ticket, input, now).await;
        }
        let (author_kind, author_user_id, author_requester_id) = match actor {
            Actor::Staff { user_id, .. } => (AuthorKind::Agent, Some(user_id), None),
            Actor::Requester { requester_id } => (AuthorKind::Requester, None, Some(requester_id)),
            Actor::System => unreachable_system()?,
        };
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
                notice: input.notice,
                now,
            })
            .await?;
        self.attach_in(tx, ticket_id, message_id, &input.files, now)
            .await?;
        // `insert_message` stamped the ticket's update time already.
        before.updated_at = now;
        if actor.is_staff() && ticket.first_response_at.is_none() {
            ticket.first_response_at = Some(now);
            ticket.pause = ticket.pause.on_first_response(now);
        }
        if let Transition::To { status, reason } = transition {
            let by = actor_label(tx, actor).await?;
            change_status(tx, &mut ticket, status, reason, &by, now).await?;
        }
        self.save(tx, &before, &mut ticket, now).await?;
        for e in &input.cc {
            let p = tx.upsert_requester(e, None, now, false).await?;
            tx.add_participant(ticket_id, p.id).await?;
        }
        if !input.silent {
            self.notify_reply(tx, actor, (ticket_id, &ticket), message_id, now)
                .await?;
        }
        Ok(ReplyOutcome::Added {
            message_id,
            status: ticket.status,
        })
    }

    /// A requester's reply to a ticket closed past the reopen window opens
    /// a follow-up ticket, linked to it, with its assignee.
    async fn follow_up(
        &self,
        tx: &mut Tx,
        actor: Actor,
        ticket: &crate::store::Ticket,
        input: ReplyInput,
        now: Millis,
    ) -> Result<ReplyOutcome> {
        let Actor::Requester { requester_id } = actor else {
            return Err(ActionError::Invalid("the ticket is closed".into()));
        };
        let requester = tx.requester(requester_id).await?;
        let mut open = OpenTicket::new(
            requester.email,
            &ticket.subject,
            &input.body_text,
            ticket.channel,
        );
        open.full_text = input.full_text;
        open.body_html = input.body_html;
        open.priority = Some(ticket.priority);
        open.category = Some(ticket.category.clone());
        open.mailbox_id = ticket.mailbox_id;
        open.mail_message_id = input.mail_message_id;
        open.inbound_id = input.inbound_id;
        open.verification = input.verification;
        open.notice = input.notice;
        open.linked_ticket_id = Some(ticket.id);
        open.silent = input.silent;
        open.files = input.files;
        open.assignee = None;
        let opened = self.open_in(tx, None, open, now).await?;
        if let Some(assignee) = &ticket.assignee {
            let mut new = tx
                .ticket(opened.ticket_id)
                .await?
                .ok_or_else(|| ActionError::NotFound("ticket".into()))?;
            let before = new.clone();
            new.assignee = Some(assignee.clone());
            self.save(tx, &before, &mut new, now).await?;
        }
        Ok(ReplyOutcome::NewTicket {
            ticket_id: opened.ticket_id,
            reference: opened.reference,
        })
    }

    /// Who hears of a reply: the requester and the CC participants of an
    /// agent's; the assignee (else the team's address) of a requester's.
    async fn notify_reply(
        &self,
        tx: &mut Tx,
        actor: Actor,
        (ticket_id, ticket): (i64, &crate::store::Ticket),
        message_id: i64,
        now: Millis,
    ) -> Result<()> {
        if actor.is_staff() {
            self.notify(
                tx,
                ticket_id,
                Notice::AgentReply,
                ticket.requester.email.as_str(),
                Some(message_id),
                now,
            )
            .await?;
            for cc in tx.participants(ticket_id).await? {
                self.notify(
                    tx,
                    ticket_id,
                    Notice::AgentReply,
                    cc.email.as_str(),
                    Some(message_id),
                    now,
                )
                .await?;
            }
        } else {
            let to = match (
                &ticket.assignee,
                &self.settings.get().tickets.notification_address,
            ) {
                (Some(a), _) => Some(a.email.to_string()),
                (None, Some(team)) => Some(team.to_string()),
                (None, None) => None,
            };
            if let Some(to) = to {
                self.notify(
                    tx,
                    ticket_id,
                    Notice::RequesterReply,
                    &to,
                    Some(message_id),
                    now,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Adds an internal note (staff only; never mailed or shown to requesters).
    pub async fn note(&self, actor: Actor, ticket_id: i64, body: &str, now: Millis) -> Result<i64> {
        let mut tx = self.store.begin().await?;
        let id = self
            .note_in(&mut tx, actor, ticket_id, body, &[], now)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// `note` inside the caller's transaction (to store its files with it).
    pub async fn note_in(
        &self,
        tx: &mut Tx,
        actor: Actor,
        ticket_id: i64,
        body: &str,
        files: &[crate::mail::Attachment],
        now: Millis,
    ) -> Result<i64> {
        require(actor, Capability::Note, "write internal notes")?;
        non_empty(body)?;
        let Actor::Staff { user_id, .. } = actor else {
            return unreachable_system();
        };
        let mut ticket = load_visible(tx, actor, ticket_id).await?;
        let mut before = ticket.clone();
        let mut note = NewMessage::system(ticket_id, body, now);
        note.kind = MessageKind::Note;
        note.author_kind = AuthorKind::Agent;
        note.author_user_id = Some(user_id);
        let id = tx.insert_message(note).await?;
        self.attach_in(tx, ticket_id, id, files, now).await?;
        // `insert_message` stamped the ticket's update time already.
        before.updated_at = now;
        self.save(tx, &before, &mut ticket, now).await?;
        self.tell_mentioned(tx, ticket_id, id, user_id, body, now)
            .await?;
        Ok(id)
    }

    /// The agents a note @mentions (not its author): a mark in their
    /// console and a mail, unless they switched that off.
    async fn tell_mentioned(
        &self,
        tx: &mut Tx,
        ticket_id: i64,
        note: i64,
        author: i64,
        body: &str,
        now: Millis,
    ) -> Result<()> {
        let handles = crate::domain::mention::handles(body);
        if handles.is_empty() {
            return Ok(());
        }
        let agents = tx.mentionable().await?;
        let named: Vec<i64> = crate::domain::mention::resolve(&handles, &agents)
            .into_iter()
            .filter(|id| *id != author)
            .collect();
        if named.is_empty() {
            return Ok(());
        }
        tx.record_mentions(ticket_id, note, author, &named, now)
            .await?;
        for agent in agents.iter().filter(|a| named.contains(&a.id)) {
            self.notify(
                tx,
                ticket_id,
                Notice::Mentioned,
                &agent.email,
                Some(note),
                now,
            )
            .await?;
        }
        Ok(())
    }
}

/// Mail that claims to be an agent's but cannot count as their reply
/// (unverified, or without that agent's own token): kept for agents to
/// read, sent to no one (SPEC §5.11).
#[derive(Debug, Clone)]
pub struct UnverifiedAgentMail {
    pub claimed_from: String,
    pub body_text: String,
    pub full_text: Option<String>,
    pub mail_message_id: Option<String>,
    pub inbound_id: Option<i64>,
    pub verification: Option<String>,
}

impl Actions {
    /// Records [`UnverifiedAgentMail`] on a ticket as an internal note by
    /// the system; no status changes, nothing is sent.
    pub async fn unverified_agent_mail_in(
        &self,
        tx: &mut Tx,
        ticket_id: i64,
        mail: UnverifiedAgentMail,
        now: Millis,
    ) -> Result<i64> {
        let text = format!(
            "Unverified mail claiming to be from {} (not sent to anyone):\n\n{}",
            mail.claimed_from, mail.body_text
        );
        let mut note = NewMessage::system(ticket_id, text, now);
        note.kind = MessageKind::Note;
        note.full_text = mail.full_text;
        note.mail_message_id = mail.mail_message_id;
        note.inbound_id = mail.inbound_id;
        note.verification = mail.verification;
        Ok(tx.insert_message(note).await?)
    }
}

/// The permission rules never let the system task write a reply or note;
/// this is the error should that ever change without the code following.
fn unreachable_system<T>() -> Result<T> {
    Err(ActionError::Forbidden(
        "the system task does not write replies or notes".into(),
    ))
}
