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

/// How many of a ticket's latest replies a reply is compared with.
const KNOWN_REPLIES: i64 = 6;

/// Whether a reply's text, as the rules cut it, is long enough to hold a
/// quoted copy of an earlier message (the thread-aware check costs a
/// query, so short replies skip it).
fn suspect_quote(text: &str) -> bool {
    text.split_whitespace().nth(24).is_some()
}

impl Processor {
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
        let settings = self.actions.settings();
        let prefix = &settings.tickets.prefix;
        // In-Reply-To first, then References from the newest; one lookup for
        // them and the mail's own Message-ID.
        let wanted: Vec<&str> = mail
            .in_reply_to
            .iter()
            .chain(mail.references.iter().rev())
            .map(String::as_str)
            .collect();
        let own = mail.message_id.as_deref();
        let asked: Vec<&str> = asked_ids(mail).collect();
        let seen = batch.mail_ids_known(tx, &asked).await?;
        // Postdesk's own mail coming back, or a copy already processed; or
        // a mail whose reply outran it (its Message-ID named by a ticket's
        // mail, not yet a message of its own).
        let mut outran_by = None;
        if let Some(id) = own {
            match seen.iter().find(|(k, ..)| k == id) {
                Some((_, _, true)) => {
                    batch.done.push(Finished {
                        id: raw.id,
                        ticket_id: None,
                        note: Some("postdesk's own mail".into()),
                    });
                    return Ok(Disposition::Duplicate);
                }
                Some((_, ticket, false)) => {
                    if tx.mail_id_has_message(id).await? {
                        batch.done.push(Finished {
                            id: raw.id,
                            ticket_id: Some(*ticket),
                            note: Some("duplicate".into()),
                        });
                        return Ok(Disposition::Duplicate);
                    }
                    outran_by = Some(*ticket);
                }
                None => {}
            }
        }
        let known: Vec<(String, i64, bool)> = seen
            .into_iter()
            .filter(|(k, ..)| wanted.contains(&k.as_str()))
            .collect();
        let support: Option<EmailAddress> = mailbox.map(|m| m.settings.address.clone());
        let mut found = Found::default();
        let recipients: Vec<&EmailAddress> =
            mail.to.iter().chain(&mail.cc).map(|m| &m.email).collect();
        // Plus-address tokens, from the addressed recipients and from what
        // the receiving servers recorded (a Bcc, a bounce's envelope).
        let delivered: Vec<EmailAddress> = mail
            .delivered_to
            .iter()
            .filter_map(|d| d.parse().ok())
            .collect();
        let tokens = match &support {
            Some(support) => plus_tokens(recipients.iter().copied().chain(&delivered), support),
            None => Vec::new(),
        };
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
        let matched_id = wanted
            .iter()
            .find_map(|id| known.iter().find(|(k, ..)| k == id));
        found.message_id = matched_id.map(|(_, t, _)| *t);
        if let Some(n) = self.key.find_marker(&mail.text, prefix) {
            found.marker = tx.ticket_id_by_number(n).await?;
        }
        if let Some(tag) = ticket_tag(&mail.subject, prefix) {
            found.subject_tag = tx.ticket_id_by_number(tag.number()).await?;
        }
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
        // A From address is a claim (SPEC §5.11): what a trusted server says of it.
        let verification = verify_with(
            &mail.auth_results,
            from.email.domain(),
            &mailbox
                .map(|m| m.settings.sender_trust())
                .unwrap_or_default(),
            prepared.local_auth.as_ref(),
        );
        let verified = verification.is_verified();
        // A Message-ID is the sender's secret when postdesk sent it to that
        // very address, or when it was received on the ticket (a
        // participant replying to the thread holds it; non-participants
        // never join by it).
        // Only an unverified sender needs it: spare the lookup otherwise.
        found.message_id_secret = match matched_id {
            _ if verified => false,
            Some((id, _, true)) => match self.key.outbox_id_of(id) {
                Some(outbox) => tx
                    .outbox_recipient(outbox)
                    .await?
                    .is_some_and(|(_, to)| to.eq_ignore_ascii_case(from.email.as_str())),
                None => false,
            },
            Some((_, _, false)) => true,
            None => false,
        };
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
        let is_participant = match found.first() {
            Some((t, _)) => tx.is_participant(t, requester.id).await?,
            None => false,
        };
        let mut decision = decide(
            &found,
            Sender {
                agent: staff.as_ref().map(|u| u.id),
                is_participant,
                verified,
            },
        );
        // A reply that arrived first (reordered in transit, or committed by
        // another daemon first) opened a ticket naming this mail: this mail
        // joins that conversation instead of opening a second one, with no
        // notification of its own.
        let mut joined_late = false;
        if let Some(n) = outran_by
            && staff.is_none()
            && matches!(decision, Decision::New | Decision::NewLinked(..))
            && let Some(t) = tx.ticket(n).await?
            && now - t.created_at <= LATE_PARENT_MS
        {
            decision = Decision::RequesterReply(n);
            joined_late = true;
        }
        // The same race one level down: a reply to this mail opened a
        // ticket of its own, and this mail goes to its conversation's
        // ticket. The two are one conversation: the reply's ticket is
        // joined into the older one below, if the sender takes part in both
        // (no stranger can join two tickets by naming a Message-ID).
        let mut split = None;
        if let Some(n) = outran_by
            && !joined_late
            && staff.is_none()
            && let Decision::RequesterReply(t) = decision
            && t != n
            && is_participant
            && let Some(other) = tx.ticket(n).await?
            && now - other.created_at <= LATE_PARENT_MS
            && tx.is_participant(n, requester.id).await?
        {
            split = Some(n);
        }
        let (body_text, full_text, body_html) = (
            prepared.body_text.clone(),
            prepared.full_text.clone(),
            prepared.body_html.clone(),
        );
        let stored_verification = Some(verification.stored());
        let notice = prepared.mail.html_notice.clone();
        // CC participants: everyone addressed but the support address(es)
        // and the sender; only a verified mail adds them (SPEC §5.11).
        let ours = |e: &EmailAddress| {
            settings.mailboxes.iter().any(|m| {
                let (local, domain) = m.address.as_str().split_once('@').unwrap_or_default();
                e.domain() == domain
                    && (e.as_str() == m.address.as_str()
                        || e.as_str().starts_with(&format!("{local}+")))
            }) || support.as_ref().is_some_and(|s| {
                let (local, domain) = s.as_str().split_once('@').unwrap_or_default();
                e.domain() == domain && (e == s || e.as_str().starts_with(&format!("{local}+")))
            })
        };
        let cc: Vec<EmailAddress> = if verified {
            recipients
                .iter()
                .filter(|e| !ours(e) && **e != &from.email)
                .map(|e| (*e).clone())
                .take(50)
                .collect()
        } else {
            Vec::new()
        };
        let silent = raw.silent;
        let (ticket_id, message_id, disposition) = match decision {
            Decision::UnverifiedAgent(t) => {
                let note = UnverifiedAgentMail {
                    claimed_from: from.email.to_string(),
                    body_text,
                    full_text,
                    mail_message_id: mail.message_id.clone(),
                    inbound_id: Some(raw.id),
                    verification: stored_verification,
                };
                let id = self
                    .actions
                    .unverified_agent_mail_in(tx, t, note, now)
                    .await?;
                (t, id, Disposition::Noted { ticket_id: t })
            }
            Decision::AgentReply(t) | Decision::RequesterReply(t) => {
                // A long text may still quote one of the ticket's messages
                // in a language or shape no rule knows; cut the copy
                // (SPEC §5.6).
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
                let actor = match (decision, &staff) {
                    (Decision::AgentReply(_), Some(u)) => Actor::Staff {
                        user_id: u.id,
                        role: u.role,
                    },
                    _ => Actor::Requester {
                        requester_id: requester.id,
                    },
                };
                let participant = if joined_late {
                    tx.is_participant(t, requester.id).await?
                } else {
                    is_participant
                };
                let input = ReplyInput {
                    body_text,
                    full_text,
                    body_html,
                    status: None,
                    mail_message_id: mail.message_id.clone(),
                    inbound_id: Some(raw.id),
                    silent: silent || joined_late,
                    verification: stored_verification,
                    notice,
                    // The mail's files are stored after the action, with the rest of the mail.
                    files: Vec::new(),
                    // Matched by signed token (or named by the thread's
                    // first reply): the sender becomes a participant.
                    join_sender: !participant,
                    arrived_late: joined_late,
                    cc: if staff.is_none() {
                        cc.clone()
                    } else {
                        Vec::new()
                    },
                };
                match self.actions.reply_in(tx, actor, t, input, now).await? {
                    ReplyOutcome::Added { message_id, .. } => {
                        let t = match split {
                            Some(n) => self.actions.join_split_in(tx, n, t, now).await?,
                            None => t,
                        };
                        (t, message_id, Disposition::Replied { ticket_id: t })
                    }
                    ReplyOutcome::NewTicket { ticket_id, .. } => {
                        let first = tx.first_message_id(ticket_id).await?;
                        (ticket_id, first, Disposition::Opened { ticket_id })
                    }
                }
            }
            Decision::New | Decision::NewLinked(..) => {
                let subject = clean_subject(&mail.subject, prefix);
                let mut open =
                    OpenTicket::new(from.email.clone(), &subject, &body_text, Channel::Email);
                open.requester_name = from.name.clone();
                open.full_text = full_text;
                open.body_html = body_html;
                open.cc = cc.clone();
                open.mailbox_id = raw.mailbox_id;
                open.mail_message_id = mail.message_id.clone();
                open.inbound_id = Some(raw.id);
                open.silent = silent;
                open.requester_row = Some(requester.clone());
                open.verification = stored_verification;
                open.notice = notice;
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
                            from.email, verification.reason
                        ),
                    });
                }
                if let Some(m) = mailbox {
                    open.priority = m.settings.default_priority;
                    open.category = m.settings.default_category.clone();
                    open.default_assignee = m.settings.default_assignee.clone();
                }
                let opened = self.actions.open_in(tx, None, open, now).await?;
                (
                    opened.ticket_id,
                    opened.message_id,
                    Disposition::Opened {
                        ticket_id: opened.ticket_id,
                    },
                )
            }
        };
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
            own.into_iter().chain(referenced.iter().copied().take(50)),
            ticket_id,
        );
        self.store_attachments(tx, ticket_id, message_id, mail, now)
            .await?;
        batch.done.push(Finished {
            id: raw.id,
            ticket_id: Some(ticket_id),
            note: None,
        });
        Ok(disposition)
    }

    async fn store_attachments(
        &self,
        tx: &mut Tx,
        ticket_id: i64,
        message_id: i64,
        mail: &ParsedMail,
        now: Millis,
    ) -> Result<(), Refused> {
        self.actions
            .attach_in(tx, ticket_id, message_id, &mail.attachments, now)
            .await?;
        Ok(())
    }
}
