//! Outbound mail against the real servers: receipts and replies travel
//! Postfix → Dovecot and are read back over IMAP; answers sent through
//! Postfix land on the right ticket; an SMTP outage delays but never loses
//! or doubles a notification; a 5xx fails without retries; the loop guard
//! stops an auto-responder; a bounce marks the address undeliverable.

use crate::helpers::{TestApp, TestDb, eventually, mailbox, mailstack, spawn_app_with};
use mail_parser::{Message, MessageParser, MimeHeaders};
use postdesk::config::{AfterAction, Settings};
use postdesk::domain::{MessageKind, Status, TicketRef};
use postdesk::store::{SortKey, Store, TicketFilter};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn parse(raw: &[u8]) -> Message<'_> {
    MessageParser::default().parse(raw).expect("a mail")
}

fn header(m: &Message, name: &str) -> Option<String> {
    m.header_raw(name).map(|v| v.trim().to_string())
}

/// A header's Message-IDs, without angle brackets.
fn ids(list: Option<&[std::borrow::Cow<'_, str>]>) -> Vec<String> {
    list.unwrap_or_default()
        .iter()
        .map(|c| c.to_string())
        .collect()
}

/// Waits until Dovecot lets `user` log in (a user added a moment ago may
/// take it a moment to see), so a poller's first login does not fail.
async fn ready(user: &str, pw: &str) {
    let _ = mailstack().session(user, pw).await.logout().await;
}

/// A support mailbox on the stack that answers through `smtp_port`.
fn support(settings: &mut Settings, user: &str, pw: &str, smtp_port: u16) {
    let mut m = mailbox(user, pw, "INBOX", AfterAction::Seen);
    m.smtp = Some(mailstack().smtp_account(smtp_port));
    settings.mailboxes = vec![m];
    settings.outbound.retry_base = postdesk::domain::Span::secs(1);
    settings.http.public_url = "https://desk.example.test".into();
}

async fn inbox_len(user: &str, pw: &str) -> usize {
    mailstack().inbox(user, pw).await.len()
}

async fn ticket_ids(store: &Store) -> Vec<i64> {
    store
        .list_tickets(&TicketFilter::default(), (SortKey::Created, false), 1, 500)
        .await
        .unwrap()
        .1
        .into_iter()
        .map(|t| t.id)
        .collect()
}

async fn api_open(app: &TestApp, requester: &str, subject: &str) -> String {
    let r = app
        .http
        .post(app.url("/api/v1/tickets"))
        .bearer_auth(&app.token)
        .json(&json!({
            "requester": { "email": requester },
            "subject": subject,
            "body": "Please help.",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let v: serde_json::Value = r.json().await.unwrap();
    v["reference"].as_str().unwrap().to_string()
}

/// Files an agent attaches to a reply travel with the requester's mail
/// (same bytes, name, type); past `outbound.max_attached_bytes` the mail
/// says where to download them instead.
async fn an_agents_files_reach_the_requester(db: TestDb) {
    let stack = mailstack();
    let (support_addr, support_pw) = stack.user("support");
    ready(&support_addr, &support_pw).await;
    let (ann, ann_pw) = stack.user("ann");
    let app = spawn_app_with(db, |s| {
        support(s, &support_addr, &support_pw, stack.smtp_port);
        s.outbound.max_attached_bytes = 4_000;
    })
    .await;
    let reference = api_open(&app, &ann, "VPN drops").await;
    eventually(60, "the receipt reaches Ann", || async {
        inbox_len(&ann, &ann_pw).await == 1
    })
    .await;
    crate::console::account(
        &app,
        "alan@example.test",
        postdesk::domain::Role::Agent,
        "alan-password-1",
    )
    .await;
    let (alan, status) =
        crate::console::Agent::sign_in(&app, "alan@example.test", "alan-password-1").await;
    assert_eq!(status, 303);
    let path = format!("/console/tickets/{reference}");
    let workaround = b"route add default gw 10.0.0.1\n".to_vec();
    let csrf = alan.get(&path).await.csrf();
    let r = alan
        .post_files(
            &format!("{path}/reply"),
            &[("csrf", &csrf), ("body", "See the attached workaround.")],
            &[("workaround.sh", "application/x-sh", workaround.clone())],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    eventually(60, "the reply reaches Ann", || async {
        inbox_len(&ann, &ann_pw).await == 2
    })
    .await;
    let raw = stack.inbox(&ann, &ann_pw).await.remove(1);
    let m = parse(&raw);
    let files: Vec<_> = m.attachments().collect();
    assert_eq!(files.len(), 1, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(files[0].attachment_name(), Some("workaround.sh"));
    assert_eq!(files[0].contents(), &workaround[..]);
    assert!(
        m.body_text(0)
            .unwrap()
            .contains("See the attached workaround.")
    );
    // From shows the agent, with the support address.
    let from = m.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Agent alan@example.test via Support"));
    assert_eq!(from.address(), Some(support_addr.as_str()));
    // Too large to attach: named, with the way to the portal.
    let big = vec![b'x'; 10_000];
    let csrf = alan.get(&path).await.csrf();
    alan.post_files(
        &format!("{path}/reply"),
        &[("csrf", &csrf), ("body", "And the full log.")],
        &[("log.txt", "text/plain", big)],
    )
    .await;
    eventually(60, "the second reply reaches Ann", || async {
        inbox_len(&ann, &ann_pw).await == 3
    })
    .await;
    let raw = stack.inbox(&ann, &ann_pw).await.remove(2);
    let m = parse(&raw);
    assert_eq!(m.attachments().count(), 0);
    let text = m.body_text(0).unwrap();
    assert!(text.contains("too large to attach"), "{text}");
    assert!(
        text.contains("https://desk.example.test/portal/t/"),
        "{text}"
    );
    app.stop().await;
}

/// The mail that tells the requester their ticket is resolved asks "How
/// did we do?" with two links; following one from the mail really
/// received records the rating on the ticket (issue 34, item 7).
async fn the_resolved_mail_asks_how_we_did(db: TestDb) {
    let stack = mailstack();
    let (support_addr, support_pw) = stack.user("support");
    ready(&support_addr, &support_pw).await;
    let (ann, ann_pw) = stack.user("ann");
    let app = spawn_app_with(db, |s| {
        support(s, &support_addr, &support_pw, stack.smtp_port)
    })
    .await;
    let reference = api_open(&app, &ann, "Printer").await;
    eventually(60, "the receipt reaches Ann", || async {
        inbox_len(&ann, &ann_pw).await == 1
    })
    .await;
    let receipt = parse(&stack.inbox(&ann, &ann_pw).await[0])
        .body_text(0)
        .unwrap()
        .to_string();
    assert!(
        !receipt.contains("How did we do?"),
        "only the resolved mail asks"
    );
    let r = app
        .http
        .patch(app.url(&format!("/api/v1/tickets/{reference}")))
        .bearer_auth(&app.token)
        .json(&json!({ "status": "resolved" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    eventually(60, "the resolved mail reaches Ann", || async {
        inbox_len(&ann, &ann_pw).await == 2
    })
    .await;
    let raw = stack.inbox(&ann, &ann_pw).await.remove(1);
    let m = parse(&raw);
    let text = m.body_text(0).unwrap().to_string();
    assert!(text.contains("How did we do?"), "{text}");
    let link = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Not good: "))
        .expect("the Not good link")
        .to_string();
    let html = m.body_html(0).unwrap().to_string();
    assert!(html.contains(&link.replace("/bad", "/good")), "{html}");
    let path = link
        .strip_prefix("https://desk.example.test")
        .expect("the public URL");
    let page = app.http.get(app.url(path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let shown: serde_json::Value = app
        .http
        .get(app.url(&format!("/api/v1/tickets/{reference}")))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["satisfaction"]["rating"], "bad");
    app.stop().await;
}

/// The public mailbox's attacks through the real stack (Postfix, Dovecot,
/// the poller): a stranger writing `From:` the requester with the guessed
/// tag and themselves in Cc gets nothing — no reply on her ticket, no
/// participation, no mail; a mail `From:` an agent sends nothing to the
/// requester and is kept as an internal note; a forged delivery report
/// changes nothing.
async fn the_attacks_of_a_public_mailbox_give_nothing(db: TestDb) {
    let stack = mailstack();
    let (support_addr, support_pw) = stack.user("support");
    ready(&support_addr, &support_pw).await;
    let (ann, ann_pw) = stack.user("ann");
    let (mallory, mallory_pw) = stack.user("mallory");
    let app = spawn_app_with(db, |s| {
        support(s, &support_addr, &support_pw, stack.smtp_port)
    })
    .await;
    let store = app.store.clone();
    let reference = api_open(&app, &ann, "Invoice 881").await;
    eventually(60, "the receipt reaches Ann", || async {
        inbox_len(&ann, &ann_pw).await == 1
    })
    .await;
    crate::console::account(
        &app,
        "alan@example.test",
        postdesk::domain::Role::Agent,
        "alan-password-1",
    )
    .await;
    let ticket = ticket_ids(&store).await[0];
    let messages = || async { store.messages(ticket, true).await.unwrap() };
    let before = messages().await.len();
    // 1. From: Ann (forged), the tag guessed, Mallory in Cc.
    let forged = format!(
        "From: <{ann}>\r\nTo: {support_addr}\r\nCc: {mallory}\r\nSubject: Re: [{reference}] Invoice 881\r\n\
         Message-ID: <forged-1@evil.test>\r\n\r\nPlease send the details to my colleague.\r\n"
    );
    stack.send(&mallory, &support_addr, forged.as_bytes()).await;
    // 2. From: the agent (forged), on Ann's ticket.
    let phishing = format!(
        "From: Alan <alan@example.test>\r\nTo: {support_addr}\r\nSubject: Re: [{reference}] Invoice 881\r\n\
         Message-ID: <forged-2@evil.test>\r\n\r\nPay to IBAN XX00 EVIL now.\r\n"
    );
    stack
        .send(&mallory, &support_addr, phishing.as_bytes())
        .await;
    // 3. A forged delivery report naming Ann.
    let report = format!(
        "From: MAILER-DAEMON@mx.evil.test\r\nTo: {support_addr}\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: <forged-3@evil.test>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; {ann}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--B--\r\n"
    );
    stack.send(&mallory, &support_addr, report.as_bytes()).await;
    eventually(60, "the three mails are processed", || async {
        crate::helpers::settled_mails(&store).await >= 3
    })
    .await;
    eventually(30, "the queue settles", || async {
        outbox_settled(&store).await
    })
    .await;
    let thread = messages().await;
    assert!(
        !thread
            .iter()
            .any(|m| m.kind == MessageKind::Reply && m.body_text.contains("my colleague")),
        "the forged mail is not Ann's reply: {thread:?}"
    );
    let note = thread
        .iter()
        .find(|m| m.body_text.contains("IBAN"))
        .expect("the forged agent mail is kept");
    assert_eq!(note.kind, MessageKind::Note, "only as an internal note");
    assert!(thread.len() > before);
    let t = store.ticket(ticket).await.unwrap().unwrap();
    assert_eq!(t.status, Status::Open, "nothing changed the status");
    assert!(
        t.requester.undeliverable_at.is_none(),
        "the forged report changed nothing"
    );
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.participants(ticket)
            .await
            .unwrap()
            .iter()
            .all(|p| p.email.as_str() != mallory)
    );
    drop(tx);
    // Nothing about Ann's ticket goes to Mallory, and nothing at all
    // reaches Mallory's mailbox (the linked ticket's receipt goes to the
    // address it claims to be from, Ann's).
    assert!(
        store
            .outbox_for_ticket(ticket)
            .await
            .unwrap()
            .iter()
            .all(|o| o.recipient != mallory)
    );
    assert_eq!(stack.inbox(&mallory, &mallory_pw).await.len(), 0);
    let _ = ann_pw;
    app.stop().await;
}

/// A receipt refused with 550 shows on its ticket's page (what, to whom,
/// the server's answer) with a retry button, and on the admins' outbox page.
async fn failed_deliveries_show_on_the_ticket_and_the_outbox_page(db: TestDb) {
    let stack = mailstack();
    let (support_addr, support_pw) = stack.user("support");
    ready(&support_addr, &support_pw).await;
    let app = spawn_app_with(db, |s| {
        support(s, &support_addr, &support_pw, stack.smtp_port)
    })
    .await;
    let store = app.store.clone();
    let refused = format!("refuse-{}@example.test", uuid::Uuid::new_v4().simple());
    let reference = api_open(&app, &refused, "A 5xx").await;
    eventually(60, "the receipt fails", || async {
        !store
            .outbox_list(Some("failed"), 10)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    crate::console::account(
        &app,
        "root@example.test",
        postdesk::domain::Role::Admin,
        "root-password-1",
    )
    .await;
    let (admin, _) =
        crate::console::Agent::sign_in(&app, "root@example.test", "root-password-1").await;
    let page = admin.get(&format!("/console/tickets/{reference}")).await;
    assert!(page.body.contains("Mail not delivered"), "{}", page.body);
    assert!(
        page.body
            .contains(&format!("<strong>Receipt</strong> to {refused}: failed"))
    );
    assert!(page.body.contains("550"), "the server's answer is shown");
    let outbox = admin.get("/console/admin/outbox?state=failed").await;
    assert_eq!(outbox.status, 200);
    assert!(outbox.body.contains(&refused) && outbox.body.contains(&reference));
    // Retry from the ticket page: queued again (and refused again).
    let id = store.outbox_list(Some("failed"), 10).await.unwrap()[0].id;
    let r = admin
        .post(
            &format!("/console/tickets/{reference}/outbox/{id}/retry"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let row = store
        .outbox_list(None, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.id == id)
        .unwrap();
    assert!(row.state == "queued" || row.attempts <= 1, "{row:?}");
    app.stop().await;
}

/// A responder that answers each receipt from a new address (same words,
/// `Re:` the receipt, In-Reply-To it, no automation headers) opens a linked
/// ticket each time; the loop guard counts the whole conversation as one
/// sender and holds the receipt once its cap is reached: the loop dies.
async fn a_responder_rotating_its_address_is_stopped(db: TestDb) {
    let stack = mailstack();
    let (support_addr, support_pw) = stack.user("support");
    ready(&support_addr, &support_pw).await;
    let robots: Vec<(String, String)> = (0..8).map(|i| stack.user(&format!("rot{i}"))).collect();
    let app = spawn_app_with(db, |s| {
        support(s, &support_addr, &support_pw, stack.smtp_port);
        s.outbound.per_conversation_per_hour = 4;
    })
    .await;
    let store = app.store.clone();
    let first = format!(
        "From: <{}>\r\nTo: {support_addr}\r\nSubject: Order status\r\nMessage-ID: <rot-start@example.test>\r\n\r\nThanks, your mail has been received.\r\n",
        robots[0].0
    );
    stack
        .send(&robots[0].0, &support_addr, first.as_bytes())
        .await;
    let answered = answer_each_receipt(stack, &robots, &support_addr, |i, raw| {
        let m = parse(raw);
        format!(
            "From: <{}>\r\nTo: {support_addr}\r\nSubject: Re: {}\r\nMessage-ID: <rot-{i}@example.test>\r\nIn-Reply-To: <{}>\r\n\r\nThanks, your mail has been received.\r\n",
            robots[i + 1].0,
            m.subject().unwrap_or(""),
            m.message_id().unwrap_or("")
        )
    })
    .await;
    assert_eq!(
        answered, 4,
        "the cap of 4 receipts per conversation stopped it"
    );
    eventually(30, "the queue settles", || async {
        outbox_settled(&store).await
    })
    .await;
    let held = store.outbox_list(Some("held"), 10).await.unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    let notes = store
        .messages(held[0].ticket_id.unwrap(), false)
        .await
        .unwrap();
    assert!(
        notes
            .iter()
            .any(|m| m.kind == MessageKind::System && m.body_text.contains("conversation")),
        "{notes:?}"
    );
    app.stop().await;
}

/// Plays a responder that answers the receipt robot `i` got with the mail
/// `answer(i, receipt)` from robot `i + 1`, until a receipt does not come
/// (10 s); returns how many it answered.
async fn answer_each_receipt(
    stack: &crate::helpers::MailStack,
    robots: &[(String, String)],
    support_addr: &str,
    answer: impl Fn(usize, &[u8]) -> String,
) -> usize {
    let mut answered = 0;
    for i in 0..robots.len() - 1 {
        let (me, pw) = &robots[i];
        let mut receipt = None;
        for _ in 0..40 {
            if let Some(raw) = stack.inbox(me, pw).await.into_iter().next() {
                receipt = Some(raw);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        let Some(raw) = receipt else { break };
        let reply = answer(i, &raw);
        stack
            .send(&robots[i + 1].0, support_addr, reply.as_bytes())
            .await;
        answered += 1;
    }
    answered
}

/// A responder answering each receipt from a new address, under its own
/// subject and without our thread headers: every answer opens an unrelated
/// ticket, but its words are the same, and the content cap stops it.
async fn a_responder_repeating_itself_from_new_addresses_is_stopped(db: TestDb) {
    let stack = mailstack();
    let (support_addr, support_pw) = stack.user("support");
    ready(&support_addr, &support_pw).await;
    let robots: Vec<(String, String)> = (0..7).map(|i| stack.user(&format!("rep{i}"))).collect();
    let app = spawn_app_with(db, |s| {
        support(s, &support_addr, &support_pw, stack.smtp_port);
        s.outbound.per_content_per_hour = 3;
    })
    .await;
    let store = app.store.clone();
    let words = "Thank you for your message. We will answer within 2 business days.";
    let mail = |i: usize| {
        format!(
            "From: <{}>\r\nTo: {support_addr}\r\nSubject: Question about my order\r\nMessage-ID: <rep-{i}@example.test>\r\n\r\n{words} Ref {}\r\n",
            robots[i].0,
            1000 + i
        )
    };
    stack
        .send(&robots[0].0, &support_addr, mail(0).as_bytes())
        .await;
    let answered = answer_each_receipt(stack, &robots, &support_addr, |i, _| mail(i + 1)).await;
    assert_eq!(
        answered, 3,
        "the cap of 3 receipts for the same words stopped it"
    );
    eventually(30, "the queue settles", || async {
        outbox_settled(&store).await
    })
    .await;
    let held = store.outbox_list(Some("held"), 10).await.unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    let t = held[0].ticket_id.unwrap();
    let notes = store.messages(t, false).await.unwrap();
    assert!(
        notes
            .iter()
            .any(|m| m.kind == MessageKind::System && m.body_text.contains("same words")),
        "{notes:?}"
    );
    // Four tickets, none linked: the conversation cap could not see it.
    assert!(
        store
            .ticket(t)
            .await
            .unwrap()
            .unwrap()
            .linked_ticket_id
            .is_none()
    );
    app.stop().await;
}

/// Another help desk's tag at the end of a long subject goes back out in
/// our receipt, so desk-to-desk mail threads there (#32 item 4).
async fn a_foreign_desks_tag_survives_a_long_subject(db: TestDb) {
    let stack = mailstack();
    let (support_addr, support_pw) = stack.user("support");
    ready(&support_addr, &support_pw).await;
    let (desk, desk_pw) = stack.user("desk");
    let app = spawn_app_with(db, |s| {
        support(s, &support_addr, &support_pw, stack.smtp_port)
    })
    .await;
    let subject = format!(
        "{} [otherdesk.example #4711]",
        "Escalated: shipment delayed at customs again "
            .repeat(6)
            .trim()
    );
    assert!(subject.len() > 250, "{}", subject.len());
    let mail = format!(
        "From: <{desk}>\r\nTo: {support_addr}\r\nSubject: {subject}\r\nMessage-ID: <desk-1@example.test>\r\n\r\nPlease look into this.\r\n"
    );
    stack.send(&desk, &support_addr, mail.as_bytes()).await;
    let mut receipt = None;
    for _ in 0..120 {
        if let Some(raw) = stack.inbox(&desk, &desk_pw).await.into_iter().next() {
            receipt = Some(raw);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let raw = receipt.expect("the receipt reaches the other desk");
    let m = parse(&raw);
    let got = m.subject().unwrap_or_default().to_string();
    assert!(got.contains("[otherdesk.example #4711]"), "{got}");
    assert!(got.contains("[TKT-"), "our own tag too: {got}");
    app.stop().await;
}

async fn outbox_settled(store: &Store) -> bool {
    store
        .outbox_counts()
        .await
        .unwrap()
        .iter()
        .all(|(state, n)| state != "queued" || *n == 0)
}

async fn full_loop(db: TestDb) {
    let stack = mailstack();
    let (support_addr, support_pw) = stack.user("support");
    ready(&support_addr, &support_pw).await;
    let (ann, ann_pw) = stack.user("ann");
    let (carl, carl_pw) = stack.user("carl");
    let app = spawn_app_with(db, |s| {
        support(s, &support_addr, &support_pw, stack.smtp_port)
    })
    .await;
    let store = app.store.clone();

    // 1. Ann writes to support (cc Carl), through Postfix like anyone would;
    //    the support domain's receiving server vouched for her (the header
    //    it stamps), so her Cc joins the ticket.
    let ann_domain = ann.split_once('@').unwrap().1;
    let first = format!(
        "Authentication-Results: mx.support.test; dmarc=pass header.from={ann_domain}\r\n\
         From: Ann Example <{ann}>\r\nTo: {support_addr}\r\nCc: {carl}\r\nSubject: Printer on fire\r\n\
         Message-ID: <loop-1@client.test>\r\nDate: Tue, 24 Nov 2026 09:00:00 +0000\r\n\r\nThe printer smokes.\r\n"
    );
    stack.send(&ann, &support_addr, first.as_bytes()).await;

    // 2. The receipt arrives in Ann's own mailbox, threaded and tagged.
    eventually(60, "the receipt reaches Ann", || async {
        inbox_len(&ann, &ann_pw).await == 1
    })
    .await;
    let ticket_id = ticket_ids(&store).await[0];
    let ticket = store.ticket(ticket_id).await.unwrap().unwrap();
    let reference = ticket.reference.to_string();
    let receipt_raw = stack.inbox(&ann, &ann_pw).await.remove(0);
    let receipt = parse(&receipt_raw);
    let subject = receipt.subject().unwrap();
    assert!(subject.contains(&format!("[{reference}]")), "{subject}");
    assert_eq!(
        header(&receipt, "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert_eq!(
        header(&receipt, "X-Auto-Response-Suppress").as_deref(),
        Some("All")
    );
    assert_eq!(
        ids(receipt.in_reply_to().as_text_list()),
        vec!["loop-1@client.test"]
    );
    let refs = ids(receipt.references().as_text_list());
    assert!(
        refs[0].starts_with(&format!("pd.{reference}.")),
        "root first: {refs:?}"
    );
    assert!(refs.iter().any(|r| r == "loop-1@client.test"));
    let text = receipt.body_text(0).unwrap().to_string();
    assert!(
        text.contains("https://desk.example.test/portal/t/"),
        "{text}"
    );
    assert!(text.contains(&format!("[ref:{reference}-")), "{text}");
    assert!(text.contains("The printer smokes."));
    let reply_to = receipt
        .reply_to()
        .unwrap()
        .first()
        .unwrap()
        .address()
        .unwrap();
    let (local, _) = support_addr.split_once('@').unwrap();
    assert!(
        reply_to.starts_with(&format!("{local}+t{}-", ticket.reference.number())),
        "{reply_to}"
    );
    let receipt_id = receipt.message_id().unwrap().to_string();
    // Carl is on the ticket (CC) but gets no receipt.
    assert_eq!(inbox_len(&carl, &carl_pw).await, 0);

    // 3. Ann answers the receipt as a mail client would: to the Reply-To,
    //    In-Reply-To the receipt, the receipt quoted below.
    let quoted: String = text.lines().map(|l| format!("> {l}\r\n")).collect();
    let answer = format!(
        "From: Ann Example <{ann}>\r\nTo: {reply_to}\r\nSubject: Re: {subject}\r\n\
         Message-ID: <loop-2@client.test>\r\nIn-Reply-To: <{receipt_id}>\r\n\
         References: <loop-1@client.test> <{receipt_id}>\r\n\r\nStill burning, see above.\r\n\r\n\
         On Tue, 24 Nov 2026 at 09:01, Support <{support_addr}> wrote:\r\n{quoted}"
    );
    stack.send(&ann, reply_to, answer.as_bytes()).await;
    eventually(60, "Ann's answer lands on the same ticket", || async {
        store
            .messages(ticket_id, false)
            .await
            .unwrap()
            .iter()
            .any(|m| m.mail_message_id.as_deref() == Some("<loop-2@client.test>"))
    })
    .await;
    assert_eq!(ticket_ids(&store).await.len(), 1, "no second ticket");
    let messages = store.messages(ticket_id, false).await.unwrap();
    let answer = messages
        .iter()
        .find(|m| m.mail_message_id.as_deref() == Some("<loop-2@client.test>"))
        .unwrap();
    assert_eq!(answer.kind, MessageKind::Reply);
    assert_eq!(answer.body_text.trim(), "Still burning, see above.");

    // 4. An agent replies: Ann and Carl get it, not marked automated, and
    //    the ticket moves open → in_progress.
    let r = app
        .http
        .post(app.url(&format!("/api/v1/tickets/{reference}/replies")))
        .bearer_auth(&app.token)
        .json(&json!({ "body": "We are sending a technician." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    assert_eq!(
        store.ticket(ticket_id).await.unwrap().unwrap().status,
        Status::InProgress
    );
    eventually(60, "the agent's reply reaches Ann and Carl", || async {
        inbox_len(&ann, &ann_pw).await == 2 && inbox_len(&carl, &carl_pw).await == 1
    })
    .await;
    for raw in [
        stack.inbox(&ann, &ann_pw).await.remove(1),
        stack.inbox(&carl, &carl_pw).await.remove(0),
    ] {
        let m = parse(&raw);
        assert!(header(&m, "Auto-Submitted").is_none());
        assert!(m.subject().unwrap().contains(&format!("[{reference}]")));
        // One conversation: every copy shows Ann in To and Carl in Cc, so
        // Reply All reaches everyone.
        let to: Vec<&str> = m.to().unwrap().iter().filter_map(|a| a.address()).collect();
        let cc: Vec<&str> = m
            .cc()
            .map(|c| c.iter().filter_map(|a| a.address()).collect())
            .unwrap_or_default();
        assert_eq!(to, vec![ann.as_str()]);
        assert_eq!(cc, vec![carl.as_str()]);
        let body = m.body_text(0).unwrap();
        assert!(body.contains("We are sending a technician."), "{body}");
        assert!(
            body.contains("Still burning"),
            "the conversation so far: {body}"
        );
        let refs = ids(m.references().as_text_list());
        assert!(refs[0].starts_with(&format!("pd.{reference}.")));
        assert!(refs.iter().any(|r| r == "loop-2@client.test"), "{refs:?}");
        assert_eq!(
            ids(m.in_reply_to().as_text_list()),
            vec![refs.last().cloned().unwrap()]
        );
    }
    // Every row is sent exactly once, with the Message-ID recorded for matching.
    let rows = store.outbox_for_ticket(ticket_id).await.unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r.state == "sent" && r.attempts == 1));
    assert_eq!(
        rows[0].mail_message_id.as_deref(),
        Some(format!("<{receipt_id}>").as_str())
    );
    // The metrics count what happened.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("postdesk_outbox_total{outcome=\"sent\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("postdesk_outbox_delivery_seconds_count 3"),
        "{metrics}"
    );
    app.stop().await;
}

async fn outage_delays_but_never_loses_or_doubles(db: TestDb) {
    let stack = mailstack();
    // A Postfix of this test's own, so stopping it disturbs no other test.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(format!(
            "mailstack-outage-{}",
            uuid::Uuid::new_v4().simple()
        ));
    let port = if db.url.starts_with("sqlite") {
        31125
    } else {
        31126
    };
    let (support_addr, support_pw) = stack.user("support");
    ready(&support_addr, &support_pw).await;
    let people: Vec<(String, String)> = (0..4).map(|i| stack.user(&format!("out{i}"))).collect();
    let app = spawn_app_with(db, |s| support(s, &support_addr, &support_pw, port)).await;
    let store = app.store.clone();
    for (p, _) in &people {
        api_open(&app, p, "During the outage").await;
    }
    let refused = format!("refuse-{}@example.test", uuid::Uuid::new_v4().simple());
    let refused_ref = api_open(&app, &refused, "A 5xx").await;

    // Postfix is down: the receipts wait, with the reason recorded.
    eventually(
        30,
        "delivery attempts fail while Postfix is down",
        || async {
            store
                .outbox_list(Some("queued"), 100)
                .await
                .unwrap()
                .iter()
                .filter(|r| r.attempts >= 1)
                .count()
                == 5
        },
    )
    .await;
    let waiting = store.outbox_list(Some("queued"), 100).await.unwrap();
    assert!(
        waiting
            .iter()
            .all(|r| r.last_error.as_deref().unwrap_or("").contains("connect")),
        "{waiting:?}"
    );

    // Postfix comes back: each receipt arrives exactly once; the refused
    // address fails at once with the server's answer.
    stack.extra_postfix("smtp-start", &dir, port);
    eventually(90, "the queue drains", || async {
        outbox_settled(&store).await
    })
    .await;
    for (p, pw) in &people {
        eventually(30, "the receipt is delivered", || async {
            inbox_len(p, pw).await >= 1
        })
        .await;
    }
    // A duplicate could only still be in Postfix's queue: wait until it
    // has delivered everything it took, then count.
    eventually(30, "Postfix has delivered everything it took", || async {
        crate::helpers::postfix_queue_empty(&dir)
    })
    .await;
    for (p, pw) in &people {
        assert_eq!(inbox_len(p, pw).await, 1, "exactly one receipt for {p}");
    }
    let r: TicketRef = refused_ref.parse().unwrap();
    let t = store.ticket_by_ref(&r).await.unwrap().unwrap();
    let rows = store.outbox_for_ticket(t.id).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, "failed");
    assert!(
        rows[0].last_error.as_deref().unwrap().contains("550"),
        "{rows:?}"
    );
    // One try while Postfix was down (connection refused), one 5xx: no storm.
    assert!(rows[0].attempts <= 2, "{rows:?}");
    stack.extra_postfix("smtp-stop", &dir, port);
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn loop_guard_stops_an_auto_responder(db: TestDb) {
    let stack = mailstack();
    let (support_addr, support_pw) = stack.user("support");
    ready(&support_addr, &support_pw).await;
    let (bot, bot_pw) = stack.user("bot");
    let (polite, polite_pw) = stack.user("polite");
    let app = spawn_app_with(db, |s| {
        support(s, &support_addr, &support_pw, stack.smtp_port);
        s.outbound.per_address_per_hour = 3;
    })
    .await;
    let store = app.store.clone();

    // Two auto-responders answer every mail they get: one marks its answers
    // (Auto-Submitted), the other is a naive script that does not, and
    // writes a fresh subject without threading headers.
    let stop = tokio_util::sync::CancellationToken::new();
    // Each counts what it answered, so the test can tell when the loop is quiet.
    let counts: [Arc<AtomicUsize>; 2] = Default::default();
    let responders = [(bot.clone(), bot_pw.clone(), false), (polite.clone(), polite_pw.clone(), true)]
        .into_iter()
        .zip(counts.clone())
        .map(|((me, pw, marked), count)| {
            let (support_addr, stop) = (support_addr.clone(), stop.clone());
            tokio::spawn(async move {
                let mut answered = 0;
                while !stop.is_cancelled() {
                    let inbox = mailstack().inbox(&me, &pw).await;
                    for raw in inbox.iter().skip(answered) {
                        let m = parse(raw);
                        let reply = if marked {
                            format!(
                                "From: <{me}>\r\nTo: {support_addr}\r\nSubject: Auto: {}\r\nAuto-Submitted: auto-replied\r\n\
                                 Message-ID: <auto-{answered}-{me}>\r\nIn-Reply-To: <{}>\r\n\r\nI am out of the office.\r\n",
                                m.subject().unwrap_or(""),
                                m.message_id().unwrap_or("")
                            )
                        } else {
                            format!(
                                "From: <{me}>\r\nTo: {support_addr}\r\nSubject: Your mail number {answered}\r\n\
                                 Message-ID: <naive-{answered}-{me}>\r\n\r\nThanks, your mail has been received.\r\n"
                            )
                        };
                        mailstack().send(&me, &support_addr, reply.as_bytes()).await;
                        answered += 1;
                        count.store(answered, Ordering::SeqCst);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                }
            })
        })
        .collect::<Vec<_>>();

    // Each starts with one ordinary mail to support.
    for who in [&bot, &polite] {
        let first = format!(
            "From: <{who}>\r\nTo: {support_addr}\r\nSubject: Hello from {who}\r\nMessage-ID: <start-{who}>\r\n\r\nHi.\r\n"
        );
        stack.send(who, &support_addr, first.as_bytes()).await;
    }

    // The naive responder gets 3 receipts (the limit); its 4th ticket's
    // receipt is held back and the ticket says so; then the loop is dead.
    eventually(90, "the loop guard holds a receipt back", || async {
        !store
            .outbox_list(Some("held"), 10)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    eventually(30, "the queue settles", || async {
        outbox_settled(&store).await
    })
    .await;
    // Quiet means nothing is in flight anywhere: every mail sent to support
    // (the two first ones and every answer) processed, no notification
    // waiting, every one sent delivered, and each responder has answered
    // all it got. Then no further mail can be produced.
    eventually(60, "the loop has gone quiet", || async {
        let answered: Vec<usize> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        let processed = crate::helpers::settled_mails(&store).await;
        let sent = store.outbox_list(Some("sent"), 100).await.unwrap();
        let sent_to = |who: &str| sent.iter().filter(|r| r.recipient == who).count();
        if processed != 2 + (answered[0] + answered[1]) as i64 || !outbox_settled(&store).await {
            return false;
        }
        for (who, pw, answered) in [
            (&bot, &bot_pw, answered[0]),
            (&polite, &polite_pw, answered[1]),
        ] {
            let got = inbox_len(who, pw).await;
            if got != sent_to(who) || got != answered {
                return false;
            }
        }
        true
    })
    .await;
    stop.cancel();
    for r in responders {
        r.await.unwrap();
    }
    assert_eq!(inbox_len(&bot, &bot_pw).await, 3, "the per-address limit");
    let held = store.outbox_list(Some("held"), 10).await.unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    let held_ticket = held[0].ticket_id.unwrap();
    let notes = store.messages(held_ticket, false).await.unwrap();
    assert!(
        notes
            .iter()
            .any(|m| m.kind == MessageKind::System && m.body_text.contains("Held back")),
        "{notes:?}"
    );
    // The marked auto-reply never got an answer: one receipt, one ticket,
    // its auto-reply recorded as a system message.
    assert_eq!(inbox_len(&polite, &polite_pw).await, 1);
    let mut polite_tickets = 0;
    for id in ticket_ids(&store).await {
        let t = store.ticket(id).await.unwrap().unwrap();
        if t.requester.email.as_str() == polite {
            polite_tickets += 1;
            let ms = store.messages(id, false).await.unwrap();
            assert!(
                ms.iter()
                    .any(|m| m.kind == MessageKind::System
                        && m.body_text.contains("Automatic reply"))
            );
        }
    }
    assert_eq!(polite_tickets, 1);
    app.stop().await;
}

async fn bounce_marks_the_address_undeliverable(db: TestDb) {
    let stack = mailstack();
    let (support_addr, support_pw) = stack.user("support");
    ready(&support_addr, &support_pw).await;
    // An address of the stack's domain with no mailbox: Postfix accepts the
    // receipt, Dovecot refuses it, Postfix bounces it to the support address.
    let ghost = format!("ghost-{}@example.test", uuid::Uuid::new_v4().simple());
    let app = spawn_app_with(db, |s| {
        support(s, &support_addr, &support_pw, stack.smtp_port)
    })
    .await;
    let store = app.store.clone();
    let first = format!(
        "From: <{ghost}>\r\nTo: {support_addr}\r\nSubject: Where is my parcel\r\nMessage-ID: <ghost-1@client.test>\r\n\r\nHello?\r\n"
    );
    stack.send(&ghost, &support_addr, first.as_bytes()).await;
    eventually(90, "the bounce of the receipt is recorded", || async {
        let ids = ticket_ids(&store).await;
        let Some(id) = ids.first() else { return false };
        store.messages(*id, false).await.unwrap().iter().any(|m| {
            m.kind == MessageKind::System && m.body_text.contains("Delivery failure (permanent)")
        })
    })
    .await;
    let ids = ticket_ids(&store).await;
    assert_eq!(ids.len(), 1, "the bounce opened no ticket");
    let t = store.ticket(ids[0]).await.unwrap().unwrap();
    let requester = store.requester(t.requester.id).await.unwrap().unwrap();
    assert!(requester.undeliverable_at.is_some());
    // No further mail goes to that address.
    let r = app
        .http
        .post(app.url(&format!("/api/v1/tickets/{}/replies", t.reference)))
        .bearer_auth(&app.token)
        .json(&json!({ "body": "Can you hear us?" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    eventually(30, "the reply is suppressed", || async {
        store
            .outbox_for_ticket(t.id)
            .await
            .unwrap()
            .iter()
            .any(|r| r.notice == "agent_reply" && r.state == "suppressed")
    })
    .await;
    app.stop().await;
}

crate::on_both_backends!(
    full_loop,
    outage_delays_but_never_loses_or_doubles,
    loop_guard_stops_an_auto_responder,
    bounce_marks_the_address_undeliverable,
    an_agents_files_reach_the_requester,
    the_attacks_of_a_public_mailbox_give_nothing,
    failed_deliveries_show_on_the_ticket_and_the_outbox_page,
    a_responder_rotating_its_address_is_stopped,
    a_foreign_desks_tag_survives_a_long_subject,
    a_responder_repeating_itself_from_new_addresses_is_stopped,
    the_resolved_mail_asks_how_we_did,
);

/// Implicit TLS and STARTTLS to Postfix, trusting the stack's certificate
/// through `ca_file`; without it the certificate is refused and the
/// notification waits with the TLS error recorded.
#[tokio::test]
async fn tls_modes_deliver_and_refuse_an_untrusted_certificate() {
    use postdesk::config::TlsMode;
    let stack = mailstack();
    let (support_addr, support_pw) = stack.user("support");
    ready(&support_addr, &support_pw).await;
    let cert = stack.dir.join("cert.pem");
    for (mode, port, trusted) in [
        (TlsMode::Implicit, stack.smtps_port, true),
        (TlsMode::Starttls, stack.smtp_port, true),
        (TlsMode::Implicit, stack.smtps_port, false),
    ] {
        let (who, pw) = stack.user("tls");
        let app = spawn_app_with(TestDb::sqlite(), |s| {
            support(s, &support_addr, &support_pw, port);
            let smtp = s.mailboxes[0].smtp.as_mut().unwrap();
            smtp.tls = mode;
            smtp.ca_file = trusted.then(|| cert.clone());
            // The API ticket has no mailbox: the outbound account sends it.
            s.outbound.smtp = s.mailboxes[0].smtp.clone();
            s.outbound.from = Some(support_addr.parse().unwrap());
        })
        .await;
        api_open(&app, &who, "Over TLS").await;
        if trusted {
            eventually(30, "the receipt arrives over TLS", || async {
                inbox_len(&who, &pw).await == 1
            })
            .await;
        } else {
            let store = app.store.clone();
            eventually(30, "the TLS failure is recorded", || async {
                store
                    .outbox_list(Some("queued"), 10)
                    .await
                    .unwrap()
                    .iter()
                    .any(|r| r.last_error.as_deref().unwrap_or("").contains("TLS"))
            })
            .await;
            assert_eq!(inbox_len(&who, &pw).await, 0);
        }
        app.stop().await;
    }
}
