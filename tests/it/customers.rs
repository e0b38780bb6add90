//! The customer at a glance (issue 34, item 4): beside a ticket, the
//! requester's details and other tickets (open first), their organisation's
//! tickets (a set name, or their address's domain unless a public mail
//! provider's), and an agent-only note; the same through the API.

use crate::console::{Agent, account};
use crate::helpers::{TestApp, TestDb, spawn_app};
use postdesk::domain::Role;
use serde_json::{Value, json};

async fn api(app: &TestApp, method: &str, path: &str, body: Value) -> (u16, Value) {
    crate::helpers::call_api(app, &app.token, method, path, body).await
}

async fn open(app: &TestApp, email: &str, name: &str, subject: &str) {
    let body = json!({ "requester": { "email": email, "name": name }, "subject": subject, "body": "Help." });
    assert_eq!(api(app, "POST", "/api/v1/tickets", body).await.0, 201);
}

async fn the_customer_beside_the_ticket(db: TestDb) {
    let app = spawn_app(db).await;
    account(&app, "alan@example.test", Role::Agent, "alan-password-1").await;
    open(&app, "ann@acme.example", "Ann Lee", "Printer").await; // TKT-1
    open(&app, "ann@acme.example", "Ann Lee", "Old invoice").await; // TKT-2
    open(&app, "bob@acme.example", "Bob Ray", "Scanner").await; // TKT-3
    open(&app, "ann@acme.example", "Ann Lee", "Laptop").await; // TKT-4
    open(&app, "zed@gmail.com", "Zed", "Mouse").await; // TKT-5
    let (status, _) = api(
        &app,
        "PATCH",
        "/api/v1/tickets/TKT-2",
        json!({ "status": "resolved" }),
    )
    .await;
    assert_eq!(status, 200);

    let alan = Agent::sign_in(&app, "alan@example.test", "alan-password-1")
        .await
        .0;
    let page = alan.get("/console/tickets/TKT-1").await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    assert!(
        body.contains(r#"<h2 id="customer-h">Ann Lee</h2>"#),
        "{body}"
    );
    assert!(body.contains("3 ticket(s)"));
    // Her other tickets, open first (TKT-4 before the resolved TKT-2), not this one.
    let theirs = body
        .split("Their other tickets")
        .nth(1)
        .expect("her tickets");
    let (four, two) = (theirs.find("TKT-4").unwrap(), theirs.find("TKT-2").unwrap());
    assert!(four < two, "open first");
    assert!(!theirs[..two].contains("TKT-1<"), "not the ticket shown");
    // Her organisation by domain: Bob's ticket too.
    assert!(body.contains("<h3>acme.example</h3>"));
    assert!(body.contains("4 ticket(s) from addresses at this domain"));
    assert!(body.contains(r#"<a href="/console/tickets/TKT-3">TKT-3</a> Scanner <span class="meta">bob@acme.example</span>"#));
    // A public mail provider's domain is nobody's organisation.
    let zed = alan.get("/console/tickets/TKT-5").await;
    assert!(!zed.body.contains("gmail.com</h3>"));
    assert!(!zed.body.contains("Their other tickets"));

    // The agents' note, organisation and phone, saved from the ticket.
    let id = body
        .split("/console/requesters/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let saved = alan
        .post(
            &format!("/console/requesters/{id}"),
            &[
                ("csrf", &page.csrf()),
                ("agent_note", "Prefers phone calls; VIP since 2019."),
                ("organisation", "Acme Ltd"),
                ("phone", "+44 20 7946 0000"),
                ("back", "TKT-1"),
            ],
        )
        .await;
    assert_eq!(
        (saved.status, saved.location.as_str()),
        (303, "/console/tickets/TKT-1#customer")
    );
    let page = alan.get("/console/tickets/TKT-1").await;
    assert!(
        page.body
            .contains(r#"<p class="agent-note">Prefers phone calls; VIP since 2019.</p>"#)
    );
    assert!(page.body.contains(r#"<a href="tel:+44 20 7946 0000">"#));
    assert!(
        page.body.contains("<h3>Acme Ltd</h3>"),
        "a set name wins over the domain"
    );
    assert!(
        !page.body.contains("TKT-3</a> Scanner"),
        "Bob is not in Acme Ltd (yet)"
    );
    let long = "x".repeat(5_001);
    let refused = alan
        .post(
            &format!("/console/requesters/{id}"),
            &[
                ("csrf", &page.csrf()),
                ("agent_note", &long),
                ("back", "TKT-1"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400);

    // The API: the same glance, and a PATCH of what it names.
    let (status, ann) = api(
        &app,
        "GET",
        "/api/v1/requesters/Ann@Acme.example",
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{ann}");
    assert_eq!(ann["agent_note"], "Prefers phone calls; VIP since 2019.");
    assert_eq!(ann["tickets_total"], 3);
    assert_eq!(ann["tickets"][0]["reference"], "TKT-4");
    assert_eq!(ann["organisation_tickets"]["name"], "Acme Ltd");
    let (status, bob) = api(
        &app,
        "PATCH",
        "/api/v1/requesters/bob@acme.example",
        json!({ "organisation": "acme ltd" }),
    )
    .await;
    assert_eq!(status, 200, "{bob}");
    assert_eq!(bob["agent_note"], "");
    assert_eq!(
        bob["organisation_tickets"]["tickets"][0]["requester"],
        "ann@acme.example"
    );
    assert_eq!(
        api(
            &app,
            "PATCH",
            "/api/v1/requesters/bob@acme.example",
            json!({ "mood": "x" })
        )
        .await
        .0,
        400
    );
    assert_eq!(
        api(
            &app,
            "GET",
            "/api/v1/requesters/nobody@acme.example",
            Value::Null
        )
        .await
        .0,
        404
    );
    app.stop().await;
}

crate::on_both_backends!(the_customer_beside_the_ticket);
