//! The JSON API and health routes over real HTTP against a running daemon.

use crate::helpers::{TestApp, TestDb, spawn_app};
use serde_json::{Value, json};

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app
        .http
        .get(app.url(path))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn send(app: &TestApp, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let r = app
        .http
        .request(method, app.url(path))
        .bearer_auth(&app.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn tickets_over_the_api(db: TestDb) {
    let app = spawn_app(db).await;
    let post = reqwest::Method::POST;

    // No token, a wrong token: 401 with a JSON error.
    let r = app
        .http
        .get(app.url("/api/v1/tickets"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let r = app
        .http
        .get(app.url("/api/v1/tickets"))
        .bearer_auth("pd_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let create = json!({
        "requester": { "email": "Jane@Example.org", "name": "Jane Doe" },
        "subject": "Printer on fire", "body": "It smokes.", "priority": "medium", "tags": ["hardware"]
    });
    let (status, t) = send(&app, post.clone(), "/api/v1/tickets", create).await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["reference"], "TKT-1");
    assert_eq!(t["priority"], "normal");
    assert_eq!(t["channel"], "phone");
    assert_eq!(
        t["requester"],
        json!({ "email": "jane@example.org", "name": "Jane Doe" })
    );
    assert_eq!(t["tags"], json!(["hardware"]));

    let (status, r) = send(
        &app,
        post.clone(),
        "/api/v1/tickets/TKT-1/replies",
        json!({ "body": "On my way" }),
    )
    .await;
    assert_eq!((status, &r["status"]), (201, &json!("in_progress")), "{r}");
    let (status, _) = send(
        &app,
        post.clone(),
        "/api/v1/tickets/TKT-1/notes",
        json!({ "body": "internal" }),
    )
    .await;
    assert_eq!(status, 201);
    let pending = json!({ "body": "Which floor?", "status": "pending" });
    let (_, r) = send(&app, post.clone(), "/api/v1/tickets/tkt-1/replies", pending).await;
    assert_eq!(r["status"], "pending");

    let (status, t) = get(&app, "/api/v1/tickets/TKT-1").await;
    assert_eq!(status, 200);
    assert_eq!(t["status"], "pending");
    let kinds: Vec<_> = t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "reply", "system", "reply", "system", "note", "reply", "system"
        ]
        .map(String::from)
    );
    assert_eq!(
        t["messages"][2]["author"],
        json!({ "email": "agent@example.test", "name": "Staff Member", "role": "agent" })
    );
    assert_eq!(
        t["messages"][0]["author"]["role"], "agent",
        "opened by the agent on the requester's behalf"
    );

    let patch =
        json!({ "priority": "urgent", "assignee": "agent@example.test", "due_at": "2027-01-01" });
    let (status, t) = send(&app, reqwest::Method::PATCH, "/api/v1/tickets/TKT-1", patch).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(
        (t["priority"].as_str(), t["assignee"].as_str()),
        (Some("urgent"), Some("agent@example.test"))
    );
    assert_eq!(t["due_at"], "2027-01-01T00:00:00Z");

    // The list, its filters and its errors.
    let (status, l) = get(
        &app,
        "/api/v1/tickets?status=pending&assignee=me&q=printer&sort=-created",
    )
    .await;
    assert_eq!(status, 200, "{l}");
    assert_eq!(l["total"], 1);
    let row = &l["tickets"][0];
    for key in [
        "reference",
        "subject",
        "status",
        "priority",
        "category",
        "channel",
        "requester",
        "assignee",
        "message_count",
        "created_at",
        "updated_at",
        "sla",
    ] {
        assert!(row.get(key).is_some(), "list row lacks {key}: {row}");
    }
    assert_eq!(
        row["message_count"], 10,
        "7 before the PATCH, plus its 3 system messages"
    );
    let (_, l) = get(&app, "/api/v1/tickets?status=open,in_progress").await;
    assert_eq!(l["total"], 0);
    let (status, e) = get(&app, "/api/v1/tickets?status=lost").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("lost"),
        "{e}"
    );
    let (status, e) = get(&app, "/api/v1/tickets?colour=red").await;
    assert_eq!(status, 400, "{e}");
    let (status, e) = get(&app, "/api/v1/tickets/TKT-99").await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = get(&app, "/api/v1/tickets/not-a-ref").await;
    assert_eq!(status, 404);
    let (status, e) = send(
        &app,
        post.clone(),
        "/api/v1/tickets/TKT-1/replies",
        json!({ "body": "  " }),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    let r = app
        .http
        .post(app.url("/api/v1/tickets/TKT-1/replies"))
        .bearer_auth(&app.token)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "bad_request");
    app.stop().await;
}

async fn health_readiness_and_metrics(db: TestDb) {
    let app = spawn_app(db).await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready["database"]["ok"], true);
    for _ in 0..3 {
        app.http
            .get(app.url("/api/v1/tickets"))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
    }
    let text = app.metrics().await;
    assert!(
        text.contains(
            r#"postdesk_http_requests_total{route="/api/v1/tickets",method="GET",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains("# TYPE postdesk_http_request_duration_seconds histogram"),
        "{text}"
    );
    app.stop().await;
}

crate::on_both_backends!(tickets_over_the_api, health_readiness_and_metrics);
