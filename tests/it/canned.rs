//! Canned replies and macros (issue 34, item 1) and replies stopped by a
//! message their writer has not seen (item 2, the server's part), through
//! the console's forms and the API, on both backends.

use crate::console::{Agent, Page, account, new_token};
use crate::helpers::{TestApp, TestDb, spawn_app};
use postdesk::domain::{MessageKind, Priority, Role, Status, TicketRef};
use postdesk::store::Ticket;
use serde_json::{Value, json};

/// The value of the first hidden or text input named `name`.
fn input(page: &Page, name: &str) -> String {
    let re = regex::Regex::new(&format!(r#"name="{name}"[^>]*value="([^"]*)""#)).unwrap();
    re.captures(&page.body)
        .unwrap_or_else(|| panic!("no input {name} in {}", page.body))[1]
        .to_string()
}

/// The reply box's text as the page shows it.
fn reply_box(page: &Page) -> String {
    let re =
        regex::Regex::new(r#"(?s)<textarea id="reply" name="body"[^>]*>(.*?)</textarea>"#).unwrap();
    re.captures(&page.body).expect("a reply box")[1].to_string()
}

async fn ticket(app: &TestApp, reference: &str) -> Ticket {
    let r: TicketRef = reference.parse().unwrap();
    app.store.ticket_by_ref(&r).await.unwrap().unwrap()
}

async fn api(app: &TestApp, token: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    crate::helpers::call_api(app, token, method, path, body).await
}

/// The ticket TKT-1's newest message id, as the API shows it.
async fn last_message_id(app: &TestApp, token: &str) -> i64 {
    let (_, shown) = api(app, token, "GET", "/api/v1/tickets/TKT-1", Value::Null).await;
    shown["last_message_id"].as_i64().unwrap()
}

/// A reply to TKT-1 through the API by one who has seen up to `last`.
async fn reply_seen(app: &TestApp, token: &str, body: &str, last: i64) -> (u16, Value) {
    let body = json!({ "body": body, "last_message_id": last });
    api(app, token, "POST", "/api/v1/tickets/TKT-1/replies", body).await
}

/// The id of the canned response called `title` in an API list.
fn id_of(list: &Value, title: &str) -> i64 {
    list["canned_responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["title"] == title)
        .unwrap_or_else(|| panic!("{title} in {list}"))["id"]
        .as_i64()
        .unwrap()
}

async fn setup(db: TestDb) -> (TestApp, Agent, Agent, Agent) {
    let app = spawn_app(db).await;
    account(&app, "ada@example.test", Role::Admin, "ada-password-1").await;
    account(&app, "alan@example.test", Role::Agent, "alan-password-1").await;
    account(&app, "bea@example.test", Role::Agent, "bea-password-1").await;
    let (status, _) = api(
        &app,
        &app.token.clone(),
        "POST",
        "/api/v1/tickets",
        json!({ "requester": { "email": "ann@example.org", "name": "Ann Lee" },
                "subject": "Printer on fire", "body": "It smokes.", "channel": "email" }),
    )
    .await;
    assert_eq!(status, 201);
    let ada = Agent::sign_in(&app, "ada@example.test", "ada-password-1")
        .await
        .0;
    let alan = Agent::sign_in(&app, "alan@example.test", "alan-password-1")
        .await
        .0;
    let bea = Agent::sign_in(&app, "bea@example.test", "bea-password-1")
        .await
        .0;
    (app, ada, alan, bea)
}

/// Alan's two canned responses, written in the console: "Thanks", shared,
/// and the personal macro "Waiting on the model number" (pending, high,
/// assigned to him, two tags). Returns their ids: (shared, personal).
async fn alans_canned(app: &TestApp, alan: &Agent) -> (i64, i64) {
    let csrf = alan.get("/console/canned").await.csrf();
    let thanks = "Hi {{requester.first_name}}, thanks for writing about {{ ticket.reference }}.\n— {{agent.name}}";
    let r = alan
        .post(
            "/console/canned",
            &[
                ("csrf", &csrf),
                ("title", "Thanks"),
                ("body", thanks),
                ("shared", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = alan
        .post(
            "/console/canned",
            &[
                ("csrf", &csrf),
                ("title", "Waiting on the model number"),
                (
                    "body",
                    "Could you send us the printer's model number, {{requester.first_name}}?",
                ),
                ("status", "pending"),
                ("priority", "high"),
                ("assignee", "me"),
                ("tags", "Needs info, hardware"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);

    let token = new_token(alan).await;
    let (_, mine) = api(app, &token, "GET", "/api/v1/canned-responses", Value::Null).await;
    (
        id_of(&mine, "Thanks"),
        id_of(&mine, "Waiting on the model number"),
    )
}

/// Written in the console, shared or personal; a placeholder nobody fills
/// is refused with the form kept; personal ones are their owner's alone,
/// a shared one is changed by its author or an admin.
async fn canned_replies_are_written_and_owned(db: TestDb) {
    let (app, ada, alan, bea) = setup(db).await;
    let empty = alan.get("/console/canned").await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(empty.body.contains("None yet."));
    let csrf = empty.csrf();
    let (shared, personal) = alans_canned(&app, &alan).await;
    // A placeholder nobody fills is refused, the form kept as typed.
    let r = alan
        .post(
            "/console/canned",
            &[
                ("csrf", &csrf),
                ("title", "Phone"),
                ("body", "Call {{requester.phone}}"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("Unknown placeholder {{requester.phone}}"),
        "{}",
        r.body
    );
    assert!(r.body.contains("value=\"Phone\""));
    // Personal ones are their owner's alone; a shared one is changed by
    // its author or an admin.
    let list = alan.get("/console/canned").await;
    assert!(list.body.contains("Waiting on the model number"));
    assert!(
        list.body.contains(
            "status pending · priority high · assign to me · tags + needs-info, hardware"
        )
    );
    let theirs = bea.get("/console/canned").await;
    assert!(theirs.body.contains("Thanks"));
    assert!(!theirs.body.contains("Waiting on the model number"));
    assert_eq!(
        bea.get(&format!("/console/canned/{personal}")).await.status,
        404
    );
    let forbidden = bea
        .post(
            &format!("/console/canned/{shared}"),
            &[
                ("csrf", &theirs.csrf()),
                ("title", "Mine now"),
                ("body", "x"),
                ("shared", "yes"),
            ],
        )
        .await;
    assert_eq!(forbidden.status, 403);
    let edit = ada.get(&format!("/console/canned/{shared}")).await;
    assert_eq!(edit.status, 200);
    assert!(edit.body.contains("Change “Thanks”"));

    app.stop().await;
}

/// The reply box lists them filled for the ticket and the agent; without
/// script "Insert" adds the picked text to what was typed; a macro's
/// changes go with the reply in one transaction.
async fn a_macro_goes_with_the_reply(db: TestDb) {
    let (app, _, alan, _) = setup(db).await;
    let (_, personal) = alans_canned(&app, &alan).await;
    // The ticket page lists both, filled for this ticket and this agent.
    let page = alan.get("/console/tickets/TKT-1").await;
    assert!(
        page.body.contains(r#"<option value="Thanks" data-id="#),
        "{}",
        page.body
    );
    assert!(page.body.contains(
        "data-text=\"Hi Ann, thanks for writing about TKT-1.\n— Agent alan@example.test\""
    ));
    // Without script: "Insert" adds the picked text to what was typed.
    let seen = input(&page, "seen");
    let inserted = alan
        .post_multipart(
            "/console/tickets/TKT-1/canned",
            &[
                ("csrf", &page.csrf()),
                ("seen", &seen),
                ("canned", "model number"),
                ("body", "Hello."),
                ("macro", ""),
            ],
        )
        .await;
    assert_eq!(inserted.status, 200, "{}", inserted.body);
    assert_eq!(
        reply_box(&inserted),
        "Hello.\n\nCould you send us the printer&#x27;s model number, Ann?"
    );
    assert_eq!(input(&inserted, "macro"), personal.to_string());
    assert_eq!(
        input(&inserted, "seen"),
        seen,
        "the page keeps what was seen"
    );
    assert!(
        inserted
            .body
            .contains("Sending also applies: <span id=\"macro-changes\">status pending")
    );
    let sent = alan
        .post_multipart(
            "/console/tickets/TKT-1/reply",
            &[
                ("csrf", &page.csrf()),
                ("seen", &seen),
                ("macro", &personal.to_string()),
                (
                    "body",
                    "Hello.\n\nCould you send us the printer's model number, Ann?",
                ),
                ("status", ""),
            ],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let t = ticket(&app, "TKT-1").await;
    assert_eq!(t.status, Status::Pending);
    assert_eq!(t.priority, Priority::High);
    assert_eq!(
        t.assignee.as_ref().map(|u| u.email.as_str()),
        Some("alan@example.test")
    );
    assert_eq!(
        t.tags,
        vec!["hardware".to_string(), "needs-info".to_string()]
    );
    let thread = app.store.messages(t.id, true).await.unwrap();
    let replies: Vec<_> = thread
        .iter()
        .filter(|m| m.kind == MessageKind::Reply)
        .collect();
    assert_eq!(replies.len(), 2);
    assert!(replies[1].body_text.ends_with("model number, Ann?"));
    let system: Vec<&str> = thread
        .iter()
        .filter(|m| m.kind == MessageKind::System)
        .map(|m| m.body_text.as_str())
        .collect();
    for said in [
        "to Pending",
        "Priority changed from normal to high",
        "Assigned to alan@example.test",
        "Tags set to hardware, needs-info",
    ] {
        assert!(
            system.iter().any(|s| s.contains(said)),
            "{said} in {system:?}"
        );
    }

    app.stop().await;
}

/// A macro with no text changes fields alone, from the ticket's side;
/// another agent's personal macro cannot be applied by guessing its id.
async fn a_macro_without_text_changes_fields_alone(db: TestDb) {
    let (app, _, alan, bea) = setup(db).await;
    let (_, personal) = alans_canned(&app, &alan).await;
    let token_bea = new_token(&bea).await;
    // A macro with no text changes fields alone, from the ticket's side.
    let (status, solved) = api(
        &app,
        &token_bea,
        "POST",
        "/api/v1/canned-responses",
        json!({ "title": "Solved", "status": "resolved", "add_tags": ["solved"], "shared": true }),
    )
    .await;
    assert_eq!(status, 201, "{solved}");
    let page = alan.get("/console/tickets/TKT-1").await;
    assert!(page.body.contains("Apply a macro"));
    let r = alan
        .post(
            "/console/tickets/TKT-1/macro",
            &[
                ("csrf", &page.csrf()),
                ("macro", &solved["id"].to_string()),
                ("seen", &input(&page, "seen")),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let t = ticket(&app, "TKT-1").await;
    assert_eq!(t.status, Status::Resolved);
    assert!(t.tags.contains(&"solved".to_string()));
    assert_eq!(
        app.store
            .messages(t.id, true)
            .await
            .unwrap()
            .iter()
            .filter(|m| m.kind == MessageKind::Reply)
            .count(),
        1,
        "no text, no reply: only the requester's first message"
    );
    // Another agent's personal macro cannot be applied by guessing its id.
    let r = bea
        .post(
            "/console/tickets/TKT-1/macro",
            &[("csrf", &page.csrf()), ("macro", &personal.to_string())],
        )
        .await;
    assert_ne!(r.status, 303);
    app.stop().await;
}

/// The API's canned responses: personal ones visible to their owner only,
/// texts filled for a ticket, changed by their author, applied as macros.
async fn canned_responses_through_the_api(db: TestDb) {
    let (app, _ada, alan, bea) = setup(db).await;
    let alan_token = new_token(&alan).await;
    let bea_token = new_token(&bea).await;
    let (status, body) = api(
        &app,
        &alan_token,
        "POST",
        "/api/v1/canned-responses",
        json!({ "title": "Escalate", "body": "{{agent.first_name}} here: passed to our engineers, {{requester.name}}.",
                "priority": "urgent", "category": "Technical", "assignee": "bea@example.test" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["shared"], false);
    assert_eq!(body["macro"], true);
    let escalate = body["id"].as_i64().unwrap();
    for (bad, why) in [
        (json!({ "title": "", "body": "x" }), "title"),
        (
            json!({ "title": "x", "body": "{{ticket.secret}}" }),
            "Unknown placeholder",
        ),
        (json!({ "title": "x", "category": "Nope" }), "Category"),
        (
            json!({ "title": "x", "assignee": "ghost@example.test" }),
            "No active agent",
        ),
        (json!({ "title": "x" }), "Write a text"),
        (
            json!({ "title": "x", "body": "y", "colour": "red" }),
            "unknown field",
        ),
    ] {
        let (status, body) = api(&app, &alan_token, "POST", "/api/v1/canned-responses", bad).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(why),
            "{why}: {body}"
        );
    }
    let (_, list) = api(
        &app,
        &bea_token,
        "GET",
        "/api/v1/canned-responses",
        Value::Null,
    )
    .await;
    assert!(
        list["canned_responses"].as_array().unwrap().is_empty(),
        "{list}"
    );
    let path = format!("/api/v1/canned-responses/{escalate}");
    assert_eq!(
        api(&app, &bea_token, "GET", &path, Value::Null).await.0,
        404
    );
    assert_eq!(
        api(&app, &bea_token, "DELETE", &path, Value::Null).await.0,
        404
    );
    let (_, filled) = api(
        &app,
        &alan_token,
        "GET",
        "/api/v1/canned-responses?ticket=TKT-1",
        Value::Null,
    )
    .await;
    assert_eq!(
        filled["canned_responses"][0]["filled"],
        "Agent here: passed to our engineers, Ann Lee."
    );
    // Shared, then changed by someone else: refused; by its author: done.
    let (status, body) = api(&app, &alan_token, "PATCH", &path, json!({ "shared": true })).await;
    assert_eq!((status, body["shared"].clone()), (200, json!(true)));
    assert_eq!(
        api(&app, &bea_token, "PATCH", &path, json!({ "title": "Mine" }))
            .await
            .0,
        403
    );
    let (status, body) = api(
        &app,
        &alan_token,
        "PATCH",
        &path,
        json!({ "title": "Escalate to engineering" }),
    )
    .await;
    assert_eq!(
        (status, body["title"].clone()),
        (200, json!("Escalate to engineering"))
    );
    assert_eq!(
        body["changes"]["priority"], "urgent",
        "a PATCH keeps what it does not name"
    );

    // Applied by Bea: her reply and the changes, one transaction.
    let (status, body) = api(
        &app,
        &bea_token,
        "POST",
        &format!("/api/v1/tickets/TKT-1/macros/{escalate}"),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], 3);
    let t = ticket(&app, "TKT-1").await;
    assert_eq!(t.priority, Priority::Urgent);
    assert_eq!(t.category, "Technical");
    assert_eq!(
        t.assignee.as_ref().map(|u| u.email.as_str()),
        Some("bea@example.test")
    );
    let thread = app.store.messages(t.id, false).await.unwrap();
    let reply = thread
        .iter()
        .rev()
        .find(|m| m.kind == MessageKind::Reply)
        .unwrap();
    // Filled for the agent who applied it (Bea's name is "Agent bea@…").
    assert_eq!(
        reply.body_text,
        "Agent here: passed to our engineers, Ann Lee."
    );
    assert_eq!(reply.author_email.as_deref(), Some("bea@example.test"));
    // A macro one cannot see is not found; a deleted one is gone.
    assert_eq!(
        api(&app, &alan_token, "DELETE", &path, Value::Null).await.0,
        204
    );
    assert_eq!(
        api(&app, &alan_token, "GET", &path, Value::Null).await.0,
        404
    );
    app.stop().await;
}

/// A reply written while someone else's message arrived is not sent: the
/// console shows the page again with the new message named and the reply
/// kept ("Send anyway" sends it); the API answers 409 to a stale
/// `last_message_id`.
async fn a_reply_over_an_unseen_message_is_stopped(db: TestDb) {
    let (app, _ada, alan, bea) = setup(db).await;
    let bea_token = new_token(&bea).await;
    let alan_token = new_token(&alan).await;
    let page = alan.get("/console/tickets/TKT-1").await;
    let seen = input(&page, "seen");
    let (status, _) = api(
        &app,
        &bea_token,
        "POST",
        "/api/v1/tickets/TKT-1/replies",
        json!({ "body": "Bea answered first." }),
    )
    .await;
    assert_eq!(status, 201);
    let t = ticket(&app, "TKT-1").await;
    let before = app.store.messages(t.id, true).await.unwrap().len();
    let draft = "Alan's answer, written blind.";
    let stopped = alan
        .post_multipart(
            "/console/tickets/TKT-1/reply",
            &[
                ("csrf", &page.csrf()),
                ("seen", &seen),
                ("body", draft),
                ("status", "pending"),
                ("macro", ""),
            ],
        )
        .await;
    assert_eq!(stopped.status, 409, "{}", stopped.body);
    assert!(
        stopped
            .body
            .contains("A new message arrived while you were writing")
    );
    assert!(
        stopped
            .body
            .contains("bea@example.test</a> wrote after you opened this ticket")
    );
    assert_eq!(reply_box(&stopped), "Alan&#x27;s answer, written blind.");
    assert!(
        stopped
            .body
            .contains(r#"<option value="pending" selected>"#)
    );
    assert!(stopped.body.contains("Send anyway"));
    assert_eq!(
        app.store.messages(t.id, true).await.unwrap().len(),
        before,
        "nothing sent"
    );
    // Notes and system messages are not news; one's own messages neither.
    let newest = input(&stopped, "seen");
    assert_ne!(newest, seen);
    let sent = alan
        .post_multipart(
            "/console/tickets/TKT-1/reply",
            &[
                ("csrf", &page.csrf()),
                ("seen", &newest),
                ("body", draft),
                ("status", "pending"),
                ("macro", ""),
            ],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(ticket(&app, "TKT-1").await.status, Status::Pending);

    // The API: last_message_id from the ticket; stale → 409, fresh → 201.
    let last = last_message_id(&app, &alan_token).await;
    let (status, _) = reply_seen(&app, &alan_token, "Still mine.", last).await;
    assert_eq!(status, 201, "my own reply is no news");
    let last = last_message_id(&app, &alan_token).await;
    let (status, _) = api(
        &app,
        &bea_token,
        "POST",
        "/api/v1/tickets/TKT-1/notes",
        json!({ "body": "Heads up: I called her." }),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = reply_seen(&app, &alan_token, "Blind again.", last).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    let last = last_message_id(&app, &alan_token).await;
    let (status, _) = reply_seen(&app, &alan_token, "Seen it now.", last).await;
    assert_eq!(status, 201);
    app.stop().await;
}

crate::on_both_backends!(
    canned_replies_are_written_and_owned,
    a_macro_goes_with_the_reply,
    a_macro_without_text_changes_fields_alone,
    canned_responses_through_the_api,
    a_reply_over_an_unseen_message_is_stopped
);
