//! One round of the outbox worker in three steps: read what its claimed
//! notifications need (once per ticket and per address, concurrently),
//! decide each in order in memory (send, hold for the loop guard,
//! suppress), then send concurrently and record outcomes as they complete.

use super::*;

/// What a round read before deciding: the tickets and recipients of its
/// notifications, how much automated mail each was sent in the last hour,
/// and the files and Cc lines of agents' replies.
pub(super) struct Round {
    views: HashMap<i64, Option<TicketView>>,
    on_ticket: HashMap<i64, u32>,
    in_conversation: HashMap<i64, u32>,
    same_words: HashMap<i64, u32>,
    people: HashMap<String, RecipientFacts>,
    to_address: HashMap<String, u32>,
    files: HashMap<i64, ReplyFiles>,
    reply_all: HashMap<i64, Vec<(String, String)>>,
}

impl Worker {
    /// Reads what the claimed notifications need.
    pub(super) async fn read_round(
        &self,
        claimed: &[Claimed],
        now: Millis,
    ) -> Result<Round, StoreError> {
        let mailboxes: HashMap<i64, MailboxSettings> = self
            .store
            .mailboxes()
            .await?
            .into_iter()
            .map(|m| (m.id, m.settings))
            .collect();
        let hour_ago = now - 3_600_000;
        // Read what the round needs concurrently, once per ticket and per
        // address; the decisions below are then made in order, in memory.
        let ticket_ids: HashSet<i64> = claimed.iter().filter_map(|c| c.ticket_id).collect();
        let addresses: HashSet<String> = claimed.iter().map(|c| c.recipient.clone()).collect();
        let reads = self.settings.get().database.max_connections.max(1) as usize;
        let mut views: HashMap<i64, Option<TicketView>> = HashMap::new();
        let mut on_ticket: HashMap<i64, u32> = HashMap::new();
        let mut in_conversation: HashMap<i64, u32> = HashMap::new();
        let mut same_words: HashMap<i64, u32> = HashMap::new();
        let mut loaded = futures::stream::iter(ticket_ids)
            .map(|id| {
                let mailboxes = &mailboxes;
                async move {
                    let view = self.view(id, mailboxes).await?;
                    let (sent, alike) = self.store.automated_sent_on(id, hour_ago).await?;
                    // Only a linked ticket has a conversation beyond itself.
                    let linked = view
                        .as_ref()
                        .is_some_and(|v| v.ticket.linked_ticket_id.is_some());
                    let around = if linked {
                        self.store
                            .automated_sent_in_conversation(id, hour_ago)
                            .await?
                    } else {
                        sent
                    };
                    Ok::<_, StoreError>((id, view, sent, around, alike))
                }
            })
            .buffer_unordered(reads);
        while let Some(r) = loaded.next().await {
            let (id, view, sent, around, alike) = r?;
            views.insert(id, view);
            on_ticket.insert(id, sent);
            in_conversation.insert(id, around);
            same_words.insert(id, alike);
        }
        drop(loaded);
        let (people, to_address) = self.read_people(addresses, hour_ago, reads).await?;
        let (files, reply_all) = self.read_reply_extras(claimed).await?;
        Ok(Round {
            views,
            on_ticket,
            in_conversation,
            same_words,
            people,
            to_address,
            files,
            reply_all,
        })
    }

    /// Each recipient's facts (undeliverable, switched off, staff) and how
    /// much automated mail they were sent in the last hour.
    #[allow(clippy::type_complexity)]
    async fn read_people(
        &self,
        addresses: HashSet<String>,
        hour_ago: Millis,
        reads: usize,
    ) -> Result<(HashMap<String, RecipientFacts>, HashMap<String, u32>), StoreError> {
        let mut people: HashMap<String, RecipientFacts> = HashMap::new();
        let mut to_address: HashMap<String, u32> = HashMap::new();
        let mut loaded = futures::stream::iter(addresses)
            .map(|a| async move {
                let facts = self.store.recipient_facts(&a).await?;
                let sent = self.store.automated_sent_to(&a, hour_ago).await?;
                Ok::<_, StoreError>((a, facts, sent))
            })
            .buffer_unordered(reads);
        while let Some(r) = loaded.next().await {
            let (a, facts, sent) = r?;
            people.insert(a.clone(), facts);
            to_address.insert(a, sent);
        }
        drop(loaded);
        Ok((people, to_address))
    }

    /// The files of agents' replies this round sends, once per message,
    /// and whom their Cc lines name, once per ticket.
    #[allow(clippy::type_complexity)]
    async fn read_reply_extras(
        &self,
        claimed: &[Claimed],
    ) -> Result<
        (
            HashMap<i64, ReplyFiles>,
            HashMap<i64, Vec<(String, String)>>,
        ),
        StoreError,
    > {
        // The files of agents' replies this round sends, once per message,
        // and whom their Cc lines name, once per ticket.
        let limit = self.settings.get().outbound.max_attached_bytes;
        let mut files: HashMap<i64, ReplyFiles> = HashMap::new();
        let mut reply_all: HashMap<i64, Vec<(String, String)>> = HashMap::new();
        for c in claimed {
            if c.notice == Some(Notice::AgentReply)
                && let Some(t) = c.ticket_id
                && !reply_all.contains_key(&t)
            {
                reply_all.insert(t, self.store.reply_all_cc(t).await?);
            }
            if c.notice == Some(Notice::AgentReply)
                && let Some(m) = c.message_id
                && !files.contains_key(&m)
            {
                let loaded = match self.store.message_files(m, limit).await? {
                    Ok(found) => ReplyFiles::Attached(
                        found
                            .into_iter()
                            .map(|(info, data)| compose::OutgoingFile {
                                filename: info.filename,
                                content_type: info.content_type,
                                data,
                            })
                            .collect(),
                    ),
                    Err(total) => ReplyFiles::Linked(total),
                };
                files.insert(m, loaded);
            }
        }
        Ok((files, reply_all))
    }

    /// Decides each claimed notification in order: what is not sent is
    /// finished now; what is sent becomes a job.
    pub(super) fn decide_round(
        &self,
        claimed: Vec<Claimed>,
        round: &mut Round,
        now: Millis,
    ) -> (Vec<Finished>, Vec<Job>) {
        let settings = self.settings.get();
        let o = &settings.outbound;
        let Round {
            views,
            on_ticket,
            in_conversation,
            same_words,
            people,
            to_address,
            files,
            reply_all,
        } = round;
        let mut finished = Vec::with_capacity(claimed.len());
        let mut jobs = Vec::new();
        for c in claimed {
            let (Some(notice), Some(ticket_id)) = (c.notice, c.ticket_id) else {
                finished.push(Finished::Failed {
                    id: c.id,
                    error: "a notice this version does not know, or about no ticket".into(),
                });
                continue;
            };
            let Some(view) = views.get(&ticket_id).and_then(Option::as_ref) else {
                finished.push(Finished::Suppressed {
                    id: c.id,
                    reason: "the ticket no longer exists".into(),
                });
                continue;
            };
            let facts = &people[&c.recipient];
            let recent = RecentMail {
                to_address: to_address[&c.recipient],
                on_ticket: on_ticket[&ticket_id],
                in_conversation: in_conversation[&ticket_id],
                same_words: same_words[&ticket_id],
            };
            let recipient = Recipient {
                undeliverable: facts.undeliverable,
                switched_off: facts.switched_off.clone(),
                staff: facts.staff,
            };
            match notify::decide(notice, &recipient, recent, o.loop_limits()) {
                Verdict::Hold(reason) => {
                    finished.push(Finished::Held {
                        id: c.id,
                        ticket_id: Some(ticket_id),
                        what: format!("the {} mail to {}", notice.as_str(), c.recipient),
                        reason,
                    });
                    continue;
                }
                Verdict::Suppress(reason) => {
                    finished.push(Finished::Suppressed { id: c.id, reason });
                    continue;
                }
                Verdict::Send => {}
            }
            if notice.automated().is_some() {
                *to_address.get_mut(&c.recipient).expect("counted") += 1;
                *on_ticket.get_mut(&ticket_id).expect("counted") += 1;
                *in_conversation.get_mut(&ticket_id).expect("counted") += 1;
            }
            match self.sender(view) {
                // Configuration, not the mail: wait for an admin to add SMTP.
                Err(error) => finished.push(self.retry(&c, error.to_string(), now)),
                Ok(sender) => match self.prepare(
                    &c,
                    notice,
                    view,
                    facts,
                    Extras {
                        files: c.message_id.and_then(|m| files.get(&m)),
                        cc: reply_all.get(&ticket_id).map(Vec::as_slice).unwrap_or(&[]),
                    },
                    sender,
                    now,
                ) {
                    Ok(job) => jobs.push(job),
                    Err(error) => finished.push(Finished::Failed { id: c.id, error }),
                },
            }
        }
        (finished, jobs)
    }

    /// Sends the jobs concurrently over the SMTP pools, recording outcomes
    /// as sends complete. Returns when the last was recorded, and the
    /// creation times of the notifications sent.
    pub(super) async fn send_jobs(
        &self,
        jobs: Vec<Job>,
        now: Millis,
        outcome: &mut Outcome,
    ) -> Result<(Millis, Vec<Millis>), StoreError> {
        let settings = self.settings.get();
        let o = &settings.outbound;
        let max_attempts = i64::from(o.max_attempts.max(1));
        // Record outcomes as sends complete, a few at a time, so a crash
        // between a server's 250 and our commit resends as little as possible.
        let mut results = futures::stream::iter(jobs)
            .map(|job| async move {
                // Every log line of the send carries the outbox row and ticket.
                let span = tracing::info_span!(
                    "send",
                    outbox = job.claimed.id,
                    ticket = job.claimed.ticket_id
                );
                let r = job
                    .pool
                    .send(&job.envelope, &job.bytes)
                    .instrument(span)
                    .await;
                (job, r)
            })
            .buffer_unordered(o.connections.max(1) * 2)
            .ready_chunks(RECORD_EVERY);
        let mut after = now;
        let mut sent_claims = Vec::new();
        while let Some(chunk) = results.next().await {
            after = now_millis().max(now);
            let mut done = Vec::with_capacity(chunk.len());
            for (job, result) in chunk {
                let c = &job.claimed;
                done.push(match result {
                    Ok(_) => {
                        sent_claims.push(c.created_at);
                        Finished::Sent {
                            id: c.id,
                            ticket_id: c.ticket_id,
                            mail_message_id: job.message_id.clone(),
                        }
                    }
                    Err(SendError::Permanent(error)) => Finished::Failed { id: c.id, error },
                    Err(SendError::Transient(error)) if c.attempts + 1 >= max_attempts => {
                        Finished::Failed {
                            id: c.id,
                            error: format!("gave up after {} attempts: {error}", c.attempts + 1),
                        }
                    }
                    Err(SendError::Transient(error)) => self.retry(c, error, after),
                });
            }
            tally(&done, outcome);
            self.store.finish_outbox(&self.holder, &done, after).await?;
        }
        Ok((after, sent_claims))
    }

    /// Counts a round's outcomes and delivery times in the metrics.
    pub(super) fn count(&self, outcome: &Outcome, sent_claims: &[Millis], after: Millis) {
        if let Some(m) = &self.metrics {
            for (outcome, n) in [
                ("sent", outcome.sent),
                ("retried", outcome.retried),
                ("failed", outcome.failed),
                ("held", outcome.held),
                ("suppressed", outcome.suppressed),
            ] {
                if n > 0 {
                    m.inc("postdesk_outbox_total", &[("outcome", outcome)], n as f64);
                }
            }
            for c in sent_claims {
                m.observe(
                    "postdesk_outbox_delivery_seconds",
                    &[],
                    (after - c).max(0) as f64 / 1000.0,
                );
            }
        }
    }
}
