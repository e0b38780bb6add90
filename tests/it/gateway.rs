//! The processor on both backends: stored raw mail becomes tickets and
//! replies by the matching rules, automated mail is recorded, duplicates and
//! junk are handled, attachments kept.

use crate::helpers::{TestDb, actions_for, settings, staff};
use postdesk::config::{Account, AfterAction, MailboxSettings, StartMode, TlsMode};
use postdesk::domain::{MessageKind, Role, Span, Status};
use postdesk::gateway::processor::{Disposition, Processor};
use postdesk::gateway::signing_key;
use postdesk::store::inbound::Fetched;
use postdesk::store::{Backend, Store};

const T0: i64 = 1_800_000_000_000;

/// What the mailbox's trusted receiving server (`mx.support.test`) stamps
/// on a mail whose DMARC passed for `domain`.
fn dmarc_pass(domain: &str) -> String {
    format!("Authentication-Results: mx.support.test; dmarc=pass header.from={domain}\n")
}

fn mailbox() -> MailboxSettings {
    MailboxSettings {
        name: "support".into(),
        address: "support@example.test".parse().unwrap(),
        folder: "INBOX".into(),
        after: AfterAction::Seen,
        idle: true,
        poll_interval: Span::secs(30),
        start: StartMode::Now,
        plus_addressing: true,
        imap: Account {
            host: "127.0.0.1".into(),
            port: 143,
            tls: TlsMode::None,
            username: "support".into(),
            password: None,
            ca_file: None,
            oauth2: None,
        },
        smtp: None,
        default_category: None,
        default_priority: None,
        default_assignee: None,
        trusted_authserv_ids: vec!["mx.support.test".into()],
        trust_topmost_results: false,
        verify_in_process: false,
        received_by: Vec::new(),
    }
}

struct Rig {
    store: Store,
    processor: Processor,
    mailbox_id: i64,
    uid: i64,
    key: postdesk::mail::token::SigningKey,
}

async fn rig(db: &TestDb) -> Rig {
    rig_with(db, |_| {}).await
}

/// A rig whose settings `edit` changed first.
async fn rig_with(db: &TestDb, edit: impl FnOnce(&mut postdesk::config::Settings)) -> Rig {
    let mut s = settings(db);
    s.mailboxes = vec![mailbox()];
    edit(&mut s);
    s.tickets.max_attachment_bytes = 1000;
    let (store, actions) = actions_for(s.clone()).await;
    let mailbox_id = store.mailbox_by_name("support").await.unwrap().unwrap().id;
    let key = signing_key(&s, &store).await.unwrap();
    let processor = Processor::new(actions, key.clone(), "test");
    Rig {
        store,
        processor,
        mailbox_id,
        uid: 0,
        key,
    }
}

impl Rig {
    /// Stores a mail as the IMAP poller would, under the next UID.
    async fn store(&mut self, raw: &str) -> i64 {
        self.uid += 1;
        let raw = raw.replace("\r\n", "\n").replace('\n', "\r\n");
        let mails = [Fetched {
            uid: self.uid,
            raw: raw.as_bytes(),
            quarantine: None,
        }];
        let stored = self
            .store
            .store_fetched(self.mailbox_id, 1, &mails, false, None, T0)
            .await
            .unwrap();
        // The same UID again stores nothing.
        let again = self
            .store
            .store_fetched(self.mailbox_id, 1, &mails, false, None, T0)
            .await
            .unwrap();
        assert!(again.is_empty(), "stored twice");
        let [(uid, id)] = stored[..] else {
            panic!("not stored: {stored:?}")
        };
        assert_eq!(uid, self.uid);
        id
    }

    /// Stores `mails`, processes them in one batch and checks that all but
    /// one landed and that one was quarantined for `reason`.
    async fn one_batch_one_quarantined(&mut self, mails: &[&str], reason: &str) {
        for mail in mails {
            self.store(mail).await;
        }
        let pass = self.processor.run_once(10, T0 + 1).await.unwrap();
        assert_eq!((pass.processed, pass.quarantined), (mails.len() - 1, 1));
        let q = self.store.quarantined(10).await.unwrap();
        assert_eq!(q.len(), 1);
        assert!(q[0].reason.contains(reason), "{:?}", q[0].reason);
    }

    async fn deliver(&mut self, raw: &str) -> Disposition {
        let id = self.store(raw).await;
        let claimed = self
            .store
            .claim_raw_id(id, "test", T0 + self.uid, 60_000)
            .await
            .unwrap()
            .unwrap();
        self.processor
            .process(&claimed, T0 + self.uid)
            .await
            .unwrap()
    }
}

fn opened(d: &Disposition) -> i64 {
    match d {
        Disposition::Opened { ticket_id } => *ticket_id,
        other => panic!("expected a new ticket, got {other:?}"),
    }
}

async fn replies_thread_by_message_id_tag_token_and_marker(db: TestDb) {
    let mut r = rig(&db).await;
    let first = r
        .deliver(&format!("{}From: Jane Doe <jane@example.org>\nTo: support@example.test\nCc: Boss <boss@example.org>\nSubject: Printer on fire\nMessage-ID: <m1@example.org>\n\nIt smokes.\n", dmarc_pass("example.org")))
        .await;
    let t = opened(&first);
    let ticket = r.store.ticket(t).await.unwrap().unwrap();
    assert_eq!(
        (
            ticket.subject.as_str(),
            ticket.requester.display_name().as_str()
        ),
        ("Printer on fire", "Jane Doe")
    );

    // (b) In-Reply-To a received Message-ID; the quote is folded away.
    let d = r
        .deliver("From: jane@example.org\nTo: support@example.test\nSubject: Re: Printer on fire\nMessage-ID: <m2@example.org>\nIn-Reply-To: <m1@example.org>\n\nStill smoking.\n\nOn Mon, Jan 5, 2026 Support wrote:\n> old\n")
        .await;
    assert_eq!(d, Disposition::Replied { ticket_id: t });
    let thread = r.store.messages(t, true).await.unwrap();
    let last = thread.last().unwrap();
    assert_eq!(last.body_text, "Still smoking.");
    assert!(last.full_text.as_deref().unwrap().contains("> old"));
    assert_eq!(last.mail_message_id.as_deref(), Some("<m2@example.org>"));

    // (d) the subject tag, from the (verified) CC participant, with no threading headers.
    let d = r.deliver(&format!("{}From: boss@example.org\nTo: support@example.test\nSubject: Re: [TKT-1] Printer on fire\nMessage-ID: <m3@example.org>\n\nAny news?\n", dmarc_pass("example.org"))).await;
    assert_eq!(d, Disposition::Replied { ticket_id: t });

    // (a) a signed reply token reaches the ticket even from a new address.
    let token = r.key.reply_token(1);
    let d = r
        .deliver(&format!("From: jane.private@example.net\nTo: support+{token}@example.test\nSubject: hello\nMessage-ID: <m4@example.org>\n\nFrom my other address\n"))
        .await;
    assert_eq!(d, Disposition::Replied { ticket_id: t });
    // A forged token does not.
    let d = r.deliver("From: mallory@example.net\nTo: support+t1-00000000000000000000@example.test\nSubject: hello\nMessage-ID: <m5@example.org>\n\nx\n").await;
    assert_ne!(opened(&d), t);

    // (c) the hidden marker in a forwarded body, from a participant.
    let d = r
        .deliver(&format!("From: jane@example.org\nTo: support@example.test\nSubject: Fwd: something\nMessage-ID: <m6@example.org>\n\nSee below\n{}\n", r.key.marker("TKT", 1)))
        .await;
    assert_eq!(d, Disposition::Replied { ticket_id: t });
}

async fn strangers_agents_and_status_rules(db: TestDb) {
    let mut r = rig(&db).await;
    let (agent, _) = staff(&r.store, "agent@support.test", Role::Agent).await;
    let t = opened(&r.deliver("From: jane@example.org\nTo: support@example.test\nSubject: VPN\nMessage-ID: <v1@example.org>\n\nDown\n").await);

    // Mail claiming to be the agent's, unverified: an internal note, nothing sent.
    let outbox = r.store.outbox_for_ticket(t).await.unwrap().len();
    let token = r.key.agent_token(1, agent.id);
    let d = r.deliver(&format!("From: Agent <agent@support.test>\nTo: support+{token}@example.test\nSubject: Re: [TKT-1] VPN\nMessage-ID: <v0@support.test>\nIn-Reply-To: <v1@example.org>\n\nClick http://phish.example\n")).await;
    assert_eq!(d, Disposition::Noted { ticket_id: t });
    let note = r.store.messages(t, true).await.unwrap().pop().unwrap();
    assert_eq!(note.kind, MessageKind::Note);
    assert!(
        note.body_text
            .starts_with("Unverified mail claiming to be from agent@support.test"),
        "{}",
        note.body_text
    );
    assert!(
        note.verification
            .as_deref()
            .unwrap()
            .starts_with("unverified")
    );
    assert_eq!(
        r.store.ticket(t).await.unwrap().unwrap().status,
        Status::Open
    );
    assert_eq!(r.store.outbox_for_ticket(t).await.unwrap().len(), outbox);
    assert!(
        !r.store
            .messages(t, false)
            .await
            .unwrap()
            .iter()
            .any(|m| m.body_text.contains("phish")),
        "the requester never sees it"
    );
    // Verified but without the agent's own token: still only a note.
    let d = r.deliver(&format!("{}From: Agent <agent@support.test>\nTo: support@example.test\nSubject: Re: [TKT-1] VPN\nMessage-ID: <v00@support.test>\nIn-Reply-To: <v1@example.org>\n\nRestart it?\n", dmarc_pass("support.test"))).await;
    assert_eq!(d, Disposition::Noted { ticket_id: t });

    // An agent answering the notification from their mail client, verified
    // and through their own token: an agent reply.
    let d = r.deliver(&format!("{}From: Agent <agent@support.test>\nTo: support+{token}@example.test\nSubject: Re: [TKT-1] VPN\nMessage-ID: <v2@support.test>\nIn-Reply-To: <v1@example.org>\n\nRestart it\n", dmarc_pass("support.test"))).await;
    assert_eq!(d, Disposition::Replied { ticket_id: t });
    let ticket = r.store.ticket(t).await.unwrap().unwrap();
    assert_eq!(ticket.status, Status::InProgress);
    assert!(ticket.first_response_at.is_some());
    // Statuses in words in the thread, as the pages name them.
    assert!(r.store.messages(t, true).await.unwrap().iter().any(|m| {
        m.body_text
            .starts_with("Status changed from Open to In progress")
    }),);

    // A stranger replying into the thread gets a new ticket linked to it.
    let d = r.deliver("From: eve@example.com\nTo: support@example.test\nSubject: Re: VPN\nMessage-ID: <v3@example.com>\nReferences: <v1@example.org>\n\nMe too\n").await;
    let new = opened(&d);
    assert_ne!(new, t);
    assert_eq!(
        r.store.ticket(new).await.unwrap().unwrap().linked_ticket_id,
        Some(t)
    );
    assert!(
        !r.store
            .messages(t, true)
            .await
            .unwrap()
            .iter()
            .any(|m| m.body_text.contains("Me too"))
    );
}

async fn automated_mail_is_recorded_never_acted_on(db: TestDb) {
    let mut r = rig(&db).await;
    let t = opened(&r.deliver("From: jane@example.org\nTo: support@example.test\nSubject: Help\nMessage-ID: <a1@example.org>\n\nplease\n").await);
    let before = r.store.outbox_for_ticket(t).await.unwrap().len();
    let d = r.deliver("From: jane@example.org\nTo: support@example.test\nSubject: Automatic reply: [TKT-1] Help\nAuto-Submitted: auto-replied\nMessage-ID: <a2@example.org>\nIn-Reply-To: <a1@example.org>\n\nI am away\n").await;
    assert_eq!(d, Disposition::Automated { ticket_id: Some(t) });
    let ticket = r.store.ticket(t).await.unwrap().unwrap();
    assert_eq!(ticket.status, Status::Open);
    let last = r.store.messages(t, true).await.unwrap().pop().unwrap();
    assert_eq!(last.kind, MessageKind::System);
    assert!(
        last.body_text
            .starts_with("Automatic reply received from jane@example.org"),
        "{}",
        last.body_text
    );
    assert_eq!(
        r.store.outbox_for_ticket(t).await.unwrap().len(),
        before,
        "no notification for automated mail"
    );

    // A delivery report that did not come back to a signed bounce address
    // changes nothing, even when it names a real mail of the ticket.
    let receipt = r.store.outbox_for_ticket(t).await.unwrap()[0].id;
    let report = |to: &str, id: &str| {
        format!(
            "From: MAILER-DAEMON@mx.example.org\nTo: {to}\nSubject: Undelivered Mail Returned to Sender\nMessage-ID: <{id}@mx>\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n--B\nContent-Type: text/plain\n\nSorry.\n--B\n\
Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; jane@example.org\nAction: failed\nStatus: 5.1.1\n\n\
--B\nContent-Type: text/rfc822-headers\n\nMessage-ID: <a1@example.org>\n\n--B--\n"
        )
    };
    for (to, id) in [
        ("support@example.test".to_string(), "f1"),
        (
            "support+b-1-00000000000000000000@example.test".to_string(),
            "f2",
        ),
        // A signed token naming no mail postdesk sent vouches for nothing.
        (
            format!(
                "support+{}@example.test",
                r.key.bounce_token(receipt + 1000)
            ),
            "f3",
        ),
    ] {
        assert_eq!(
            r.deliver(&report(&to, id)).await,
            Disposition::Automated { ticket_id: Some(t) }
        );
        let jane = r.store.ticket(t).await.unwrap().unwrap().requester;
        assert!(
            jane.undeliverable_at.is_none(),
            "forged report to {to} counted"
        );
    }
    let last = r.store.messages(t, true).await.unwrap().pop().unwrap();
    assert!(
        last.body_text.starts_with("Untrusted delivery report"),
        "{}",
        last.body_text
    );

    // A permanent bounce returned to the receipt's own VERP address marks the address undeliverable.
    let verp = format!("support+{}@example.test", r.key.bounce_token(receipt));
    let bounce = report(&verp, "b1");
    assert_eq!(
        r.deliver(&bounce).await,
        Disposition::Automated { ticket_id: Some(t) }
    );
    let jane = r.store.ticket(t).await.unwrap().unwrap().requester;
    assert!(jane.undeliverable_at.is_some());
    // An auto-reply to nothing opens nothing.
    let d = r.deliver("From: robot@example.org\nTo: support@example.test\nSubject: Out of office\nAuto-Submitted: auto-replied\nMessage-ID: <a3@example.org>\n\naway\n").await;
    assert_eq!(d, Disposition::Automated { ticket_id: None });
    let (total, _) = r
        .store
        .list_tickets(
            &Default::default(),
            (postdesk::store::SortKey::Updated, true),
            1,
            10,
        )
        .await
        .unwrap();
    assert_eq!(total, 1);
}

async fn duplicates_junk_and_attachments(db: TestDb) {
    let mut r = rig(&db).await;
    let mail = "From: jane@example.org\nTo: support@example.test\nSubject: Dup\nMessage-ID: <d1@example.org>\n\nonce\n";
    let t = opened(&r.deliver(mail).await);
    // The same mail again (another UID, as from a second mailbox or a re-fetch): nothing doubled.
    assert_eq!(r.deliver(mail).await, Disposition::Duplicate);
    assert_eq!(r.store.ticket(t).await.unwrap().unwrap().message_count, 1);

    let junk = r.deliver("\u{0}\u{1}\u{2} not a mail").await;
    assert!(
        matches!(junk, Disposition::Quarantined(ref reason) if reason.contains("unreadable")),
        "{junk:?}"
    );
    let q = r.store.quarantined(10).await.unwrap();
    assert_eq!(q.len(), 1);
    assert!(r.store.discard_quarantined(q[0].id).await.unwrap());
    assert!(r.store.quarantined(10).await.unwrap().is_empty());

    let with_files = "From: jane@example.org\nTo: support@example.test\nSubject: Files\nMessage-ID: <f1@example.org>\n\
MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"X\"\n\n--X\nContent-Type: text/plain\n\nsee attached\n\
--X\nContent-Type: text/plain; name=\"small.txt\"\nContent-Disposition: attachment; filename=\"small.txt\"\n\nhello\n\
--X\nContent-Type: application/octet-stream; name=\"big.bin\"\nContent-Disposition: attachment; filename=\"big.bin\"\n\n"
        .to_string()
        + &"A".repeat(3000)
        + "\n--X--\n";
    let t2 = opened(&r.deliver(&with_files).await);
    let thread = r.store.messages(t2, true).await.unwrap();
    assert_eq!(thread[0].body_text, "see attached");
    assert!(
        thread
            .iter()
            .any(|m| m.kind == MessageKind::System && m.body_text.contains("\"big.bin\"")),
        "{thread:?}"
    );
    assert_eq!(
        r.store.attachment_names(thread[0].id).await.unwrap(),
        vec!["small.txt".to_string()]
    );
}

/// The recipients of the receipts queued for `ticket`.
async fn receipts(r: &Rig, ticket: i64) -> Vec<String> {
    r.store
        .outbox_for_ticket(ticket)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.notice == "receipt")
        .map(|o| o.recipient)
        .collect()
}

/// A batch runs without a savepoint per mail; one failing mail makes it run
/// again with them: the failing mail alone is quarantined, the others land
/// exactly once, in order (the reply on the ticket its first mail opened).
async fn a_failing_mail_is_quarantined_alone_in_its_batch(db: TestDb) {
    let mut r = rig(&db).await;
    let mails = [
        "From: jane@example.org\nTo: support@example.test\nSubject: Printer\nMessage-ID: <b1@example.org>\n\nBroken\n",
        "To: support@example.test\nSubject: Nobody\nMessage-ID: <b2@example.org>\n\nNo sender\n",
        "From: jane@example.org\nTo: support@example.test\nSubject: Re: Printer\nMessage-ID: <b3@example.org>\n\
In-Reply-To: <b1@example.org>\n\nStill broken\n",
    ];
    r.one_batch_one_quarantined(&mails, "From").await;
    let counts = r.store.inbound_counts().await.unwrap();
    assert_eq!(
        counts,
        vec![("done".to_string(), 2), ("quarantined".to_string(), 1)]
    );
    let mut tx = r.store.begin().await.unwrap();
    let known = tx
        .tickets_of_mail_ids(&["<b1@example.org>", "<b3@example.org>"])
        .await
        .unwrap();
    drop(tx);
    assert_eq!(known.len(), 2);
    assert_eq!(
        known[0].1, known[1].1,
        "the reply is on the first mail's ticket"
    );
    let ticket = r.store.ticket(known[0].1).await.unwrap().unwrap();
    assert_eq!(ticket.message_count, 2);
    // The batch's notifications are written at its commit: the receipt of
    // the first mail survives the failing mail's rollback, once.
    assert_eq!(receipts(&r, known[0].1).await, ["jane@example.org"]);
}

/// A message the database itself refuses (here a trigger made for the
/// test; in life a constraint) costs the batch nothing but that mail. On
/// PostgreSQL a batch's messages are written together at its end, so the
/// refusal comes there, after every mail was applied: the batch runs again
/// with savepoints and the one mail is quarantined, the others land once.
async fn a_message_the_database_refuses_is_quarantined_alone(db: TestDb) {
    let mut r = rig(&db).await;
    let refuse = match r.store.backend() {
        Backend::Sqlite => vec![
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON messages WHEN NEW.body_text LIKE '%poison%' \
             BEGIN SELECT RAISE(ABORT, 'poison refused'); END",
        ],
        Backend::Postgres => vec![
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN \
             IF NEW.body_text LIKE '%poison%' THEN RAISE EXCEPTION 'poison refused'; END IF; \
             RETURN NEW; END; $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
        ],
    };
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    for sql in refuse {
        sqlx::Executor::execute(&mut conn, sql).await.unwrap();
    }
    let mails = [
        "From: jane@example.org\nTo: support@example.test\nSubject: Router\nMessage-ID: <p1@example.org>\n\nNo light\n",
        "From: paul@example.org\nTo: support@example.test\nSubject: Poison\nMessage-ID: <p2@example.org>\n\npoison here\n",
        "From: jane@example.org\nTo: support@example.test\nSubject: Re: Router\nMessage-ID: <p3@example.org>\n\
In-Reply-To: <p1@example.org>\n\nStill no light\n",
    ];
    r.one_batch_one_quarantined(&mails, "poison refused").await;
    let mut tx = r.store.begin().await.unwrap();
    let known = tx
        .tickets_of_mail_ids(&["<p1@example.org>", "<p2@example.org>", "<p3@example.org>"])
        .await
        .unwrap();
    drop(tx);
    assert_eq!(known.len(), 2, "{known:?}");
    assert_eq!(
        known[0].1, known[1].1,
        "the reply is on the first mail's ticket"
    );
    let ticket = r.store.ticket(known[0].1).await.unwrap().unwrap();
    assert_eq!(ticket.message_count, 2);
    let thread = r.store.messages(ticket.id, true).await.unwrap();
    let texts: Vec<&str> = thread.iter().map(|m| m.body_text.as_str()).collect();
    assert_eq!(texts, ["No light", "Still no light"]);
    assert_eq!(receipts(&r, ticket.id).await, ["jane@example.org"]);
}

/// Within one batch (one transaction, Message-IDs read once as it starts)
/// a reply finds the mail before it, a reply naming only an ancestor finds
/// the ticket that ancestor was recorded on, and a second copy of a mail is
/// a duplicate, not a second message.
async fn a_batch_threads_replies_to_its_own_mails(db: TestDb) {
    let mut r = rig(&db).await;
    let mails = [
        "From: jane@example.org\nTo: support@example.test\nSubject: Scanner\nMessage-ID: <s1@example.org>\n\
References: <outside@elsewhere.example>\n\nThe scanner jams\n",
        "From: jane@example.org\nTo: support@example.test\nSubject: Re: Scanner\nMessage-ID: <s2@example.org>\n\
In-Reply-To: <s1@example.org>\n\nStill jams\n",
        "From: jane@example.org\nTo: support@example.test\nSubject: Scanner again\nMessage-ID: <s3@example.org>\n\
References: <outside@elsewhere.example>\n\nAnd the tray\n",
        "From: jane@example.org\nTo: support@example.test\nSubject: Re: Scanner\nMessage-ID: <s2@example.org>\n\
In-Reply-To: <s1@example.org>\n\nStill jams\n",
        "From: paul@example.org\nTo: support@example.test\nSubject: Monitor\nMessage-ID: <s4@example.org>\n\nFlickers\n",
    ];
    for mail in mails {
        r.store(mail).await;
    }
    let pass = r.processor.run_once(10, T0 + 1).await.unwrap();
    assert_eq!((pass.processed, pass.quarantined), (5, 0));
    let mut tx = r.store.begin().await.unwrap();
    let known = tx
        .tickets_of_mail_ids(&[
            "<s1@example.org>",
            "<s2@example.org>",
            "<s3@example.org>",
            "<outside@elsewhere.example>",
            "<s4@example.org>",
        ])
        .await
        .unwrap();
    drop(tx);
    let ticket_of = |id: &str| known.iter().find(|(k, _)| k == id).unwrap().1;
    let first = ticket_of("<s1@example.org>");
    for id in [
        "<s2@example.org>",
        "<s3@example.org>",
        "<outside@elsewhere.example>",
    ] {
        assert_eq!(ticket_of(id), first, "{id} is on the first mail's ticket");
    }
    assert_ne!(ticket_of("<s4@example.org>"), first);
    let ticket = r.store.ticket(first).await.unwrap().unwrap();
    assert_eq!(ticket.message_count, 3, "the second copy added nothing");
}

/// Pipelined batches (each next one claimed, read and prepared on the
/// helper runtime before the current one is written) keep arrival order: a
/// reply in a later batch finds the ticket its parent opened in an earlier
/// one, a second copy finds the first. A turn ends after its last batch
/// with nothing claimed ahead: the next turn takes the rest at once.
async fn pipelined_batches_keep_arrival_order(db: TestDb) {
    let mut r = rig(&db).await;
    let mails = [
        "From: jane@example.org\nTo: support@example.test\nSubject: Scanner\nMessage-ID: <s1@example.org>\n\nThe scanner jams\n",
        "From: jane@example.org\nTo: support@example.test\nSubject: Re: Scanner\nMessage-ID: <s2@example.org>\n\
In-Reply-To: <s1@example.org>\n\nStill jams\n",
        "From: paul@example.org\nTo: support@example.test\nSubject: Monitor\nMessage-ID: <s4@example.org>\n\nFlickers\n",
        "From: jane@example.org\nTo: support@example.test\nSubject: Re: Scanner\nMessage-ID: <s2@example.org>\n\
In-Reply-To: <s1@example.org>\n\nStill jams\n",
        "From: paul@example.org\nTo: support@example.test\nSubject: Re: Monitor\nMessage-ID: <s5@example.org>\n\
In-Reply-To: <s4@example.org>\n\nStill flickers\n",
    ];
    for mail in mails {
        r.store(mail).await;
    }
    let processor = r
        .processor
        .clone()
        .with_helper(tokio::runtime::Handle::current(), r.store.clone());
    // One mail per batch, three batches in this turn.
    let pass = processor.run_pipelined(1, 3, || true).await.unwrap();
    assert_eq!((pass.processed, pass.quarantined), (3, 0));
    let counts = r.store.inbound_counts().await.unwrap();
    assert_eq!(counts, [("done".to_string(), 3), ("new".to_string(), 2)]);
    let pass = processor.run_pipelined(1, 16, || true).await.unwrap();
    assert_eq!((pass.processed, pass.quarantined), (2, 0));
    let mut tx = r.store.begin().await.unwrap();
    let known = tx
        .tickets_of_mail_ids(&[
            "<s1@example.org>",
            "<s2@example.org>",
            "<s4@example.org>",
            "<s5@example.org>",
        ])
        .await
        .unwrap();
    drop(tx);
    let ticket_of = |id: &str| known.iter().find(|(k, _)| k == id).unwrap().1;
    assert_eq!(ticket_of("<s2@example.org>"), ticket_of("<s1@example.org>"));
    assert_eq!(ticket_of("<s5@example.org>"), ticket_of("<s4@example.org>"));
    assert_ne!(ticket_of("<s1@example.org>"), ticket_of("<s4@example.org>"));
    let jane = r
        .store
        .ticket(ticket_of("<s1@example.org>"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(jane.message_count, 2, "the second copy added nothing");
    let paul = r
        .store
        .ticket(ticket_of("<s4@example.org>"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(paul.message_count, 2);
}

/// A batch's notifications are written together at its commit, several to
/// a statement: 70 new requests (statements of 64, 4 and 2 rows) give each
/// ticket exactly its own requester's receipt.
async fn a_batch_writes_each_ticket_its_own_receipt(db: TestDb) {
    let mut r = rig(&db).await;
    for i in 0..70 {
        r.store(&format!(
            "From: user{i}@example.org\nTo: support@example.test\nSubject: Request {i}\n\
Message-ID: <n{i}@example.org>\n\nPlease help ({i})\n"
        ))
        .await;
    }
    let pass = r.processor.run_once(100, T0 + 1).await.unwrap();
    assert_eq!((pass.processed, pass.quarantined), (70, 0));
    let ids: Vec<String> = (0..70).map(|i| format!("<n{i}@example.org>")).collect();
    let asked: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut tx = r.store.begin().await.unwrap();
    let known = tx.tickets_of_mail_ids(&asked).await.unwrap();
    drop(tx);
    assert_eq!(known.len(), 70);
    for (mail_id, ticket) in known {
        let i: usize = mail_id[2..mail_id.find('@').unwrap()].parse().unwrap();
        assert_eq!(
            receipts(&r, ticket).await,
            [format!("user{i}@example.org")],
            "{mail_id}"
        );
    }
}

/// The attacks of a public mailbox (SPEC §5.11): a forged From with a
/// guessed subject tag and the attacker in Cc gives the attacker nothing,
/// whatever Authentication-Results header the sender wrote; the same mail
/// verified by the trusted server threads as a reply.
async fn a_forged_from_gives_the_attacker_nothing(db: TestDb) {
    let mut r = rig(&db).await;
    let t = opened(&r.deliver("From: Jane <jane@example.org>\nTo: support@example.test\nSubject: Invoice 881\nMessage-ID: <s1@example.org>\n\nMy card number ends 4242\n").await);
    let participants = |r: &Rig| {
        let store = r.store.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            let p: Vec<String> = tx
                .participants(t)
                .await
                .unwrap()
                .into_iter()
                .map(|p| p.email.to_string())
                .collect();
            drop(tx);
            p
        }
    };
    let before = participants(&r).await;
    let thread_before = r.store.messages(t, true).await.unwrap().len();
    for (i, written_by_sender) in [
        "",
        "Authentication-Results: evil.example; dmarc=pass header.from=example.org\n",
        // The trusted id, but failing: a forged From that the server caught.
        "Authentication-Results: mx.support.test; dmarc=fail header.from=example.org\n",
    ]
    .into_iter()
    .enumerate()
    {
        let d = r
            .deliver(&format!("{written_by_sender}From: Jane <jane@example.org>\nTo: support@example.test\nCc: mallory@evil.example\nSubject: Re: [TKT-1] Invoice 881\nMessage-ID: <x{i}@evil.example>\n\nPlease add my colleague\n"))
            .await;
        let new = opened(&d);
        assert_ne!(new, t);
        let linked = r.store.ticket(new).await.unwrap().unwrap();
        assert_eq!(linked.linked_ticket_id, Some(t));
        let thread = r.store.messages(new, true).await.unwrap();
        assert!(
            thread
                .iter()
                .any(|m| m.kind == MessageKind::System && m.body_text.contains("unverified sender")),
            "{thread:?}"
        );
        let first = thread
            .iter()
            .find(|m| m.kind == MessageKind::Reply)
            .unwrap();
        let v = first.verification.as_deref().unwrap();
        assert!(
            v.starts_with(if i == 2 { "failed" } else { "unverified" }),
            "{v}"
        );
        // Mallory is a participant of nothing.
        let mut tx = r.store.begin().await.unwrap();
        assert!(
            tx.participants(new)
                .await
                .unwrap()
                .iter()
                .all(|p| p.email.as_str() != "mallory@evil.example")
        );
        drop(tx);
        assert_eq!(participants(&r).await, before);
        assert_eq!(
            r.store.messages(t, true).await.unwrap().len(),
            thread_before + 1 + i
        );
        assert!(
            r.store
                .outbox_list(None, 100)
                .await
                .unwrap()
                .iter()
                .all(|o| o.recipient != "mallory@evil.example"),
            "nothing is mailed to the attacker"
        );
    }
    // The same mail, verified by the trusted server: a reply as today, and
    // its Cc joins.
    let d = r
        .deliver(&format!("{}From: Jane <jane@example.org>\nTo: support@example.test\nCc: colleague@example.org\nSubject: Re: [TKT-1] Invoice 881\nMessage-ID: <ok1@example.org>\n\nPlease add my colleague\n", dmarc_pass("example.org")))
        .await;
    assert_eq!(d, Disposition::Replied { ticket_id: t });
    let last = r.store.messages(t, true).await.unwrap().pop().unwrap();
    assert!(
        last.verification
            .as_deref()
            .unwrap()
            .starts_with("verified: dmarc=pass")
    );
    assert!(
        participants(&r)
            .await
            .contains(&"colleague@example.org".to_string())
    );
    // Unverified, but replying to her own mail's Message-ID (a secret of the
    // thread's): a reply.
    let d = r
        .deliver("From: Jane <jane@example.org>\nTo: support@example.test\nSubject: Re: Invoice 881\nMessage-ID: <s2@example.org>\nIn-Reply-To: <s1@example.org>\n\nAny news?\n")
        .await;
    assert_eq!(d, Disposition::Replied { ticket_id: t });
}

/// Hostile HTML (SPEC §5, non-negotiable 4): deep nesting and unclosed
/// tags are read as stripped text, said so on the message, and the mails
/// behind them are processed.
async fn hostile_html_is_read_as_text_and_said_so(db: TestDb) {
    let mut r = rig(&db).await;
    let deep = format!(
        "{}deep words{}",
        "<div>".repeat(40_000),
        "</div>".repeat(40_000)
    );
    let unclosed = format!("<p>unclosed words{}", "<b><i>".repeat(200_000));
    for (i, html) in [deep, unclosed].into_iter().enumerate() {
        r.store(&format!("From: eve{i}@example.org\nTo: support@example.test\nSubject: bomb {i}\nMessage-ID: <h{i}@example.org>\nContent-Type: text/html\n\n{html}\n")).await;
    }
    r.store("From: ann@example.org\nTo: support@example.test\nSubject: ordinary\nMessage-ID: <h9@example.org>\n\nhello\n").await;
    let pass = r.processor.run_once(10, T0 + 1).await.unwrap();
    assert_eq!((pass.processed, pass.quarantined), (3, 0));
    let (_, list) = r
        .store
        .list_tickets(
            &Default::default(),
            (postdesk::store::SortKey::Created, false),
            1,
            10,
        )
        .await
        .unwrap();
    assert_eq!(list.len(), 3);
    for (i, words) in ["deep words", "unclosed words"].into_iter().enumerate() {
        let t = list
            .iter()
            .find(|s| s.subject == format!("bomb {i}"))
            .unwrap();
        let m = r.store.messages(t.id, true).await.unwrap().remove(0);
        assert!(m.body_text.contains(words), "{}", m.body_text);
        assert!(m.body_html.is_none());
        assert!(
            m.notice.as_deref().unwrap().contains("was not rendered"),
            "{:?}",
            m.notice
        );
    }
}

/// A reply that arrives before the mail it answers opens a ticket; the
/// mail then joins it (one conversation, no second receipt), alone or in
/// the same batch.
async fn a_reply_that_outran_its_parent_is_joined_by_it(db: TestDb) {
    let mut r = rig(&db).await;
    let reply = r
        .deliver("From: Jane <jane@example.org>\nTo: support@example.test\nSubject: Re: Printer\nMessage-ID: <late-2@example.org>\nIn-Reply-To: <late-1@example.org>\nReferences: <late-1@example.org>\n\nAlso, it smokes.\n")
        .await;
    let t = opened(&reply);
    let receipts_before = receipts(&r, t).await;
    let parent = r
        .deliver("From: Jane <jane@example.org>\nTo: support@example.test\nCc: boss@example.org\nSubject: Printer\nMessage-ID: <late-1@example.org>\n\nThe printer is broken.\n")
        .await;
    assert_eq!(parent, Disposition::Replied { ticket_id: t });
    let thread = r.store.messages(t, true).await.unwrap();
    assert!(
        thread
            .iter()
            .any(|m| m.body_text.contains("The printer is broken."))
    );
    assert!(
        thread.iter().any(|m| m.kind == MessageKind::System
            && m.body_text.contains("arrived after a reply to it")),
        "{thread:?}"
    );
    assert_eq!(receipts(&r, t).await, receipts_before, "no second receipt");
    let (total, _) = r
        .store
        .list_tickets(
            &Default::default(),
            (postdesk::store::SortKey::Updated, true),
            1,
            10,
        )
        .await
        .unwrap();
    assert_eq!(total, 1, "one conversation");
    // Both in one batch, the reply first.
    r.store("From: Ann <ann@example.org>\nTo: support@example.test\nSubject: Re: VPN\nMessage-ID: <late-4@example.org>\nIn-Reply-To: <late-3@example.org>\n\nStill down.\n").await;
    r.store("From: Ann <ann@example.org>\nTo: support@example.test\nSubject: VPN\nMessage-ID: <late-3@example.org>\n\nVPN down.\n").await;
    let pass = r.processor.run_once(10, T0 + 100).await.unwrap();
    assert_eq!((pass.processed, pass.quarantined), (2, 0));
    let (total, _) = r
        .store
        .list_tickets(
            &Default::default(),
            (postdesk::store::SortKey::Updated, true),
            1,
            10,
        )
        .await
        .unwrap();
    assert_eq!(total, 2, "the VPN mails are one conversation");
}

/// The race one level down (two partitions, docs/operations.md "Several
/// daemons"): a reply to a reply, naming only its parent, is processed
/// before that parent and opens a ticket; the parent then goes to the
/// conversation's ticket, and the reply's ticket is joined into it in the
/// same transaction, with a system message and no second receipt. A
/// stranger naming a ticket's Message-ID joins nothing.
async fn a_split_conversation_is_joined_when_the_missing_mail_arrives(db: TestDb) {
    let mut r = rig(&db).await;
    let first = opened(&r.deliver("From: Jane <jane@example.org>\nTo: support@example.test\nSubject: Printer\nMessage-ID: <split-1@example.org>\n\nThe printer is broken.\n").await);
    let outran = opened(&r.deliver("From: Jane <jane@example.org>\nTo: support@example.test\nSubject: Re: Re: Printer\nMessage-ID: <split-3@example.org>\nIn-Reply-To: <split-2@example.org>\n\nNow it smokes.\n").await);
    assert_ne!(
        first, outran,
        "the reply that outran its parent opened a ticket"
    );
    let receipts_before = receipts(&r, first).await;
    let parent = r
        .deliver("From: Jane <jane@example.org>\nTo: support@example.test\nSubject: Re: Printer\nMessage-ID: <split-2@example.org>\nIn-Reply-To: <split-1@example.org>\n\nIt makes a noise.\n")
        .await;
    assert_eq!(parent, Disposition::Replied { ticket_id: first });
    let joined = r.store.ticket(outran).await.unwrap().unwrap();
    assert_eq!(
        joined.merged_into_id,
        Some(first),
        "joined into the older ticket"
    );
    let thread = r.store.messages(first, true).await.unwrap();
    for words in [
        "The printer is broken.",
        "It makes a noise.",
        "Now it smokes.",
    ] {
        assert!(
            thread.iter().any(|m| m.body_text.contains(words)),
            "{words}: {thread:?}"
        );
    }
    assert_eq!(
        thread
            .iter()
            .filter(|m| m.kind == MessageKind::System
                && m.body_text.contains("arrived before the mail it answered"))
            .count(),
        1,
        "{thread:?}"
    );
    assert_eq!(receipts(&r, first).await, receipts_before, "no new receipt");
    let withdrawn = r.store.outbox_for_ticket(outran).await.unwrap();
    assert!(
        !withdrawn.is_empty() && withdrawn.iter().all(|o| o.state == "suppressed"),
        "the joined ticket's unsent receipt is withdrawn: {withdrawn:?}"
    );
    // Later mail naming the joined reply threads onto the kept ticket.
    let later = r
        .deliver("From: Jane <jane@example.org>\nTo: support@example.test\nSubject: Re: Printer\nMessage-ID: <split-4@example.org>\nIn-Reply-To: <split-3@example.org>\n\nFixed now.\n")
        .await;
    assert_eq!(later, Disposition::Replied { ticket_id: first });

    // A stranger whose mail carries the Message-ID a fresh ticket names,
    // as a reply to their own ticket: their mail goes to their ticket,
    // and Ann's ticket stays Ann's.
    let mallory = opened(&r.deliver("From: mallory@example.net\nTo: support@example.test\nSubject: Hello\nMessage-ID: <m-1@example.net>\n\nHi.\n").await);
    let anns = opened(&r.deliver("From: Ann <ann@example.org>\nTo: support@example.test\nSubject: Re: Re: Payroll\nMessage-ID: <pay-3@example.org>\nIn-Reply-To: <pay-2@example.org>\n\nSalary details inside.\n").await);
    let forged = r
        .deliver("From: mallory@example.net\nTo: support@example.test\nSubject: Re: Hello\nMessage-ID: <pay-2@example.org>\nIn-Reply-To: <m-1@example.net>\n\nJoin us.\n")
        .await;
    assert_eq!(forged, Disposition::Replied { ticket_id: mallory });
    assert_eq!(
        r.store.ticket(anns).await.unwrap().unwrap().merged_into_id,
        None
    );
    assert_eq!(
        r.store
            .ticket(mallory)
            .await
            .unwrap()
            .unwrap()
            .merged_into_id,
        None
    );
}

/// A mail whose preparation panics (a debug build's test hook stands in
/// for a bug in parsing, HTML or extraction) is quarantined with the
/// reason; the mails beside it are processed.
async fn a_mail_that_panics_is_quarantined_and_the_rest_go_on(db: TestDb) {
    let mut r = rig(&db).await;
    r.one_batch_one_quarantined(
        &[
            "From: a@example.org\nTo: support@example.test\nSubject: before\nMessage-ID: <p1@example.org>\n\nfine\n",
            "From: b@example.org\nTo: support@example.test\nSubject: postdesk test hook: panic while preparing\nMessage-ID: <p2@example.org>\n\nboom\n",
            "From: c@example.org\nTo: support@example.test\nSubject: after\nMessage-ID: <p3@example.org>\n\nfine\n",
        ],
        "preparing the mail failed (a bug in postdesk): the test hook asked for a panic",
    )
    .await;
}

/// Every reply path to a merged ticket (its reply token, marker or tag)
/// lands on the ticket it was merged into.
async fn mail_to_a_merged_ticket_lands_where_it_went(db: TestDb) {
    let mut r = rig(&db).await;
    let kept = opened(&r.deliver("From: jane@example.org\nTo: support@example.test\nSubject: Printer\nMessage-ID: <g1@example.org>\n\none\n").await);
    let merged = opened(&r.deliver("From: jane@example.org\nTo: support@example.test\nSubject: Printer again\nMessage-ID: <g2@example.org>\n\ntwo\n").await);
    let (_, admin) = staff(&r.store, "boss@support.test", Role::Admin).await;
    let mut s = settings(&db);
    s.mailboxes = vec![mailbox()];
    let actions = postdesk::actions::Actions::new(r.store.clone(), std::sync::Arc::new(s));
    actions.merge(admin, merged, kept, T0 + 50).await.unwrap();
    let number = r
        .store
        .ticket(merged)
        .await
        .unwrap()
        .unwrap()
        .reference
        .number();
    let token = r.key.reply_token(number);
    let d = r
        .deliver(&format!("From: jane@example.org\nTo: support+{token}@example.test\nSubject: Re: Printer again\nMessage-ID: <g3@example.org>\n\nthree\n"))
        .await;
    assert_eq!(d, Disposition::Replied { ticket_id: kept });
    let d = r
        .deliver(&format!("From: jane@example.org\nTo: support@example.test\nSubject: Fwd\nMessage-ID: <g4@example.org>\n\nfour {}\n", r.key.marker("TKT", number)))
        .await;
    assert_eq!(d, Disposition::Replied { ticket_id: kept });
    assert_eq!(
        r.store.ticket(merged).await.unwrap().unwrap().status,
        Status::Closed
    );
}

/// A reply quoting the agent's answer in a language and client format no
/// rule knows ("skribis", no ">") is cut where the copy begins: the ticket
/// knows what it sent (#33).
async fn a_reply_quoting_our_answer_in_any_language_is_cut(db: TestDb) {
    let mut r = rig(&db).await;
    let t = opened(&r.deliver("From: jane@example.org\nTo: support@example.test\nSubject: Password\nMessage-ID: <q1@example.org>\n\nI cannot sign in.\n").await);
    let (_, agent) = staff(&r.store, "alan@support.test", Role::Agent).await;
    let mut s = settings(&db);
    s.mailboxes = vec![mailbox()];
    let actions = postdesk::actions::Actions::new(r.store.clone(), std::sync::Arc::new(s));
    let answer = "we have reset your password. Please sign in again and tell us whether the error is gone, then we close this request.";
    actions
        .reply(
            agent,
            t,
            postdesk::actions::ReplyInput::text(answer),
            T0 + 10,
        )
        .await
        .unwrap();
    let number = r.store.ticket(t).await.unwrap().unwrap().reference.number();
    let token = r.key.reply_token(number);
    let d = r
        .deliver(&format!("From: jane@example.org\nTo: support+{token}@example.test\nSubject: Re: Password\nMessage-ID: <q2@example.org>\n\nDankon, ĝi funkcias nun.\n\nJe sabato 2026-01-03 9:00, Alan skribis:\n\nwe have reset your password. Please sign in again and tell us whether\nthe error is gone, then we close this request.\n"))
        .await;
    assert_eq!(d, Disposition::Replied { ticket_id: t });
    let last = r.store.messages(t, false).await.unwrap().pop().unwrap();
    assert_eq!(last.body_text, "Dankon, ĝi funkcias nun.");
    assert!(
        last.full_text.unwrap().contains("skribis"),
        "the whole text is kept"
    );
}

crate::on_both_backends!(
    a_reply_quoting_our_answer_in_any_language_is_cut,
    mail_to_a_merged_ticket_lands_where_it_went,
    a_mail_that_panics_is_quarantined_and_the_rest_go_on,
    a_reply_that_outran_its_parent_is_joined_by_it,
    a_split_conversation_is_joined_when_the_missing_mail_arrives,
    a_forged_from_gives_the_attacker_nothing,
    hostile_html_is_read_as_text_and_said_so,
    a_batch_writes_each_ticket_its_own_receipt,
    a_batch_threads_replies_to_its_own_mails,
    pipelined_batches_keep_arrival_order,
    a_failing_mail_is_quarantined_alone_in_its_batch,
    a_message_the_database_refuses_is_quarantined_alone,
    replies_thread_by_message_id_tag_token_and_marker,
    strangers_agents_and_status_rules,
    automated_mail_is_recorded_never_acted_on,
    duplicates_junk_and_attachments,
);

/// Sender checks in process need a real name server (dnsmasq, installed by
/// the test if missing): bound to the stack.
#[cfg(feature = "stack")]
mod in_process {
    use super::*;

    /// Signs `mail` (CRLF lines) with DKIM for `domain`, selector `s1`: the
    /// `DKIM-Signature` header followed by the mail.
    fn dkim_signed(pkcs8: &[u8], domain: &str, mail: &str) -> String {
        let key = mail_auth::common::crypto::Ed25519Key::from_pkcs8_der(pkcs8).unwrap();
        use mail_auth::common::headers::HeaderWriter;
        let mail = mail.replace("\r\n", "\n").replace('\n', "\r\n");
        let signature = mail_auth::dkim::DkimSigner::from_key(key)
            .domain(domain)
            .selector("s1")
            .headers(["From", "To", "Cc", "Subject", "Message-ID"])
            .sign(mail.as_bytes())
            .unwrap();
        format!("{}{mail}", signature.to_header())
    }

    async fn dkim_spf_and_dmarc_are_checked_in_process(db: TestDb) {
        use base64::Engine;
        use mail_auth::common::crypto::Ed25519Key;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
        let key = Ed25519Key::from_pkcs8_der(&pkcs8).unwrap();
        let dkim_record = format!("v=DKIM1; k=ed25519; p={}", b64(&key.public_key()));
        let dns = crate::helpers::name_server(&[
            ("s1._domainkey.signed.example", &dkim_record),
            ("_dmarc.signed.example", "v=DMARC1; p=reject"),
            ("signed.example", "v=spf1 ip4:192.0.2.7 -all"),
        ]);
        // The mailbox trusts mx.support.test, which stamps nothing here: the
        // in-process checks decide.
        let mut r = rig_with(&db, |s| {
            s.dns.servers = vec![dns.addr.to_string()];
            s.mailboxes[0].verify_in_process = true;
            s.mailboxes[0].received_by = vec!["mx.support.test".into()];
        })
        .await;
        let verification_of_last = |r: &Rig, t: i64| {
            let store = r.store.clone();
            async move {
                let thread = store.messages(t, true).await.unwrap();
                thread
                    .iter()
                    .rev()
                    .find(|m| m.kind == MessageKind::Reply)
                    .and_then(|m| m.verification.clone())
                    .unwrap()
            }
        };
        // A stranger's unsigned mail still opens a ticket; DMARC p=reject and
        // nothing passes: failed.
        let t = opened(&r.deliver("From: Ann <ann@signed.example>\nTo: support@example.test\nSubject: Printer on fire\nMessage-ID: <p1@signed.example>\n\nIt smokes.\n").await);
        let v = verification_of_last(&r, t).await;
        assert!(
            v.starts_with("failed: dmarc=fail for signed.example"),
            "{v}"
        );
        // Signed by her domain: verified in process, threads by the subject tag
        // as a trusted server's stamp would, and her Cc joins.
        let signed = dkim_signed(
            &pkcs8,
            "signed.example",
            "From: Ann <ann@signed.example>\nTo: support@example.test\nCc: bob@signed.example\nSubject: Re: [TKT-1] Printer on fire\nMessage-ID: <p2@signed.example>\n\nStill smoking, Bob sees it too.\n",
        );
        assert_eq!(
            r.deliver(&signed).await,
            Disposition::Replied { ticket_id: t }
        );
        let v = verification_of_last(&r, t).await;
        assert!(
            v.starts_with("verified: dmarc=pass for signed.example (by postdesk)"),
            "{v}"
        );
        let mut tx = r.store.begin().await.unwrap();
        assert!(
            tx.participants(t)
                .await
                .unwrap()
                .iter()
                .any(|p| p.email.as_str() == "bob@signed.example")
        );
        drop(tx);
        // The same signature over changed words fails: a new ticket linked to
        // the tagged one, not a reply.
        let tampered = signed
            .replace("Still smoking", "Send the invoice to mallory@evil.example")
            .replace("<p2@", "<p3@");
        let new = opened(&r.deliver(&tampered).await);
        assert_ne!(new, t);
        assert_eq!(
            r.store.ticket(new).await.unwrap().unwrap().linked_ticket_id,
            Some(t)
        );
        assert!(verification_of_last(&r, new).await.starts_with("failed"));
        // Results written by the sender under postdesk's own name count for nothing.
        let forged = "Authentication-Results: postdesk; dkim=pass header.d=signed.example; dmarc=pass header.from=signed.example\nFrom: Ann <ann@signed.example>\nTo: support@example.test\nSubject: Re: [TKT-1] Printer on fire\nMessage-ID: <p4@evil.example>\n\nPay here.\n";
        let new = opened(&r.deliver(forged).await);
        assert_ne!(new, t);
        assert!(
            verification_of_last(&r, new)
                .await
                .starts_with("failed: dmarc=fail")
        );
        // SPF: her server's address, as our own server's Received line names
        // it, passes and is aligned; another address fails; a Received line
        // naming another server is the sender's claim and is not read.
        let by_spf = |ip: &str, by: &str, id: &str| {
            format!(
                "Return-Path: <ann@signed.example>\nReceived: from mail.signed.example (mail.signed.example [{ip}])\n\tby {by} (Postfix) with ESMTPS id 4Q;\n\tMon, 7 Dec 2026 10:00:00 +0000\nFrom: Ann <ann@signed.example>\nTo: support@example.test\nSubject: Re: [TKT-1] Printer on fire\nMessage-ID: <{id}@signed.example>\n\nFixed now.\n"
            )
        };
        assert_eq!(
            r.deliver(&by_spf("192.0.2.7", "mx.support.test", "s1"))
                .await,
            Disposition::Replied { ticket_id: t }
        );
        let v = verification_of_last(&r, t).await;
        assert!(v.starts_with("verified: dmarc=pass"), "{v}");
        for (ip, by, id) in [
            ("198.51.100.9", "mx.support.test", "s2"),
            ("192.0.2.7", "relay.evil.example", "s3"),
        ] {
            let new = opened(&r.deliver(&by_spf(ip, by, id)).await);
            assert_ne!(new, t);
            assert!(
                verification_of_last(&r, new)
                    .await
                    .starts_with("failed: dmarc=fail")
            );
        }
        // With the name server gone, the signed mail is unverified (a
        // temporary error, not a failure), and still lands: a new ticket.
        drop(dns);
        let again = signed.replace("<p2@", "<p5@");
        let new = opened(&r.deliver(&again).await);
        assert_ne!(new, t);
        let v = verification_of_last(&r, new).await;
        assert!(v.starts_with("unverified"), "{v}");
    }

    crate::on_both_backends!(dkim_spf_and_dmarc_are_checked_in_process);
}
