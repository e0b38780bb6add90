//! Saved views (issue 34, item 3): the queue's filter saved under a name,
//! personal or shared, listed above the queue with counts; the built-in
//! presets are shared views an admin can change; the same through
//! `/api/v1/views`.

use crate::console::{Agent, account, new_token};
use crate::helpers::{TestApp, TestDb, call_api, spawn_app};
use postdesk::domain::Role;
use serde_json::{Value, json};

async fn open(app: &TestApp, subject: &str, priority: &str) {
    let body = json!({ "requester": { "email": "ann@example.org" }, "subject": subject, "body": "Help.", "priority": priority });
    assert_eq!(
        call_api(app, &app.token, "POST", "/api/v1/tickets", body)
            .await
            .0,
        201
    );
}

async fn views_save_filters_with_counts(db: TestDb) {
    let app = spawn_app(db).await;
    account(&app, "ada@example.test", Role::Admin, "ada-password-1").await;
    account(&app, "alan@example.test", Role::Agent, "alan-password-1").await;
    account(&app, "bea@example.test", Role::Agent, "bea-password-1").await;
    open(&app, "Printer on fire", "urgent").await;
    open(&app, "Invoice", "normal").await;
    open(&app, "Printer jam", "low").await;
    let ada = Agent::sign_in(&app, "ada@example.test", "ada-password-1")
        .await
        .0;
    let alan = Agent::sign_in(&app, "alan@example.test", "alan-password-1")
        .await
        .0;
    let bea = Agent::sign_in(&app, "bea@example.test", "bea-password-1")
        .await
        .0;

    // The presets are views, with their counts.
    let q = alan.get("/console").await;
    assert!(
        q.body.contains(">Urgent unassigned <b>1</b></a>"),
        "{}",
        q.body
    );
    assert!(q.body.contains(">My open tickets <b>0</b></a>"));
    // Saving this page's filter: back to it, the view marked as the page.
    let q = alan.get("/console?q=printer").await;
    assert!(q.body.contains("Save this filter as a view"));
    let saved = alan
        .post(
            "/console/views",
            &[
                ("csrf", &q.csrf()),
                ("name", "Printers"),
                ("query", "q=printer"),
            ],
        )
        .await;
    assert_eq!(
        (saved.status, saved.location.as_str()),
        (303, "/console?q=printer")
    );
    let q = alan.get("/console?q=printer").await;
    assert!(
        q.body.contains(
            r#"aria-current="page">Printers <span class="meta">(mine)</span> <b>2</b></a>"#
        ),
        "{}",
        q.body
    );
    assert!(
        !bea.get("/console").await.body.contains("Printers"),
        "personal: Alan's alone"
    );
    // A filter the queue refuses is refused.
    let bad = alan
        .post(
            "/console/views",
            &[
                ("csrf", &q.csrf()),
                ("name", "Odd"),
                ("query", "status=sideways"),
            ],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("sideways"), "{}", bad.body);
    // A preset is changed by an admin, not by an agent.
    let (_, list) = call_api(&app, &app.token, "GET", "/api/v1/views", Value::Null).await;
    let preset = list["views"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "Urgent unassigned")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let form = |csrf: String| {
        vec![
            ("csrf".to_string(), csrf),
            ("name".to_string(), "Urgent, nobody's".to_string()),
            (
                "query".to_string(),
                "/console?priority=urgent&assignee=none".to_string(),
            ),
            ("shared".to_string(), "yes".to_string()),
        ]
    };
    let path = format!("/console/views/{preset}");
    let f = form(alan.get("/console/views").await.csrf());
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(alan.post(&path, &f).await.status, 403);
    let f = form(ada.get("/console/views").await.csrf());
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(ada.post(&path, &f).await.status, 303);
    assert!(
        alan.get("/console")
            .await
            .body
            .contains(">Urgent, nobody&#x27;s <b>1</b></a>")
    );

    // The API: list with counts, create shared, changed by its maker only.
    let alan_token = new_token(&alan).await;
    let bea_token = new_token(&bea).await;
    let (status, v) = call_api(
        &app,
        &alan_token,
        "POST",
        "/api/v1/views",
        json!({ "name": "Low", "query": "priority=low", "shared": true }),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(
        (v["count"].clone(), v["shared"].clone()),
        (json!(1), json!(true))
    );
    let id = v["id"].as_i64().unwrap();
    let (_, list) = call_api(&app, &bea_token, "GET", "/api/v1/views", Value::Null).await;
    let names: Vec<&str> = list["views"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Low") && !names.contains(&"Printers"),
        "{names:?}"
    );
    let path = format!("/api/v1/views/{id}");
    assert_eq!(
        call_api(&app, &bea_token, "PATCH", &path, json!({ "name": "Mine" }))
            .await
            .0,
        403
    );
    let (status, v) = call_api(
        &app,
        &alan_token,
        "PATCH",
        &path,
        json!({ "query": "priority=low,normal" }),
    )
    .await;
    assert_eq!((status, v["count"].clone()), (200, json!(2)));
    assert_eq!(
        call_api(
            &app,
            &alan_token,
            "POST",
            "/api/v1/views",
            json!({ "name": "", "query": "" })
        )
        .await
        .0,
        400
    );
    assert_eq!(
        call_api(&app, &alan_token, "DELETE", &path, Value::Null)
            .await
            .0,
        204
    );
    assert_eq!(
        call_api(&app, &alan_token, "DELETE", &path, Value::Null)
            .await
            .0,
        404
    );
    app.stop().await;
}

crate::on_both_backends!(views_save_filters_with_counts);
