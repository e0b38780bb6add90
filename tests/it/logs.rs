//! One mail followed through the real daemon's JSON log by its ids: the
//! poller names the stored row of an IMAP UID (`inbound`), every line of
//! its processing carries that id in the `mail` span and names the ticket,
//! the notification it queued names the ticket, and the outbox's send
//! names the ticket and the Message-ID the receipt arrives with.

use crate::helpers::{
    TestDb, eventually, free_port, mailstack, migrate_with, start_daemon_logging,
};
use serde_json::Value;

/// The log's events, one JSON object a line (other lines are not events).
fn events(log: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

fn message(e: &Value) -> &str {
    e["fields"]["message"].as_str().unwrap_or("")
}

/// The spans an event was logged in, by name.
fn span<'a>(e: &'a Value, name: &str) -> Option<&'a Value> {
    e["spans"]
        .as_array()?
        .iter()
        .find(|s| s["name"].as_str() == Some(name))
}

async fn one_mail_is_followed_from_fetch_to_receipt(db: TestDb) {
    let stack = mailstack();
    let (support, pw) = stack.user("logged");
    let (ann, ann_pw) = stack.user("ann");
    stack.fill_maildir(
        &support,
        &[format!(
            "From: Ann <{ann}>\r\nTo: {support}\r\nSubject: Printer on fire\r\n\
             Message-ID: <followed@example.org>\r\n\r\nIt smokes.\r\n"
        )
        .into_bytes()],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("postdesk.toml");
    let port = free_port();
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n[http]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
             [log]\nformat = \"json\"\n\
             [[mailboxes]]\nname = \"logged\"\naddress = \"{support}\"\nstart = \"backlog\"\nafter = \"seen\"\n\
             imap = {{ host = \"127.0.0.1\", port = {}, tls = \"none\", username = \"{support}\", password = \"{pw}\" }}\n\
             smtp = {{ host = \"127.0.0.1\", port = {}, tls = \"none\" }}\n",
            db.url, stack.imap_port, stack.smtp_port
        ),
    )
    .unwrap();
    migrate_with(&config);
    let log = dir.path().join("postdesk.log");
    let daemon = start_daemon_logging(
        &config,
        "postdesk=debug",
        std::fs::File::create(&log).unwrap(),
    );
    eventually(60, "the receipt reaches the requester", || async {
        !mailstack().inbox(&ann, &ann_pw).await.is_empty()
    })
    .await;
    let receipt = mailstack().inbox(&ann, &ann_pw).await.remove(0);
    let receipt_id = mail_parser::MessageParser::default()
        .parse(&receipt)
        .unwrap()
        .message_id()
        .unwrap()
        .to_string();
    // The send is logged when its outcome is recorded, just after the
    // server took the mail.
    eventually(30, "the send is logged", || async {
        events(&log)
            .iter()
            .any(|e| message(e) == "notification sent")
    })
    .await;
    drop(daemon);
    let events = events(&log);

    // Fetched: the UID's stored row.
    let stored: Vec<&Value> = events
        .iter()
        .filter(|e| message(e) == "mail stored")
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["fields"]["uid"], 1);
    let inbound = stored[0]["fields"]["inbound"].as_i64().unwrap();

    // Processed: in its batch's span and its own, naming its ticket.
    let processed = events
        .iter()
        .find(|e| message(e) == "mail processed" && e["fields"]["inbound"] == inbound)
        .expect("the processing of the stored mail is logged");
    let batch = span(processed, "batch").expect("in a batch span");
    assert!(batch["first"].as_i64().unwrap() <= inbound);
    assert!(batch["last"].as_i64().unwrap() >= inbound);
    let ticket = processed["fields"]["ticket"]
        .as_str()
        .and_then(|t| {
            t.strip_prefix("Some(")?
                .strip_suffix(')')?
                .parse::<i64>()
                .ok()
        })
        .expect("the processed line names the ticket");

    // Queued, inside the mail's span: its receipt, for that ticket.
    let queued = events
        .iter()
        .find(|e| {
            message(e) == "notification queued"
                && e["fields"]["notice"] == "receipt"
                && span(e, "mail").is_some_and(|m| m["inbound"] == inbound)
        })
        .expect("the receipt is queued inside the mail's span");
    assert_eq!(queued["fields"]["ticket"], ticket);

    // Sent: the outbox row, the same ticket, the Message-ID that arrived.
    let sent = events
        .iter()
        .find(|e| message(e) == "notification sent")
        .unwrap();
    assert_eq!(sent["fields"]["ticket"], format!("Some({ticket})"));
    assert!(sent["fields"]["outbox"].as_i64().is_some(), "{sent}");
    assert_eq!(
        sent["fields"]["message_id"]
            .as_str()
            .unwrap()
            .trim_matches(['<', '>']),
        receipt_id.trim_matches(['<', '>'])
    );
}

crate::on_both_backends!(one_mail_is_followed_from_fetch_to_receipt);
