//! One prepared mail applied inside the batch's transaction: matched
//! (SPEC §5.4, §5.11) and turned into one action — a new ticket, a reply,
//! an unverified agent's note — with its attachments and Message-IDs.

use super::*;

/// Why a mail went to quarantine rather than a ticket.
pub(super) enum Refused {
    Quarantine(String),
    Transient(StoreError),
    Duplicate,
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        if e.is_unique_violation() {
            Refused::Duplicate
        } else if e.is_transient() {
            Refused::Transient(e)
        } else {
            Refused::Quarantine(format!("store: {e}"))
        }
    }
}

impl From<ActionError> for Refused {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::Store(s) => s.into(),
            other => Refused::Quarantine(other.to_string()),
        }
    }
}

/// The Message-IDs a mail names, nearest first: In-Reply-To, then
/// References from the newest.
fn wanted_ids(mail: &ParsedMail) -> Vec<&str> {
    mail.in_reply_to
        .iter()
        .chain(mail.references.iter().rev())
        .map(String::as_str)
        .collect()
}

/// What the mail's own Message-ID says before anything else is read.
enum Seen {
    /// Nothing to do: postdesk's own mail, or a copy already processed.
    Done(Disposition),
    /// A new mail. `outran_by`: a ticket a reply to it opened (the reply
    /// arrived first). `known`: the ids it names that a ticket holds, with
    /// the ticket and whether postdesk sent them.
    Fresh {
        outran_by: Option<i64>,
        known: Vec<(String, i64, bool)>,
    },
}

/// Who wrote a human mail, as far as the desk can tell.
pub(super) struct Writer {
    pub(super) from: crate::mail::Mailbox,
    pub(super) verification: crate::mail::auth::Verification,
    /// The agent whose address it is, if an active one.
    pub(super) staff: Option<crate::store::users::User>,
    pub(super) requester: crate::store::Requester,
    /// Whether the requester takes part in the first matched ticket.
    pub(super) is_participant: bool,
}

impl Writer {
    pub(super) fn verified(&self) -> bool {
        self.verification.is_verified()
    }
}

/// How a mail joins a conversation a race split (see [`Processor::decide_for`]).
#[derive(Default)]
pub(super) struct Race {
    /// The mail's reply opened the ticket first: the mail joins it.
    pub(super) joined_late: bool,
    /// A reply to the mail opened this ticket, and the mail goes to the
    /// conversation's older one: the two are joined.
    pub(super) split: Option<i64>,
}

/// The people a verified mail also went to, who become participants: all
/// addressed but the support addresses (and their plus forms) and the
/// sender, at most 50 (SPEC §5.11). An unverified mail adds no one.
fn cc_of(
    recipients: &[&EmailAddress],
    writer: &Writer,
    ours: &[&EmailAddress],
) -> Vec<EmailAddress> {
    if !writer.verified() {
        return Vec::new();
    }
    let is_ours = |e: &EmailAddress| {
        ours.iter().any(|m| {
            let (local, domain) = m.as_str().split_once('@').unwrap_or_default();
            e.domain() == domain && (e == *m || e.as_str().starts_with(&format!("{local}+")))
        })
    };
    recipients
        .iter()
        .filter(|e| !is_ours(e) && **e != &writer.from.email)
        .map(|e| (*e).clone())
        .take(50)
        .collect()
}

impl Processor {
    /// Applies one prepared mail inside the batch's transaction: what its
    /// ids say, which tickets it names, who wrote it, then one action.
    pub(super) async fn apply(
        &self,
        tx: &mut Tx,
        raw: &RawMail,
        prepared: &Prepared,
        mailbox: Option<&MailboxRow>,
        batch: &mut Batch,
        now: Millis,
    ) -> Result<Disposition, Refused> {
        let mail = &prepared.mail;
        let wanted = wanted_ids(mail);
        let (outran_by, known) = match self.already_seen(tx, raw, mail, &wanted, batch).await? {
            Seen::Done(d) => return Ok(d),
            Seen::Fresh { outran_by, known } => (outran_by, known),
        };
        let support: Option<EmailAddress> = mailbox.map(|m| m.settings.address.clone());
        let recipients: Vec<&EmailAddress> =
            mail.to.iter().chain(&mail.cc).map(|m| &m.email).collect();
        let (mut found, tokens) = self
            .find_tickets(tx, mail, support.as_ref(), &recipients)
            .await?;
        let matched_id = wanted
            .iter()
            .find_map(|id| known.iter().find(|(k, ..)| k == id));
        found.message_id = matched_id.map(|(_, t, _)| *t);
        if prepared.class != Classification::Human {
            let (class, bounce) = (prepared.class.clone(), prepared.bounce.clone());
            return self
                .record_automated(tx, raw, mail, class, bounce, found, &tokens, batch, now)
                .await;
        }
        let Some(from) = mail.from.clone() else {
            return Err(Refused::Quarantine(
                "the mail has no usable From address".into(),
            ));
        };
        let writer = self.writer(tx, prepared, mailbox, from, batch, now).await?;
        found.message_id_secret = self.message_id_secret(tx, matched_id, &writer).await?;
        let is_participant = match found.first() {
            Some((t, _)) => tx.is_participant(t, writer.requester.id).await?,
            None => false,
        };
        let writer = Writer {
            is_participant,
            ..writer
        };
        let (decision, race) = self.decide_for(tx, &found, &writer, outran_by, now).await?;
        let settings = self.actions.settings();
        let ours: Vec<&EmailAddress> = settings
            .mailboxes
            .iter()
            .map(|m| &m.address)
            .chain(support.as_ref())
            .collect();
        let cc = cc_of(&recipients, &writer, &ours);
        let (ticket_id, message_id, disposition) = match decision {
            Decision::UnverifiedAgent(t) => {
                let note = UnverifiedAgentMail {
                    claimed_from: writer.from.email.to_string(),
                    body_text: prepared.body_text.clone(),
                    full_text: prepared.full_text.clone(),
                    mail_message_id: mail.message_id.clone(),
                    inbound_id: Some(raw.id),
                    verification: Some(writer.verification.stored()),
                };
                let id = self
                    .actions
                    .unverified_agent_mail_in(tx, t, note, now)
                    .await?;
                (t, id, Disposition::Noted { ticket_id: t })
            }
            Decision::AgentReply(t) | Decision::RequesterReply(t) => {
                let as_agent = matches!(decision, Decision::AgentReply(_));
                self.reply_from_mail(tx, raw, prepared, &writer, as_agent, t, race, cc, now)
                    .await?
            }
            Decision::New | Decision::NewLinked(..) => {
                self.open_from_mail(tx, raw, prepared, mailbox, &writer, decision, cc, now)
                    .await?
            }
        };
        self.finish_mail(
            tx, raw, mail, &wanted, &known, ticket_id, message_id, batch, now,
        )
        .await?;
        Ok(disposition)
    }

    /// Whether the Message-ID the mail was matched by is the sender's
    /// secret: postdesk sent it to that very address, or it was received
    /// on the ticket (a participant replying to the thread holds it;
    /// non-participants never join by it). Only an unverified sender needs
    /// it: the lookup is spared otherwise.
    async fn message_id_secret(
        &self,
        tx: &mut Tx,
        matched_id: Option<&(String, i64, bool)>,
        writer: &Writer,
    ) -> Result<bool, Refused> {
        Ok(match matched_id {
            _ if writer.verified() => false,
            Some((id, _, true)) => match self.key.outbox_id_of(id) {
                Some(outbox) => tx
                    .outbox_recipient(outbox)
                    .await?
                    .is_some_and(|(_, to)| to.eq_ignore_ascii_case(writer.from.email.as_str())),
                None => false,
            },
            Some((_, _, false)) => true,
            None => false,
        })
    }

    /// What every mail that reached a ticket leaves besides its message:
    /// the ancestors it names recorded on the ticket, its files, and its
    /// raw row marked done.
    #[allow(clippy::too_many_arguments)]
    async fn finish_mail(
        &self,
        tx: &mut Tx,
        raw: &RawMail,
        mail: &ParsedMail,
        wanted: &[&str],
        known: &[(String, i64, bool)],
        ticket_id: i64,
        message_id: i64,
        batch: &mut Batch,
        now: Millis,
    ) -> Result<(), Refused> {
        // Ancestors named in In-Reply-To/References join this conversation.
        let mut referenced: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|id| !known.iter().any(|(k, ..)| k == id))
            .collect();
        referenced.sort_unstable();
        referenced.dedup();
        tx.record_referenced_ids(&referenced, ticket_id, now)
            .await?;
        // As the database did: the mail's own id (by trigger), then the first
        // 50 ancestors.
        batch.recorded(
            mail.message_id
                .as_deref()
                .into_iter()
                .chain(referenced.iter().copied().take(50)),
            ticket_id,
        );
        self.actions
            .attach_in(tx, ticket_id, message_id, &mail.attachments, now)
            .await?;
        batch.done.push(Finished {
            id: raw.id,
            ticket_id: Some(ticket_id),
            note: None,
        });
        Ok(())
    }

    /// Reads what the mail's own Message-ID and those it names are known
    /// as: postdesk's own mail coming back, or a copy already processed,
    /// is done with; a mail whose reply outran it (its Message-ID named by
    /// a ticket's mail, not yet a message of its own) is noted.
    async fn already_seen(
        &self,
        tx: &mut Tx,
        raw: &RawMail,
        mail: &ParsedMail,
        wanted: &[&str],
        batch: &mut Batch,
    ) -> Result<Seen, Refused> {
        let asked: Vec<&str> = asked_ids(mail).collect();
        let seen = batch.mail_ids_known(tx, &asked).await?;
        let mut outran_by = None;
        if let Some(id) = mail.message_id.as_deref() {
            match seen.iter().find(|(k, ..)| k == id) {
                Some((_, _, true)) => {
                    batch.done.push(Finished {
                        id: raw.id,
                        ticket_id: None,
                        note: Some("postdesk's own mail".into()),
                    });
                    return Ok(Seen::Done(Disposition::Duplicate));
                }
                Some((_, ticket, false)) => {
                    if tx.mail_id_has_message(id).await? {
                        batch.done.push(Finished {
                            id: raw.id,
                            ticket_id: Some(*ticket),
                            note: Some("duplicate".into()),
                        });
                        return Ok(Seen::Done(Disposition::Duplicate));
                    }
                    outran_by = Some(*ticket);
                }
                None => {}
            }
        }
        let known = seen
            .into_iter()
            .filter(|(k, ..)| wanted.contains(&k.as_str()))
            .collect();
        Ok(Seen::Fresh { outran_by, known })
    }

    /// The tickets the mail names by signed token, marker or subject tag
    /// (its Message-IDs are matched by the caller), and the plus-address
    /// tokens it was sent to.
    async fn find_tickets(
        &self,
        tx: &mut Tx,
        mail: &ParsedMail,
        support: Option<&EmailAddress>,
        recipients: &[&EmailAddress],
    ) -> Result<(Found, Vec<String>), Refused> {
        let prefix = &self.actions.settings().tickets.prefix;
        // Plus-address tokens, from the addressed recipients and from what
        // the receiving servers recorded (a Bcc, a bounce's envelope).
        let delivered: Vec<EmailAddress> = mail
            .delivered_to
            .iter()
            .filter_map(|d| d.parse().ok())
            .collect();
        let tokens = match support {
            Some(support) => plus_tokens(recipients.iter().copied().chain(&delivered), support),
            None => Vec::new(),
        };
        let mut found = Found::default();
        for token in &tokens {
            if found.reply_token.is_none()
                && let Some(n) = self.key.verify_reply_token(token)
            {
                found.reply_token = tx.ticket_id_by_number(n).await?;
            }
            if found.agent_token.is_none()
                && let Some((n, user)) = self.key.verify_agent_token(token)
                && let Some(t) = tx.ticket_id_by_number(n).await?
            {
                found.agent_token = Some((t, user));
            }
        }
        if let Some(n) = self.key.find_marker(&mail.text, prefix) {
            found.marker = tx.ticket_id_by_number(n).await?;
        }
        if let Some(tag) = ticket_tag(&mail.subject, prefix) {
            found.subject_tag = tx.ticket_id_by_number(tag.number()).await?;
        }
        Ok((found, tokens))
    }

    /// Who wrote the mail: what a trusted server says of its From address
    /// (a claim, SPEC §5.11), the agent with that address, and the
    /// requester (made or named now). `is_participant` is filled in later.
    async fn writer(
        &self,
        tx: &mut Tx,
        prepared: &Prepared,
        mailbox: Option<&MailboxRow>,
        from: crate::mail::Mailbox,
        batch: &mut Batch,
        now: Millis,
    ) -> Result<Writer, Refused> {
        let verification = verify_with(
            &prepared.mail.auth_results,
            from.email.domain(),
            &mailbox
                .map(|m| m.settings.sender_trust())
                .unwrap_or_default(),
            prepared.local_auth.as_ref(),
        );
        let staff = match batch.staff.get(&from.email) {
            Some(known) => known.clone(),
            None => {
                let user = tx.user_by_email(&from.email).await?.filter(|u| u.active);
                batch.staff.insert(from.email.clone(), user.clone());
                user
            }
        };
        // A known requester is taken as read, unless the mail names one
        // whose name is still unknown (the upsert fills it in).
        let requester = match batch.requesters.get(&from.email) {
            Some(known)
                if !(known.first_name.is_empty()
                    && known.last_name.is_empty()
                    && from.name.as_deref().is_some_and(|n| !n.trim().is_empty())) =>
            {
                known.clone()
            }
            known => {
                // Not among the senders the batch read: most likely new.
                let likely_new = known.is_none() && batch.mail_ids.is_some();
                let row = tx
                    .upsert_requester(&from.email, from.name.as_deref(), now, likely_new)
                    .await?;
                batch.requesters.insert(from.email.clone(), row.clone());
                row
            }
        };
        Ok(Writer {
            from,
            verification,
            staff,
            requester,
            is_participant: false,
        })
    }

    /// The matching decision (SPEC §5.4), and how a race that split the
    /// conversation is mended.
    async fn decide_for(
        &self,
        tx: &mut Tx,
        found: &Found,
        writer: &Writer,
        outran_by: Option<i64>,
        now: Millis,
    ) -> Result<(Decision, Race), Refused> {
        let mut decision = decide(
            found,
            Sender {
                agent: writer.staff.as_ref().map(|u| u.id),
                is_participant: writer.is_participant,
                verified: writer.verified(),
            },
        );
        let mut race = Race::default();
        let Some(n) = outran_by else {
            return Ok((decision, race));
        };
        if writer.staff.is_some() {
            return Ok((decision, race));
        }
        // A reply that arrived first (reordered in transit, or committed by
        // another daemon first) opened a ticket naming this mail: this mail
        // joins that conversation instead of opening a second one, with no
        // notification of its own.
        if matches!(decision, Decision::New | Decision::NewLinked(..))
            && let Some(t) = tx.ticket(n).await?
            && now - t.created_at <= LATE_PARENT_MS
        {
            decision = Decision::RequesterReply(n);
            race.joined_late = true;
            return Ok((decision, race));
        }
        // The same race one level down: a reply to this mail opened a
        // ticket of its own, and this mail goes to its conversation's
        // ticket. The two are one conversation: the reply's ticket is
        // joined into the older one, if the sender takes part in both
        // (no stranger can join two tickets by naming a Message-ID).
        if let Decision::RequesterReply(t) = decision
            && t != n
            && writer.is_participant
            && let Some(other) = tx.ticket(n).await?
            && now - other.created_at <= LATE_PARENT_MS
            && tx.is_participant(n, writer.requester.id).await?
        {
            race.split = Some(n);
        }
        Ok((decision, race))
    }
}
