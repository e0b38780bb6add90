//! SIGTERM under load: the real daemon is stopped with SIGTERM while it
//! fetches, processes and sends receipts, and started again, several times.
//! Each stop exits 0 within the grace period; at the end every mail is on
//! exactly one ticket and every receipt arrived exactly once, counted in the
//! requesters' own Dovecot mailboxes.

use crate::helpers::{Daemon, start_daemon as start};
use crate::helpers::{TestDb, mailstack};
use postdesk::store::Store;
use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

const MAILS: usize = 240;
const PEOPLE: usize = 12;

/// Waits until the daemon answers /healthz (its signal handlers are set).
async fn ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = format!("http://127.0.0.1:{port}/healthz");
    while !reqwest::get(&url)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "the daemon did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends SIGTERM and waits for the exit; returns its code and how long it took.
fn terminate(d: &mut Daemon) -> (Option<i32>, Duration) {
    let started = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &d.0.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let code = d.0.wait().unwrap().code();
    (code, started.elapsed())
}

async fn sigterm_under_load_loses_and_doubles_nothing(db: TestDb) {
    let stack = mailstack();
    let (support, pw) = stack.user("term");
    let people: Vec<(String, String)> = (0..PEOPLE).map(|_| stack.user("rcpt")).collect();
    let mails: Vec<Vec<u8>> = (0..MAILS)
        .map(|i| {
            let from = &people[i % PEOPLE].0;
            format!(
                "From: <{from}>\r\nTo: {support}\r\nMessage-ID: <term-{i}@example.org>\r\nSubject: Request {i}\r\n\r\nBody {i}.\r\n"
            )
            .into_bytes()
        })
        .collect();
    stack.fill_maildir(&support, &mails);
    let _ = stack.session(&support, &pw).await.logout().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("postdesk.toml");
    let port = crate::helpers::free_port();
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n\
[scheduler]\nshutdown_grace = \"20s\"\n\
[outbound]\nper_address_per_hour = 100000\nper_ticket_per_hour = 100000\nretry_base = \"1s\"\nbatch = 40\n\
[[mailboxes]]\nname = \"term\"\naddress = \"{support}\"\nstart = \"backlog\"\nafter = \"seen\"\npoll_interval = \"1s\"\n\
imap = {{ host = \"127.0.0.1\", port = {}, tls = \"none\", username = \"{support}\", password = \"{pw}\" }}\n\
smtp = {{ host = \"127.0.0.1\", port = {}, tls = \"none\" }}\n",
            db.url, stack.imap_port, stack.smtp_port
        ),
    )
    .unwrap();
    crate::helpers::migrate_with(&config);
    let store = Store::connect(&db.url, 2, "TKT").await.unwrap();

    // Stop it with SIGTERM at seeded moments while the work is under way.
    let mut seed: u64 = 0x9E3779B97F4A7C15;
    for round in 0..4 {
        let mut d = start(&config);
        ready(port).await;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let after = Duration::from_millis(50 + seed % 700);
        tokio::time::sleep(after).await;
        let (code, took) = terminate(&mut d);
        let sent = store
            .outbox_list(Some("sent"), 100_000)
            .await
            .unwrap()
            .len();
        eprintln!(
            "round {round}: SIGTERM after {after:?}, exit {code:?} in {took:?}, {sent} sent so far"
        );
        assert_eq!(code, Some(0), "a graceful stop exits 0");
        assert!(took < Duration::from_secs(25), "within the grace period");
    }
    let mut d = start(&config);
    ready(port).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let sent = store
            .outbox_list(Some("sent"), 100_000)
            .await
            .unwrap()
            .len();
        if sent >= MAILS {
            break;
        }
        assert!(Instant::now() < deadline, "only {sent} receipts sent");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, _) = terminate(&mut d);
    assert_eq!(code, Some(0));

    // One ticket per mail, one receipt row per ticket, all sent.
    let (tickets, _) = store
        .list_tickets(
            &Default::default(),
            (postdesk::store::SortKey::Created, false),
            1,
            1,
        )
        .await
        .unwrap();
    assert_eq!(tickets, MAILS as i64);
    let rows = store.outbox_list(None, 100_000).await.unwrap();
    assert_eq!(
        rows.len(),
        MAILS,
        "{:?}",
        store.outbox_counts().await.unwrap()
    );
    assert!(rows.iter().all(|r| r.state == "sent"));
    // Every receipt arrived exactly once.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut ids = Vec::new();
        for (who, pw) in &people {
            for raw in stack.inbox(who, pw).await {
                let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
                ids.push(m.message_id().unwrap().to_string());
            }
        }
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "a receipt arrived twice");
        if ids.len() == MAILS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {MAILS} receipts arrived",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

crate::on_both_backends!(sigterm_under_load_loses_and_doubles_nothing);
