//! What a notification says: the ticket's view and the template context
//! (the conversation shown, quoted and cut), and the composed mail with its
//! threading headers, sender and attachments.

use super::*;

pub(super) fn quoted(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                ">".into()
            } else {
                format!("> {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn shown(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(TEXT_SHOWN) {
        Some((cut, _)) => format!("{}\n[…]", &t[..cut]),
        None => t.to_string(),
    }
}

pub(super) fn author(m: &StoredMessage, team: &str) -> String {
    match m.author_kind {
        AuthorKind::Agent => {
            let name = m.author_name.clone().unwrap_or_default();
            if name.is_empty() {
                team.to_string()
            } else {
                format!("{name} ({team})")
            }
        }
        _ => m
            .author_name
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| m.author_email.clone())
            .unwrap_or_else(|| "Someone".into()),
    }
}

pub(super) fn bracketed(id: &str) -> String {
    if id.starts_with('<') {
        id.to_string()
    } else {
        format!("<{id}>")
    }
}

pub(super) fn human_span(span: crate::domain::Span) -> String {
    let secs = span.as_millis() / 1000;
    let (n, unit) = if secs % 86_400 == 0 {
        (secs / 86_400, "day")
    } else if secs % 3_600 == 0 {
        (secs / 3_600, "hour")
    } else {
        (secs / 60, "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

pub(super) fn when(ms: Millis) -> String {
    let t = crate::domain::rfc3339(ms);
    // "2026-11-20T10:00:00Z" → "2026-11-20 10:00 UTC"
    match (t.get(..10), t.get(11..16)) {
        (Some(d), Some(h)) => format!("{d} {h} UTC"),
        _ => t,
    }
}

/// Files too large to attach are named in the mail, with where to get
/// them; the others are attached.
fn files_or_note(
    files: Option<&ReplyFiles>,
    rendered: &mut super::super::render::Rendered,
    link: &str,
) -> Vec<compose::OutgoingFile> {
    match files {
        Some(ReplyFiles::Attached(f)) => f.clone(),
        Some(ReplyFiles::Linked(total)) => {
            let note = format!(
                "The files of this reply ({:.1} MB in all) are too large to attach: open your request to download them: {link}",
                *total as f64 / 1_048_576.0
            );
            rendered.text = format!("{}\n\n{note}\n", rendered.text.trim_end());
            rendered.html = format!("{}<p>{}</p>", rendered.html, handlebars::html_escape(&note));
            Vec::new()
        }
        None => Vec::new(),
    }
}

/// In-Reply-To names a mail this recipient has (SPEC §6): the one the
/// notification is about, else the newest of the thread they have — one
/// received on the thread, or one of ours sent to them; never an internal
/// notification to the team they never got — else the thread's root.
fn in_reply_to(c: &Claimed, view: &TicketView, thread: &[String], root: &str) -> String {
    let theirs = |id: &str| {
        view.thread.iter().any(|(known, to)| {
            bracketed(known) == id
                && to
                    .as_deref()
                    .is_none_or(|to| to.eq_ignore_ascii_case(c.recipient.as_str()))
        })
    };
    c.message_id
        .and_then(|id| view.messages.iter().find(|m| m.id == id))
        .and_then(|m| m.mail_message_id.as_deref())
        .map(bracketed)
        .filter(|id| theirs(id))
        .or_else(|| thread.iter().rev().find(|id| theirs(id)).cloned())
        .unwrap_or_else(|| root.to_string())
}

impl Worker {
    /// Renders, addresses and composes one notification. Long because it
    /// fills one `Outgoing` whose every field is a decision of SPEC §6;
    /// the decisions with logic of their own are the functions above.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn prepare(
        &self,
        c: &Claimed,
        notice: Notice,
        view: &TicketView,
        facts: &RecipientFacts,
        Extras { files, cc }: Extras<'_>,
        (from, account, plus): (EmailAddress, Account, bool),
        now: Millis,
    ) -> Result<Job, String> {
        let to: EmailAddress = c.recipient.parse().map_err(|e| format!("recipient: {e}"))?;
        let about_ticket = notice != Notice::PortalLink;
        let context = self.context(c, notice, view, facts, now);
        let mut rendered = self
            .templates
            .render(notice, &context)
            .map_err(|e| e.to_string())?;
        let link = context["link"].as_str().unwrap_or_default();
        let attached = files_or_note(files, &mut rendered, link);
        let t = &view.ticket;
        let reference = t.reference.to_string();
        let domain = from
            .as_str()
            .rsplit_once('@')
            .map_or("postdesk", |(_, d)| d);
        let message_id = self.key.outbound_message_id(c.id, domain);
        let root = self
            .key
            .thread_root(t.reference.prefix(), t.reference.number(), domain);
        let thread: Vec<String> = view.thread.iter().map(|(id, _)| bracketed(id)).collect();
        let in_reply_to = Some(in_reply_to(c, view, &thread, &root));
        // Staff get their own token: an agent's answer by mail counts only
        // through it (SPEC §5.11); everyone else the ticket's reply token.
        let reply_to = if plus {
            let token = match facts.user_id.filter(|_| facts.staff) {
                Some(user) => self.key.agent_token(t.reference.number(), user),
                None => self.key.reply_token(t.reference.number()),
            };
            compose::plus_address(&from, &token)
        } else {
            None
        };
        // VERP: a report comes back to an address naming this very mail
        // (SPEC §5.12); only such a report may mark the recipient undeliverable.
        let bounce_to =
            compose::plus_address(&from, &self.key.bounce_token(c.id)).unwrap_or(from.clone());
        let settings = self.settings.get();
        let o = &settings.outbound;
        // An agent's reply shows who wrote it: "Alan Agent via Support".
        let from_name = match notice {
            Notice::AgentReply => c
                .message_id
                .and_then(|id| view.messages.iter().find(|m| m.id == id))
                .and_then(|m| m.author_name.as_deref().or(m.author_email.as_deref()))
                .map_or_else(
                    || o.from_name.clone(),
                    |who| format!("{who} via {}", o.from_name),
                ),
            _ => o.from_name.clone(),
        };
        let outgoing = Outgoing {
            from: Person {
                name: from_name,
                email: from.clone(),
            },
            to: Person {
                name: facts.name.clone(),
                email: to.clone(),
            },
            // One conversation for everyone on it: every copy of an agent's
            // reply shows the requester in To and the CCs in Cc.
            shown_to: (notice == Notice::AgentReply && t.requester.email != to).then(|| Person {
                name: t.requester.display_name(),
                email: t.requester.email.clone(),
            }),
            cc: if notice == Notice::AgentReply {
                cc.iter()
                    .filter(|(email, _)| *email != t.requester.email.as_str())
                    .filter_map(|(email, name)| {
                        Some(Person {
                            name: name.clone(),
                            email: email.parse().ok()?,
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            },
            reply_to: Some(Person {
                name: o.from_name.clone(),
                email: reply_to
                    .filter(|_| about_ticket)
                    .unwrap_or_else(|| from.clone()),
            }),
            bounce_to,
            // The link to one's requests is about no ticket: no tag, no
            // thread, no reply token (a reply to it must not land anywhere).
            subject: if about_ticket {
                compose::tagged_subject(&rendered.subject, &reference)
            } else {
                rendered.subject.clone()
            },
            message_id: message_id.clone(),
            in_reply_to: in_reply_to.filter(|_| about_ticket),
            references: if about_ticket {
                compose::thread_references(&root, &thread)
            } else {
                Vec::new()
            },
            automated: notice.automated(),
            text: rendered.text,
            html: rendered.html,
            date: SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(now).unwrap_or(0)),
            files: attached,
        };
        let (envelope, bytes) = compose::compose(&outgoing).map_err(|e| e.to_string())?;
        Ok(Job {
            claimed: c.clone(),
            pool: self.pool(&account),
            envelope,
            bytes,
            message_id,
        })
    }

    /// The template context (see `templates/mail/`). Long because it is
    /// the list of every field a template may use, in one place.
    pub(super) fn context(
        &self,
        c: &Claimed,
        notice: Notice,
        view: &TicketView,
        facts: &RecipientFacts,
        now: Millis,
    ) -> Value {
        let s = self.settings.get();
        let o = &s.outbound;
        let t = &view.ticket;
        let for_staff = notice.to_staff() || (facts.staff && facts.requester_id.is_none());
        let base = s.http.public_url.trim_end_matches('/');
        let link = if for_staff {
            format!("{base}/console/tickets/{}", t.reference)
        } else {
            let who = facts.requester_id.unwrap_or(t.requester.id);
            let expires = (now + o.portal_link_ttl.as_millis()) / 1000;
            // The link asked for on the portal opens every request of the
            // address (ticket number 0); any other mail's, its ticket only.
            let number = if notice == Notice::PortalLink {
                0
            } else {
                t.reference.number()
            };
            let token = self.key.portal_token(number, who, expires);
            format!("{base}/portal/t/{token}")
        };
        // An internal note is quoted only to staff.
        let message = c.message_id.and_then(|id| {
            view.messages
                .iter()
                .find(|m| m.id == id && (m.kind != MessageKind::Note || for_staff))
        });
        // A message no longer on the ticket (moved by a merge after the
        // notice was queued) leaves its fields empty, never a template
        // failing on them.
        let message_json = match (c.message_id, message) {
            (_, Some(m)) => {
                let text = shown(&m.body_text);
                Some(json!({
                    "author": author(m, &o.team_name),
                    "quoted": quoted(&text),
                    "text": text,
                    "staff": m.author_kind == AuthorKind::Agent,
                }))
            }
            (Some(_), None) => {
                Some(json!({ "author": "", "quoted": "", "text": "", "staff": false }))
            }
            (None, None) => None,
        };
        let conversation: Vec<Value> = view
            .messages
            .iter()
            .rev()
            .filter(|m| m.kind == MessageKind::Reply && Some(m.id) != c.message_id)
            .filter(|m| message.is_none_or(|about| m.id < about.id))
            .take(CONVERSATION_SHOWN)
            .map(|m| {
                let text = shown(&m.body_text);
                json!({
                    "author": author(m, &o.team_name),
                    "when": when(m.created_at),
                    "quoted": quoted(&text),
                    "text": text,
                    "staff": m.author_kind == AuthorKind::Agent,
                })
            })
            .collect();
        let status_label = if for_staff {
            match t.status {
                Status::Pending => "Pending",
                other => other.requester_label(),
            }
        } else {
            t.status.requester_label()
        };
        let name = if facts.name.is_empty() {
            c.recipient.split('@').next().unwrap_or("there").to_string()
        } else {
            facts.name.clone()
        };
        // "How did we do?": the resolved/closed notice to a requester
        // carries two signed links, good and not good.
        let rating = match (notice, for_staff, facts.requester_id) {
            (Notice::StatusChanged, false, Some(who)) => {
                let token = self.key.rating_token(t.reference.number(), who);
                json!({
                    "good": format!("{base}/rate/{token}/good"),
                    "bad": format!("{base}/rate/{token}/bad"),
                })
            }
            _ => Value::Null,
        };
        json!({
            "team": o.team_name,
            "for_staff": for_staff,
            "rating": rating,
            "link": link,
            "marker": self.key.marker(t.reference.prefix(), t.reference.number()),
            "recipient": { "name": name, "email": c.recipient },
            "ticket": {
                "ref": t.reference.to_string(),
                "subject": t.subject,
                "status": t.status.as_str(),
                "status_label": status_label,
                "status_word": status_label.to_lowercase(),
                "priority": t.priority.as_str(),
                "category": t.category,
                "requester": format!("{} <{}>", t.requester.display_name(), t.requester.email),
                "assignee": t.assignee.as_ref().map(|a| a.name.clone()),
            },
            "message": message_json,
            "conversation": conversation,
            "reopen_hint": t.status == Status::Resolved
                || (t.status == Status::Closed && !s.tickets.reopen_window.is_zero()),
            "reopen_window": human_span(s.tickets.reopen_window),
        })
    }
}
