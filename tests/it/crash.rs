//! Nothing lost, nothing doubled: the real daemon ingests a mailbox while it
//! is killed with SIGKILL at (seeded) random moments and restarted; at the
//! end every mail is on exactly one ticket message (or recorded, or in
//! quarantine) and every receipt was queued exactly once.

use crate::helpers::start_daemon as start;
use crate::helpers::{TestDb, mailstack};
use postdesk::store::Store;
use std::process::Command;
use std::time::{Duration, Instant};

const MAILS: usize = 1200;

fn junk(i: usize) -> bool {
    i % 97 == 13
}
fn thread(i: usize) -> Option<usize> {
    (i > 20 && i.is_multiple_of(3)).then(|| i - 7)
}
fn auto(i: usize) -> bool {
    i % 50 == 7
}

fn mail(i: usize, support: &str) -> Vec<u8> {
    if junk(i) {
        return b"\x00\x01\x02 this is not a mail".to_vec();
    }
    let (thread, auto) = (thread(i), auto(i));
    let mut m = format!(
        "From: Person {p} <person{p}@example.org>\r\nTo: {support}\r\nMessage-ID: <crash-{i}@example.org>\r\nSubject: {}Request {}\r\n",
        if thread.is_some() { "Re: " } else { "" },
        thread.unwrap_or(i),
        p = thread.unwrap_or(i) % 150,
    );
    if let Some(t) = thread {
        m.push_str(&format!("In-Reply-To: <crash-{t}@example.org>\r\n"));
    }
    if auto {
        m.push_str("Auto-Submitted: auto-replied\r\n");
    }
    m.push_str(&format!("\r\nBody of mail {i}.\r\n"));
    m.into_bytes()
}

async fn killed_and_restarted_daemons_lose_and_double_nothing(db: TestDb) {
    let stack = mailstack();
    let (support, pw) = stack.user("crash");
    let mails: Vec<Vec<u8>> = (0..MAILS).map(|i| mail(i, &support)).collect();
    stack.fill_maildir(&support, &mails);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("postdesk.toml");
    let port = crate::helpers::free_port();
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n[[mailboxes]]\nname = \"crash\"\naddress = \"{support}\"\n\
start = \"backlog\"\nafter = \"move:Done\"\npoll_interval = \"1s\"\n\
imap = {{ host = \"127.0.0.1\", port = {}, tls = \"none\", username = \"{support}\", password = \"{pw}\" }}\n",
            db.url, stack.imap_port
        ),
    )
    .unwrap();
    {
        let mut imap = stack.session(&support, &pw).await;
        imap.create("Done").await.unwrap();
    }
    // Migrate first, so that every kill lands in ingestion rather than start-up.
    crate::helpers::migrate_with(&config);
    // Kill it at seeded random moments while it fetches, stores, processes and moves.
    let mut seed: u64 = 0x2545F4914F6CDD1D;
    for round in 0..5 {
        let mut child = start(&config);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let after = Duration::from_millis(150 + seed % 900);
        std::thread::sleep(after);
        child.0.kill().unwrap(); // SIGKILL
        child.0.wait().unwrap();
        eprintln!("round {round}: killed after {after:?}");
    }
    let mut child = start(&config);
    let store = Store::connect(&db.url, 2, "TKT").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while crate::helpers::settled_mails(&store).await < MAILS as i64 {
        assert!(
            Instant::now() < deadline,
            "the daemon did not finish after its restarts"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Post-processing (the moves to Done) follows the stores: wait for it
    // rather than for a fixed time (a loaded machine took longer than 1.5 s
    // once), then stop cleanly. The server's final state is asserted below.
    let mut watch = stack.session(&support, &pw).await;
    while watch.select("INBOX").await.unwrap().exists > 0 {
        assert!(
            Instant::now() < deadline,
            "stored mail was never moved out of INBOX"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = watch.logout().await;
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.0.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(child.0.wait().unwrap().code(), Some(0));

    // Exactly one stored copy of each UID, each settled.
    let counts = store.inbound_counts().await.unwrap();
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    assert_eq!(total, MAILS as i64, "stored raw mails: {counts:?}");
    let junk_count = (0..MAILS).filter(|i| junk(*i)).count() as i64;
    let quarantined = counts
        .iter()
        .find(|(s, _)| s == "quarantined")
        .map(|(_, n)| *n)
        .unwrap_or(0);
    assert_eq!(quarantined, junk_count);
    // Every real mail is exactly one message or system record (the unique
    // index forbids two; none may be missing), bar auto-replies to nothing.
    let sort = (postdesk::store::SortKey::Created, false);
    let (total_tickets, _) = store
        .list_tickets(&Default::default(), sort, 1, 1)
        .await
        .unwrap();
    let (mut found, mut receipts, mut page) = (0, 0, 1);
    loop {
        let (_, rows) = store
            .list_tickets(&Default::default(), sort, page, 500)
            .await
            .unwrap();
        if rows.is_empty() {
            break;
        }
        for t in &rows {
            let thread = store.messages(t.id, true).await.unwrap();
            found += thread
                .iter()
                .filter(|m| {
                    m.mail_message_id
                        .as_deref()
                        .is_some_and(|id| id.starts_with("<crash-"))
                })
                .count();
            receipts += store
                .outbox_for_ticket(t.id)
                .await
                .unwrap()
                .iter()
                .filter(|o| o.notice == "receipt")
                .count() as i64;
        }
        page += 1;
    }
    let expected = (0..MAILS)
        .filter(|i| !(junk(*i) || (auto(*i) && thread(*i).is_none())))
        .count();
    assert_eq!(
        found, expected,
        "every mail is exactly one message or system record"
    );
    assert_eq!(receipts, total_tickets, "one receipt per ticket, never two");
    // And the server holds every mail in Done, none left behind in INBOX.
    let mut imap = stack.session(&support, &pw).await;
    let inbox = imap.select("INBOX").await.unwrap().exists;
    let done = imap.select("Done").await.unwrap().exists;
    assert_eq!((inbox, done), (0, MAILS as u32));
}

crate::on_both_backends!(killed_and_restarted_daemons_lose_and_double_nothing);
