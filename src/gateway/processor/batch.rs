//! What one batch of the processor gathers as it goes: the mails finished,
//! the staff and requesters of its senders, the Message-IDs it knows.

use super::*;

/// What one batch gathers as it goes: the mails finished (marked in one
/// statement before the commit) and the staff accounts looked up by address
/// (agents do not change while a batch runs).
#[derive(Default)]
pub(super) struct Batch {
    pub(super) done: Vec<Finished>,
    pub(super) staff: HashMap<EmailAddress, Option<crate::store::users::User>>,
    /// Requesters read or made in this batch, by address (the batch's
    /// senders are read in one statement as it starts).
    pub(super) requesters: HashMap<EmailAddress, crate::store::Requester>,
    /// The Message-IDs the batch's mails name, as known when it started,
    /// plus those it recorded since: each with its ticket and whether
    /// postdesk sent it. `None` once a savepoint was rolled back (rows
    /// recorded in it are gone): then each mail asks the database.
    pub(super) mail_ids: Option<HashMap<String, (i64, bool)>>,
}

impl Batch {
    /// Reads, as the batch starts, what its mails will ask of the database:
    /// the staff accounts and requesters of its senders, the Message-IDs
    /// they name, and who takes part in the tickets those belong to — a few
    /// statements per batch rather than several per mail.
    pub(super) async fn prefetch(
        &mut self,
        tx: &mut Tx,
        mails: &[Parsed],
    ) -> Result<(), StoreError> {
        let mut senders: Vec<&EmailAddress> = mails
            .iter()
            .filter_map(|m| Some(&m.as_ref().ok()?.mail.from.as_ref()?.email))
            .collect();
        senders.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        senders.dedup();
        for user in tx.users_by_emails(&senders).await? {
            let email = user.email.clone();
            self.staff.insert(email, Some(user).filter(|u| u.active));
        }
        for email in &senders {
            self.staff.entry((*email).clone()).or_insert(None);
        }
        for requester in tx.requesters_by_emails(&senders).await? {
            self.requesters.insert(requester.email.clone(), requester);
        }
        let mut asked: Vec<&str> = mails
            .iter()
            .filter_map(|m| m.as_ref().ok())
            .flat_map(|p| asked_ids(&p.mail))
            .collect();
        asked.sort_unstable();
        asked.dedup();
        let mut known = HashMap::with_capacity(asked.len());
        for chunk in asked.chunks(100) {
            for (id, ticket, sent) in tx.mail_ids_known(chunk).await? {
                known.insert(id, (ticket, sent));
            }
        }
        // The ids no ticket names yet — the mails' own, and those they
        // answer that have not arrived — are where a batch of another
        // partition could be writing the other half of a conversation at
        // this moment: wait for those batches (see Tx::lock_conversations),
        // then read those ids again, as they committed them.
        // At most four a mail (its own, In-Reply-To, the last and the first
        // of References: the ones a race is about), so a batch of mails
        // naming a hundred unknown ids each stays within PostgreSQL's lock
        // table (`max_locks_per_transaction`).
        let mut unknown: Vec<&str> = mails
            .iter()
            .filter_map(|m| m.as_ref().ok())
            .flat_map(|p| {
                let m = &p.mail;
                m.message_id
                    .iter()
                    .chain(m.in_reply_to.first())
                    .chain(m.references.last())
                    .chain(m.references.first())
                    .map(String::as_str)
            })
            .filter(|id| !known.contains_key(*id))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        let keys: Vec<i64> = unknown
            .iter()
            .map(|id| crate::mail::conversation::id_hash(id.as_bytes()))
            .collect();
        if tx.lock_conversations(&keys).await? {
            for chunk in unknown.chunks(100) {
                for (id, ticket, sent) in tx.mail_ids_known(chunk).await? {
                    known.insert(id, (ticket, sent));
                }
            }
        }
        // Who takes part in the tickets those mails belong to: a reply's
        // sender is checked against them.
        let mut tickets: Vec<i64> = known.values().map(|(ticket, _)| *ticket).collect();
        tickets.sort_unstable();
        tickets.dedup();
        // Taken now and in id order: two batches whose mails go to the same
        // tickets wait for each other once, instead of locking them in mail
        // order and deadlocking.
        tx.lock_tickets(&tickets).await?;
        tx.load_participants(&tickets).await?;
        self.mail_ids = Some(known);
        Ok(())
    }

    /// The known ones of `asked`, as [`Tx::mail_ids_known`] answers.
    pub(super) async fn mail_ids_known(
        &self,
        tx: &mut Tx,
        asked: &[&str],
    ) -> Result<Vec<(String, i64, bool)>, StoreError> {
        match &self.mail_ids {
            Some(known) => Ok(asked
                .iter()
                .filter_map(|id| {
                    let (ticket, sent) = known.get(*id)?;
                    Some(((*id).to_string(), *ticket, *sent))
                })
                .collect()),
            None => tx.mail_ids_known(asked).await,
        }
    }

    /// Notes Message-IDs the batch recorded for `ticket` (an id already
    /// known keeps its ticket, as in the database).
    pub(super) fn recorded<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>, ticket: i64) {
        if let Some(known) = &mut self.mail_ids {
            for id in ids {
                known.entry(id.to_string()).or_insert((ticket, false));
            }
        }
    }

    /// A savepoint was rolled back: what this batch made in it is gone.
    pub(super) fn rolled_back(&mut self) {
        self.requesters.clear();
        self.mail_ids = None;
    }
}

/// The Message-IDs a mail's matching looks up: its own, In-Reply-To, then
/// References from the newest (the first 100, as `Tx::mail_ids_known` reads).
pub(super) fn asked_ids(mail: &ParsedMail) -> impl Iterator<Item = &str> {
    mail.message_id
        .iter()
        .chain(&mail.in_reply_to)
        .chain(mail.references.iter().rev())
        .map(String::as_str)
        .take(100)
}
