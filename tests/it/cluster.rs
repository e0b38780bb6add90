//! Several daemons on one PostgreSQL (issue 7): mailbox leases spread the
//! mailboxes over the live daemons, and when a holder is killed with
//! SIGKILL another daemon takes its mailboxes over. The takeover time is
//! printed (a measurement for the notes, never an assertion).

use crate::helpers::{
    Daemon, TestDb, eventually, free_port, mailstack, migrate_with, start_daemon,
};
use postdesk::store::Store;
use postdesk::store::tickets::{SortKey, TicketFilter};
use std::time::Instant;

/// The lease time of the test daemons: takeover should follow within about
/// this plus a third of it.
const LEASE: &str = "3s";

fn config(
    dir: &std::path::Path,
    db: &str,
    name: &str,
    mailboxes: &[(String, String)],
) -> std::path::PathBuf {
    let stack = mailstack();
    let mut text = format!(
        "[database]\nurl = \"{db}\"\n[cluster]\nname = \"{name}\"\nlease_ttl = \"{LEASE}\"\n\
         [http]\nlisten = \"127.0.0.1:{}\"\n[outbound]\nenabled = false\n",
        free_port()
    );
    for (i, (user, pw)) in mailboxes.iter().enumerate() {
        text.push_str(&format!(
            "[[mailboxes]]\nname = \"box{i}\"\naddress = \"{user}\"\nstart = \"backlog\"\nafter = \"seen\"\npoll_interval = \"1s\"\n\
             imap = {{ host = \"127.0.0.1\", port = {}, tls = \"none\", username = \"{user}\", password = \"{pw}\" }}\n",
            stack.imap_port
        ));
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Holder of each mailbox, by name.
async fn holders(store: &Store) -> Vec<(String, Option<String>)> {
    store
        .status(postdesk::store::now_millis())
        .await
        .unwrap()
        .mailboxes
        .into_iter()
        .map(|m| (m.name, m.holder))
        .collect()
}

async fn count(store: &Store, holder: &str) -> usize {
    holders(store)
        .await
        .iter()
        .filter(|(_, h)| h.as_deref() == Some(holder))
        .count()
}

async fn tickets(store: &Store) -> i64 {
    store
        .list_tickets(&TicketFilter::default(), (SortKey::Created, false), 1, 10)
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn leases_spread_mailboxes_and_a_killed_holder_is_taken_over() {
    let stack = mailstack();
    let db = TestDb::postgres().await;
    let boxes: Vec<(String, String)> = (0..4).map(|_| stack.user("lease")).collect();
    let dir = tempfile::tempdir().unwrap();
    let one = config(dir.path(), &db.url, "d1", &boxes);
    let two = config(dir.path(), &db.url, "d2", &boxes);
    migrate_with(&one);
    let store = Store::connect(&db.url, 2, "TKT").await.unwrap();

    // One daemon holds every mailbox.
    let first: Daemon = start_daemon(&one);
    eventually(30, "d1 holds all four mailboxes", || async {
        count(&store, "d1").await == 4
    })
    .await;

    // A second daemon joins: two each.
    let mut second: Daemon = start_daemon(&two);
    eventually(30, "the mailboxes are shared two and two", || async {
        count(&store, "d1").await == 2 && count(&store, "d2").await == 2
    })
    .await;
    let view = store.status(postdesk::store::now_millis()).await.unwrap();
    assert_eq!(view.daemons.len(), 2, "{view:?}");

    // Kill d2 without warning; mail arrives in one of its mailboxes.
    let held_by_two: Vec<String> = holders(&store)
        .await
        .into_iter()
        .filter(|(_, h)| h.as_deref() == Some("d2"))
        .map(|(n, _)| n)
        .collect();
    let index: usize = held_by_two[0].trim_start_matches("box").parse().unwrap();
    second.0.kill().unwrap();
    second.0.wait().unwrap();
    let killed = Instant::now();
    let (user, pw) = &boxes[index];
    let mut imap = stack.session(user, pw).await;
    imap.append(
        "INBOX",
        None,
        None,
        format!("From: a@example.org\r\nTo: {user}\r\nSubject: After the kill\r\nMessage-ID: <kill-{index}@example.org>\r\n\r\nHello.\r\n"),
    )
    .await
    .unwrap();
    let _ = imap.logout().await;
    eventually(
        60,
        "d1 takes the mailbox over and the mail becomes a ticket",
        || async { tickets(&store).await == 1 },
    )
    .await;
    let takeover = killed.elapsed();
    println!("takeover: killed holder → next mail a ticket in {takeover:?} (lease_ttl {LEASE})");
    eventually(30, "d1 holds all four again", || async {
        count(&store, "d1").await == 4
    })
    .await;
    let view = store.status(postdesk::store::now_millis()).await.unwrap();
    assert_eq!(
        view.daemons.len(),
        1,
        "the dead daemon's lease expired: {view:?}"
    );
    drop(first);
}
