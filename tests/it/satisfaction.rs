//! "How did we do?" (issue 34, item 7): the signed links of the resolved
//! mail record a rating with one click and take a comment; the rating shows
//! on the ticket (console and API); answering again before the ticket is
//! resolved again changes it; after a reopen and a new resolution a new one
//! is kept beside the old. A forged or foreign link records nothing.

use crate::console::{Agent, account};
use crate::helpers::{TestApp, TestDb, spawn_app};
use postdesk::domain::Role;
use serde_json::{Value, json};

async fn api(app: &TestApp, method: &str, path: &str, body: Value) -> (u16, Value) {
    crate::helpers::call_api(app, &app.token, method, path, body).await
}

async fn status(app: &TestApp, to: &str) {
    let (code, _) = api(
        app,
        "PATCH",
        "/api/v1/tickets/TKT-1",
        json!({ "status": to }),
    )
    .await;
    assert_eq!(code, 200);
}

async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let r = app.http.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn ratings(app: &TestApp) -> Vec<Value> {
    let (_, t) = api(app, "GET", "/api/v1/tickets/TKT-1", Value::Null).await;
    t["ratings"].as_array().unwrap().clone()
}

async fn requesters_rate_a_resolved_ticket(db: TestDb) {
    let app = spawn_app(db).await;
    let body = json!({ "requester": { "email": "ann@example.org" }, "subject": "Printer", "body": "Help." });
    assert_eq!(api(&app, "POST", "/api/v1/tickets", body).await.0, 201);
    let body =
        json!({ "requester": { "email": "bob@example.org" }, "subject": "Other", "body": "Hi." });
    assert_eq!(api(&app, "POST", "/api/v1/tickets", body).await.0, 201);
    status(&app, "resolved").await;
    // The links the resolved mail carries (rendered by the outbox worker
    // with the install's key: src/outbox/worker/message.rs).
    let settings = postdesk::config::Settings::load_with_env(None, Vec::new()).unwrap();
    let key = postdesk::gateway::signing_key(&settings, &app.store)
        .await
        .unwrap();
    let ann = app
        .store
        .requester_id_by_email("ann@example.org")
        .await
        .unwrap()
        .unwrap();
    let bob = app
        .store
        .requester_id_by_email("bob@example.org")
        .await
        .unwrap()
        .unwrap();
    let token = key.rating_token(1, ann);

    let (code, page) = get(&app, &format!("/rate/{token}/good")).await;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("You told us TKT-1 went well."));
    let id = regex::Regex::new(r#"name="id" value="(\d+)""#)
        .unwrap()
        .captures(&page)
        .unwrap()[1]
        .to_string();
    let r = app
        .http
        .post(app.url(&format!("/rate/{token}")))
        .form(&[
            ("id", id.as_str()),
            ("rating", "good"),
            ("comment", "Quick and kind."),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let list = ratings(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0]["rating"].clone(), list[0]["comment"].clone()),
        (json!("good"), json!("Quick and kind."))
    );
    // A change of mind before the next resolution changes that rating.
    let (code, _) = get(&app, &format!("/rate/{token}/bad")).await;
    assert_eq!(code, 200);
    let list = ratings(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0]["rating"].clone(), list[0]["comment"].clone()),
        (json!("bad"), json!("Quick and kind."))
    );
    // The console shows it beside the ticket.
    account(&app, "alan@example.test", Role::Agent, "alan-password-1").await;
    let alan = Agent::sign_in(&app, "alan@example.test", "alan-password-1")
        .await
        .0;
    let shown = alan.get("/console/tickets/TKT-1").await;
    assert!(
        shown
            .body
            .contains(r#"<span class="rating rating-bad">Not good</span>"#),
        "{}",
        shown.body
    );
    assert!(shown.body.contains("— “Quick and kind.”"));

    // Reopened and resolved again: a new rating, the old one kept.
    status(&app, "open").await;
    status(&app, "resolved").await;
    let (code, _) = get(&app, &format!("/rate/{token}/good")).await;
    assert_eq!(code, 200);
    let (_, t) = api(&app, "GET", "/api/v1/tickets/TKT-1", Value::Null).await;
    assert_eq!(t["satisfaction"]["rating"], "good");
    assert_eq!(t["ratings"].as_array().unwrap().len(), 2);
    assert_eq!(t["ratings"][1]["rating"], "bad");

    // Refused: a forged token, a token for another ticket's requester, an
    // answer that is neither; nothing recorded.
    let forged = token.replacen("s-1-", "s-2-", 1);
    for path in [
        format!("/rate/{forged}/good"),
        format!("/rate/{}/good", key.rating_token(1, bob)),
        format!("/rate/{}/good", key.rating_token(99, ann)),
        format!("/rate/{token}/meh"),
        "/rate/s-1-1-0123456789abcdef0123/good".to_string(),
    ] {
        let (code, page) = get(&app, &path).await;
        assert_eq!(code, 404, "{path}");
        assert!(page.contains("This link does not work"));
    }
    let r = app
        .http
        .post(app.url(&format!("/rate/{forged}")))
        .form(&[("id", id.as_str()), ("comment", "spam")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(ratings(&app).await.len(), 2);
    assert!(ratings(&app).await.iter().all(|r| r["comment"] != "spam"));
    app.stop().await;
}

crate::on_both_backends!(requesters_rate_a_resolved_ticket);
