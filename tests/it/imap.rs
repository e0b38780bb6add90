//! The gateway against the real Dovecot: mail APPENDed to a mailbox becomes
//! tickets and replies; `\\Seen` set by someone else skips nothing; the
//! post-processing action is applied only after the mail is stored; a
//! UIDVALIDITY change duplicates nothing.

use crate::helpers::{TestDb, eventually, mailbox, mailstack, spawn_app_with};
use postdesk::config::AfterAction;
use postdesk::domain::{MessageKind, Status};
use postdesk::store::{SortKey, Store, TicketFilter};

fn mail(from: &str, to: &str, subject: &str, id: &str, extra: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n{extra}\r\n{body}\r\n"
    )
}

async fn ticket_count(store: &Store) -> i64 {
    store
        .list_tickets(&TicketFilter::default(), (SortKey::Created, false), 1, 100)
        .await
        .unwrap()
        .0
}

async fn done_count(store: &Store) -> i64 {
    store
        .inbound_counts()
        .await
        .unwrap()
        .into_iter()
        .filter(|(s, _)| s == "done")
        .map(|(_, n)| n)
        .sum()
}

async fn mailboxes_become_tickets_and_replies(db: TestDb) {
    let stack = mailstack();
    let (support, pw) = stack.user("support");
    let mut imap = stack.session(&support, &pw).await;
    // Backlog: a new request, already read by a person in their mail client.
    imap.append(
        "INBOX",
        Some("(\\Seen)"),
        None,
        mail(
            "Jane <jane@example.org>",
            &support,
            "Printer",
            "i1@example.org",
            "",
            "It smokes.",
        ),
    )
    .await
    .unwrap();
    let app = spawn_app_with(db, |s| {
        s.mailboxes = vec![mailbox(&support, &pw, "INBOX", AfterAction::Seen)]
    })
    .await;
    let store = app.store.clone();
    eventually(20, "the backlog mail becomes a ticket", || async {
        ticket_count(&store).await == 1
    })
    .await;

    // While running (IDLE): a reply, then an auto-reply, to the same thread.
    let reply = mail(
        "jane@example.org",
        &support,
        "Re: Printer",
        "i2@example.org",
        "In-Reply-To: <i1@example.org>\r\n",
        "Now it burns.\r\n\r\nOn Mon, Support wrote:\r\n> x",
    );
    imap.append("INBOX", None, None, reply).await.unwrap();
    let auto = mail(
        "jane@example.org",
        &support,
        "Automatic reply: Printer",
        "i3@example.org",
        "Auto-Submitted: auto-replied\r\nIn-Reply-To: <i1@example.org>\r\n",
        "Away",
    );
    imap.append("INBOX", None, None, auto).await.unwrap();
    eventually(20, "three mails processed", || async {
        done_count(&store).await == 3
    })
    .await;
    assert_eq!(
        ticket_count(&store).await,
        1,
        "the reply and the auto-reply join the first ticket"
    );
    let (_, list) = store
        .list_tickets(&TicketFilter::default(), (SortKey::Created, false), 1, 10)
        .await
        .unwrap();
    let thread = store.messages(list[0].id, true).await.unwrap();
    let texts: Vec<_> = thread
        .iter()
        .map(|m| (m.kind, m.body_text.as_str()))
        .collect();
    assert_eq!(texts[0], (MessageKind::Reply, "It smokes."));
    assert_eq!(texts[1], (MessageKind::Reply, "Now it burns."));
    assert!(
        texts[2].1.starts_with("Automatic reply received"),
        "{texts:?}"
    );
    assert_eq!(
        store.ticket(list[0].id).await.unwrap().unwrap().status,
        Status::Open
    );

    // Every stored mail is flagged \\Seen on the server afterwards.
    eventually(10, "post-processing marks all seen", || async {
        let mut s = mailstack().session(&support, &pw).await;
        s.select("INBOX").await.unwrap();
        let unseen = s.uid_search("UNSEEN").await.unwrap();
        let _ = s.logout().await;
        unseen.is_empty()
    })
    .await;

    // /readyz reports the mailbox healthy.
    let ready: serde_json::Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["mailboxes"][0]["ok"], true, "{ready}");
    // This daemon holds the mailbox's lease and says so.
    assert!(ready["mailboxes"][0]["holder"].is_string(), "{ready}");
    assert_eq!(
        ready["daemons"].as_array().map(Vec::len),
        Some(1),
        "{ready}"
    );
    assert_eq!(ready["daemons"][0]["mailboxes"][0], "support", "{ready}");
    assert_eq!(ready["queues"]["unprocessed"], 0, "{ready}");

    // /metrics parses as Prometheus text, and its counters match what happened.
    let text = app.metrics().await;
    let metrics = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("/metrics does not parse: {e}\n{text}"));
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        metrics
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    let support_box = [("mailbox", "support")];
    assert_eq!(
        value("postdesk_mail_fetched_total", &support_box),
        3.0,
        "{text}"
    );
    for outcome in ["opened", "replied", "automated"] {
        assert_eq!(
            value(
                "postdesk_mail_processed_total",
                &[("mailbox", "support"), ("outcome", outcome)]
            ),
            1.0,
            "{outcome}: {text}"
        );
    }
    assert_eq!(value("postdesk_mailbox_lease", &support_box), 1.0, "{text}");
    let latency = metrics
        .samples
        .iter()
        .find(|s| s.metric == "postdesk_mail_processing_seconds")
        .expect("a processing latency histogram");
    match &latency.value {
        prometheus_parse::Value::Histogram(buckets) => {
            assert_eq!(buckets.last().map(|b| b.count), Some(3.0), "{text}")
        }
        other => panic!("not a histogram: {other:?}"),
    }
    assert!(
        value("postdesk_http_requests_total", &[("route", "/readyz")]) >= 1.0,
        "{text}"
    );
    app.stop().await;
}

async fn moves_after_storing_and_survives_uidvalidity_change(db: TestDb) {
    let stack = mailstack();
    let (support, pw) = stack.user("support");
    let mut imap = stack.session(&support, &pw).await;
    imap.create("Support").await.unwrap();
    for i in 1..=3 {
        let m = mail(
            &format!("user{i}@example.org"),
            &support,
            &format!("Request {i}"),
            &format!("u{i}@example.org"),
            "",
            "hello",
        );
        imap.append("Support", None, None, m).await.unwrap();
    }
    let app = spawn_app_with(db, |s| {
        s.mailboxes = vec![mailbox(
            &support,
            &pw,
            "Support",
            AfterAction::Move("Processed".into()),
        )];
    })
    .await;
    imap.create("Processed").await.unwrap();
    let store = app.store.clone();
    eventually(20, "three tickets", || async {
        ticket_count(&store).await == 3
    })
    .await;
    eventually(20, "all mail moved out of the folder", || async {
        let mut s = mailstack().session(&support, &pw).await;
        let n = s.select("Support").await.unwrap().exists;
        let _ = s.logout().await;
        n == 0
    })
    .await;
    let processed = imap.select("Processed").await.unwrap().exists;
    assert_eq!(processed, 3);

    // The folder is deleted and recreated (new UIDVALIDITY) with an old mail and a new one.
    imap.delete("Support").await.unwrap();
    imap.create("Support").await.unwrap();
    let again = mail(
        "user1@example.org",
        &support,
        "Request 1",
        "u1@example.org",
        "",
        "hello",
    );
    imap.append("Support", None, None, again).await.unwrap();
    let new = mail(
        "user9@example.org",
        &support,
        "Request 9",
        "u9@example.org",
        "",
        "hello",
    );
    imap.append("Support", None, None, new).await.unwrap();
    eventually(30, "the new mail is a ticket", || async {
        ticket_count(&store).await == 4
    })
    .await;
    eventually(20, "the old copy is recognised", || async {
        done_count(&store).await == 5
    })
    .await;
    assert_eq!(ticket_count(&store).await, 4, "nothing doubled");
    eventually(20, "both new copies moved too", || async {
        let mut s = mailstack().session(&support, &pw).await;
        let n = s.select("Processed").await.unwrap().exists;
        let _ = s.logout().await;
        n == 5
    })
    .await;
    app.stop().await;
}

/// IDLE never strands a mail: bursts of 2–6 mails delivered at random
/// gaps (0–250 ms), so that some land while the poller fetches or between
/// a fetch and IDLE, each become tickets long before the poll interval
/// (two minutes here) would have found them.
async fn idle_never_strands_a_mail(db: TestDb) {
    let stack = mailstack();
    let (support, pw) = stack.user("support");
    let app = spawn_app_with(db, |s| {
        let mut m = mailbox(&support, &pw, "INBOX", AfterAction::Seen);
        m.poll_interval = postdesk::domain::Span::secs(120);
        s.mailboxes = vec![m];
    })
    .await;
    let store = app.store.clone();
    eventually(20, "the mailbox is polled", || async {
        store
            .mailbox_by_name("support")
            .await
            .unwrap()
            .is_some_and(|m| m.last_ok_at.is_some())
    })
    .await;
    let mut imap = stack.session(&support, &pw).await;
    let mut seed = postdesk::store::now_millis() as u64 | 1;
    let mut random = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut total = 0;
    for burst in 0..30 {
        for _ in 0..2 + random(5) {
            total += 1;
            let body = mail(
                "Jane <jane@example.org>",
                &support,
                &format!("Burst {burst}"),
                &format!("burst-{burst}-{total}@example.org"),
                "",
                "Hello.",
            );
            imap.append("INBOX", None, None, body).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(random(250))).await;
        }
        let want = total;
        eventually(
            15,
            &format!("every mail of burst {burst} is a ticket"),
            || async { ticket_count(&store).await == want },
        )
        .await;
    }
    let _ = imap.logout().await;
    app.stop().await;
}

/// Mail in the charsets and reply prefixes of the world, through Dovecot and
/// the poller: decoded, the prefixes gone from the titles (#32 items 2, 3).
async fn every_charset_and_reply_prefix_through_the_stack(db: TestDb) {
    let stack = mailstack();
    let (support, pw) = stack.user("support");
    let app = spawn_app_with(db, |s| {
        s.mailboxes = vec![mailbox(&support, &pw, "INBOX", AfterAction::Seen)]
    })
    .await;
    let store = app.store.clone();
    let mut imap = stack.session(&support, &pw).await;
    // (charset, subject and body in it as base64, the subject and body expected)
    let cases = [
        (
            "GB2312",
            "u9i4tKO6tPLTobv6u7XByw==",
            "tPLTobv6w7DRzMHLo6zH67Dvw6ahow==",
            "打印机坏了",
            "打印机冒烟了，请帮忙。",
        ),
        (
            "Shift_JIS",
            "gnGCZIFGg3aDioOTg16BW4Kqk66CqYLIgqI=",
            "g3aDioOTg16BW4Kqk66Cq4LcgrmC8YFC",
            "プリンターが動かない",
            "プリンターが動きません。",
        ),
        (
            "KOI8-R",
            "UmU6IPDSz8LMxc3BINMg0NLJztTF0s/N",
            "8NLJztTF0iDOxSDQxd7B1MHF1C4=",
            "Проблема с принтером",
            "Принтер не печатает.",
        ),
    ];
    for (i, (charset, subject, body, _, _)) in cases.iter().enumerate() {
        let raw = format!(
            "From: <w{i}@example.org>\r\nTo: {support}\r\nSubject: =?{charset}?B?{subject}?=\r\n\
             Message-ID: <cs{i}@example.org>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}\r\n"
        );
        imap.append("INBOX", None, None, raw).await.unwrap();
    }
    eventually(30, "the three mails are processed", || async {
        done_count(&store).await == 3
    })
    .await;
    let (_, list) = store
        .list_tickets(&TicketFilter::default(), (SortKey::Created, false), 1, 10)
        .await
        .unwrap();
    for (_, _, _, subject, body) in cases {
        let t = list
            .iter()
            .find(|t| t.subject == subject)
            .unwrap_or_else(|| panic!("no ticket titled {subject}: {list:?}"));
        let thread = store.messages(t.id, false).await.unwrap();
        assert_eq!(thread[0].body_text, body);
    }
    app.stop().await;
}

crate::on_both_backends!(
    every_charset_and_reply_prefix_through_the_stack,
    mailboxes_become_tickets_and_replies,
    moves_after_storing_and_survives_uidvalidity_change,
    idle_never_strands_a_mail
);

#[test]
fn mailbox_commands_add_test_pause_and_remove() {
    let stack = mailstack();
    let (support, pw) = stack.user("cli");
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .current_dir(dir.path())
            .env_remove("POSTDESK_CONFIG")
            .env("MAILBOX_PW", &pw)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let port = stack.imap_port.to_string();
    let add = [
        "mailbox",
        "add",
        "--name",
        "help",
        "--address",
        &support,
        "--imap-host",
        "127.0.0.1",
        "--imap-port",
        &port,
        "--tls",
        "none",
        "--username",
        &support,
        "--password-env",
        "MAILBOX_PW",
    ];
    let (ok, out) = run(&add);
    assert!(ok, "{out}");
    // A user added a moment ago may take Dovecot a moment to see.
    let mut tested = run(&["mailbox", "test", "help"]);
    for _ in 0..50 {
        if tested.0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        tested = run(&["mailbox", "test", "help"]);
    }
    let (ok, out) = tested;
    assert!(
        ok && out.contains("folder INBOX holds 0 messages") && out.contains("IDLE yes"),
        "{out}"
    );
    let (ok, out) = run(&["mailbox", "show", "help"]);
    assert!(
        ok && out.contains("env = \"MAILBOX_PW\"") && !out.contains(&pw),
        "{out}"
    );
    assert!(run(&["mailbox", "pause", "help"]).0);
    let (_, out) = run(&["mailbox", "list"]);
    assert!(out.contains("paused"), "{out}");
    assert!(run(&["mailbox", "resume", "help"]).0);
    // A wrong password is reported by `test`, which changes nothing.
    let (ok, out) = run(&[
        "mailbox",
        "add",
        "--name",
        "bad",
        "--address",
        &support,
        "--imap-host",
        "127.0.0.1",
        "--imap-port",
        &port,
        "--tls",
        "none",
        "--username",
        &support,
    ]);
    assert!(ok, "{out}");
    let (ok, out) = run(&["mailbox", "test", "bad"]);
    assert!(!ok && out.contains("refused"), "{out}");
    // Plain text to a remote host is refused with the flag named.
    let (ok, out) = run(&[
        "mailbox",
        "add",
        "--name",
        "x",
        "--address",
        &support,
        "--imap-host",
        "imap.example.test",
        "--tls",
        "none",
        "--username",
        "u",
    ]);
    assert!(!ok && out.contains("--imap.tls"), "{out}");
    assert!(run(&["mailbox", "remove", "help"]).0);
    assert!(!run(&["mailbox", "remove", "help"]).0);
}
