//! @mentions in internal notes (issue 34, item 5): the agents a note names
//! get a mail (unless they switched it off) and a mark in their console
//! until they open the ticket; the author, strangers' addresses and
//! unknown names get nothing.

use crate::console::{Agent, account};
use crate::helpers::{TestApp, TestDb, spawn_app};
use postdesk::domain::{Role, TicketRef};
use serde_json::json;

async fn mails_of(app: &TestApp, notice: &str) -> Vec<String> {
    let t = app
        .store
        .ticket_by_ref(&"TKT-1".parse::<TicketRef>().unwrap())
        .await
        .unwrap()
        .unwrap();
    let mut to: Vec<String> = app
        .store
        .outbox_for_ticket(t.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.notice == notice)
        .map(|o| o.recipient)
        .collect();
    to.sort();
    to
}

async fn a_note_tells_the_agents_it_mentions(db: TestDb) {
    let app = spawn_app(db).await;
    account(&app, "alan@example.test", Role::Agent, "alan-password-1").await;
    account(&app, "bea@example.test", Role::Agent, "bea-password-1").await;
    account(&app, "carl@example.test", Role::Agent, "carl-password-1").await;
    let r = app
        .http
        .post(app.url("/api/v1/tickets"))
        .bearer_auth(&app.token)
        .json(&json!({ "requester": { "email": "ann@example.org" }, "subject": "Printer", "body": "Help." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let alan = Agent::sign_in(&app, "alan@example.test", "alan-password-1")
        .await
        .0;
    let bea = Agent::sign_in(&app, "bea@example.test", "bea-password-1")
        .await
        .0;
    let page = alan.get("/console/tickets/TKT-1").await;
    let sent = alan
        .post_multipart(
            "/console/tickets/TKT-1/note",
            &[
                ("csrf", &page.csrf()),
                ("body", "@bea can you call her? cc @carl@example.test, @alan, @nobody; ann@example.org knows."),
            ],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(
        mails_of(&app, "mentioned").await,
        ["bea@example.test", "carl@example.test"],
        "the named agents, not the author, not an address in the text"
    );

    // Bea's console marks it until she opens the ticket.
    let q = bea.get("/console").await;
    assert!(
        q.body
            .contains(r#"Mentions <b class="count" aria-label="1 new">1</b>"#),
        "{}",
        q.body
    );
    let list = bea.get("/console/mentions").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("TKT-1 · Printer"));
    assert!(list.body.contains("@bea can you call her?"));
    assert!(list.body.contains(r#"<li class="unread">"#));
    let opened = bea.get("/console/tickets/TKT-1").await;
    assert!(
        !opened.body.contains(r#"class="count""#),
        "opening the ticket clears the mark"
    );
    let list = bea.get("/console/mentions").await;
    assert!(!list.body.contains(r#"<li class="unread">"#));
    assert!(
        list.body.contains("TKT-1 · Printer"),
        "still listed, as seen"
    );
    assert!(!alan.get("/console").await.body.contains(r#"class="count""#));

    // Bea switches mentions off: the worker is told; a note through the
    // API names her again all the same (the mark), the mail is hers to skip.
    let p = bea.get("/console/profile").await;
    assert!(p.body.contains("Someone @mentions me in a note"));
    bea.post(
        "/console/profile/notifications",
        &[
            ("csrf", &p.csrf()),
            ("on", "assigned"),
            ("on", "requester_reply"),
            ("on", "team_new_ticket"),
        ],
    )
    .await;
    let facts = app.store.recipient_facts("bea@example.test").await.unwrap();
    assert_eq!(facts.switched_off, vec!["mentioned".to_string()]);
    let r = app
        .http
        .post(app.url("/api/v1/tickets/TKT-1/notes"))
        .bearer_auth(&app.token)
        .json(&json!({ "body": "@Bea, and @alan: done." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(
        mails_of(&app, "mentioned").await,
        [
            "alan@example.test",
            "bea@example.test",
            "bea@example.test",
            "carl@example.test"
        ]
    );
    assert!(
        bea.get("/console")
            .await
            .body
            .contains(r#"aria-label="1 new""#)
    );
    // A reply (public) mentions nobody.
    let r = app
        .http
        .post(app.url("/api/v1/tickets/TKT-1/replies"))
        .bearer_auth(&app.token)
        .json(&json!({ "body": "Thanks @alan will call." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(mails_of(&app, "mentioned").await.len(), 4);
    app.stop().await;
}

crate::on_both_backends!(a_note_tells_the_agents_it_mentions);
