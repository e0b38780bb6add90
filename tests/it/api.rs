//! The JSON API and health routes over real HTTP against a running daemon.

use crate::helpers::{TestApp, TestDb, spawn_app, staff};
use postdesk::domain::Role;
use postdesk::secrets;
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

    // An empty ticket is refused, and nothing is mailed.
    let empty = json!({ "requester": { "email": "jane@example.org" }, "subject": " ", "body": "" });
    let (status, e) = send(&app, post.clone(), "/api/v1/tickets", empty).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["error"]["code"], "unprocessable");
    assert!(app.store.outbox_list(None, 10).await.unwrap().is_empty());

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
    // Opened by the agent on the requester's behalf: the requester's words,
    // saying who entered them.
    assert_eq!(t["messages"][0]["author"]["role"], "requester");
    assert_eq!(t["messages"][0]["author"]["email"], "jane@example.org");
    assert_eq!(
        t["messages"][0]["notice"],
        "Entered by Staff Member (phone)"
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
    // A PATCH is one change: a refused field leaves the others unchanged
    // and writes no system message (#30.1).
    let messages = t["messages"].as_array().map_or(0, Vec::len);
    let half = json!({ "priority": "low", "tags": ["vip"], "category": "No such category" });
    let (status, body) = send(&app, reqwest::Method::PATCH, "/api/v1/tickets/TKT-1", half).await;
    assert_eq!(status, 400, "{body}");
    let (_, t) = get(&app, "/api/v1/tickets/TKT-1").await;
    assert_eq!(
        t["priority"], "urgent",
        "nothing of the refused PATCH stays"
    );
    assert_eq!(t["tags"], json!(["hardware"]), "{t}");
    assert_eq!(t["messages"].as_array().map_or(0, Vec::len), messages);

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
        row["message_count"], 4,
        "what people wrote: the system's notes (6, with the PATCH's 3) are not counted"
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
    // Every answer names its request (the id every log line of it carries):
    // a proxy's plain id is kept, anything else replaced.
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 32, "{id}");
    let other = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_ne!(other.headers()["x-request-id"], id.as_str());
    let given = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "lb-4711.a")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "lb-4711.a");
    let forged = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "a b\"<script>")
        .send()
        .await
        .unwrap();
    assert_ne!(forged.headers()["x-request-id"], "a b\"<script>");
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready["database"]["ok"], true);
    // Every browser asks for the icon; pages offer a skip link.
    let r = app.http.get(app.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    let login = app
        .http
        .get(app.url("/console/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        login.contains("<a class=\"skip\" href=\"#main\">") && login.contains("<main id=\"main\"")
    );
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

/// Who may do what: agents work tickets and read users; admins also manage
/// users, mailboxes and deletion; a requester's portal token is refused.
/// A daemon with an admin (and the agent of `spawn_app`), and three of
/// Ann's tickets: TKT-1 "Printer on fire", TKT-2 "Invoice wrong", TKT-3
/// "Printer jammed". Returns the admin and their API token.
async fn with_admin(db: TestDb) -> (TestApp, postdesk::store::User, String) {
    let app = spawn_app(db).await;
    let (admin_user, _) = staff(&app.store, "admin@example.test", Role::Admin).await;
    let admin_token = secrets::new_api_token();
    app.store
        .insert_api_token(admin_user.id, &secrets::token_digest(&admin_token), "t", 1)
        .await
        .unwrap();
    for subject in ["Printer on fire", "Invoice wrong", "Printer jammed"] {
        let body = json!({ "requester": { "email": "ann@example.org" }, "subject": subject, "body": "Help." });
        assert_eq!(
            send(&app, reqwest::Method::POST, "/api/v1/tickets", body)
                .await
                .0,
            201
        );
    }
    (app, admin_user, admin_token)
}

/// A request with the admin's token: its status and JSON body.
async fn as_admin(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let r = app.http.request(method, app.url(path)).bearer_auth(token);
    let r = match body {
        Some(b) => r.json(&b),
        None => r,
    };
    let r = r.send().await.unwrap();
    (
        r.status().as_u16(),
        r.json::<Value>().await.unwrap_or(Value::Null),
    )
}

/// The OpenAPI document names every route, and needs no token.
async fn the_openapi_document_names_every_route(db: TestDb) {
    let app = spawn_app(db).await;
    // The OpenAPI document names every route, and needs no token.
    let r = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/tickets",
        "/tickets/bulk",
        "/tickets/{reference}",
        "/tickets/{reference}/replies",
        "/tickets/{reference}/notes",
        "/tickets/{reference}/merge",
        "/attachments/{id}",
        "/users",
        "/users/{id}",
        "/mailboxes",
        "/mailboxes/{name}",
        "/mailboxes/{name}/{op}",
        "/canned-responses",
        "/canned-responses/{id}",
        "/tickets/{reference}/macros/{id}",
        "/events",
        "/tickets/{reference}/presence",
        "/requesters/{email}",
        "/views",
        "/views/{id}",
        "/me",
        "/me/password",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }

    app.stop().await;
}

/// Agents list users but are refused administration (403 with a JSON
/// error); a requester's portal token is known but not staff's (403).
async fn agents_are_refused_administration(db: TestDb) {
    let (app, admin_user, _) = with_admin(db).await;
    let post = reqwest::Method::POST;
    let patch = reqwest::Method::PATCH;
    // Agents: users yes, administration no (403 with a JSON error).
    let (status, users) = get(&app, "/api/v1/users").await;
    assert_eq!(status, 200);
    assert_eq!(users["users"].as_array().unwrap().len(), 2);
    for (method, path, body) in [
        (reqwest::Method::GET, "/api/v1/mailboxes", Value::Null),
        (
            post.clone(),
            "/api/v1/users",
            json!({ "email": "x@example.test", "role": "agent" }),
        ),
        (
            patch.clone(),
            &format!("/api/v1/users/{}", admin_user.id),
            json!({ "active": false }),
        ),
        (
            reqwest::Method::DELETE,
            "/api/v1/tickets/TKT-1",
            Value::Null,
        ),
        (
            post.clone(),
            "/api/v1/tickets/bulk",
            json!({ "references": ["TKT-1"], "delete": true }),
        ),
        (post.clone(), "/api/v1/mailboxes/support/pause", Value::Null),
    ] {
        let (status, e) = send(&app, method, path, body).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{path}"
        );
    }
    // A requester's portal token is known, but not staff: 403, not 401.
    let key = postdesk::gateway::signing_key(&postdesk::config::Settings::default(), &app.store)
        .await
        .unwrap();
    let portal = key.portal_token(1, 1, i64::MAX / 2000);
    let r = app
        .http
        .get(app.url("/api/v1/tickets"))
        .bearer_auth(portal)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    app.stop().await;
}

/// Bulk changes by filter, then by references, each change with its
/// system message; a bulk request without changes is refused.
async fn bulk_changes_by_filter_and_by_reference(db: TestDb) {
    let (app, _, _) = with_admin(db).await;
    let post = reqwest::Method::POST;
    // Bulk by filter, then by references; each change writes its system message.
    let (status, b) = send(&app, post.clone(), "/api/v1/tickets/bulk",
        json!({ "filter": { "q": "printer" }, "changes": { "priority": "high", "assignee": "agent@example.test" } })).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["count"], 2);
    let (_, l) = get(&app, "/api/v1/tickets?priority=high&assignee=me").await;
    assert_eq!(l["total"], 2);
    let (_, t) = get(&app, "/api/v1/tickets/TKT-3").await;
    let system: Vec<&str> = t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "system")
        .map(|m| m["body_text"].as_str().unwrap())
        .collect();
    assert_eq!(system.len(), 2, "{system:?}");
    let (status, b) = send(
        &app,
        post.clone(),
        "/api/v1/tickets/bulk",
        json!({ "references": ["TKT-1", "TKT-2"], "changes": { "status": "resolved" } }),
    )
    .await;
    assert_eq!(status, 200, "{b}");
    assert!(
        b["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["ok"] == true && r["changed"] == true)
    );
    let (status, _) = send(
        &app,
        post.clone(),
        "/api/v1/tickets/bulk",
        json!({ "references": ["TKT-1"] }),
    )
    .await;
    assert_eq!(status, 400);

    app.stop().await;
}

/// Merging answers the ticket merged into; an admin deletes.
async fn merging_and_deleting(db: TestDb) {
    let (app, _, admin_token) = with_admin(db).await;
    let post = reqwest::Method::POST;
    // Merge, then delete (admin).
    let (status, m) = send(
        &app,
        post.clone(),
        "/api/v1/tickets/TKT-3/merge",
        json!({ "into": "TKT-1" }),
    )
    .await;
    assert_eq!(
        (status, m["reference"].as_str()),
        (200, Some("TKT-1")),
        "{m}"
    );
    assert_eq!(
        as_admin(
            &app,
            &admin_token,
            reqwest::Method::DELETE,
            "/api/v1/tickets/TKT-2",
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(get(&app, "/api/v1/tickets/TKT-2").await.0, 404);

    app.stop().await;
}

/// Users and mailboxes, as admin: a generated password answered once, no
/// admin locking themselves out, a mailbox's password never shown.
async fn users_and_mailboxes_as_admin(db: TestDb) {
    let (app, admin_user, admin_token) = with_admin(db).await;
    let post = reqwest::Method::POST;
    let patch = reqwest::Method::PATCH;
    // Users and mailboxes, as admin.
    let (status, u) = as_admin(
        &app,
        &admin_token,
        post.clone(),
        "/api/v1/users",
        Some(json!({ "email": "New@Example.test", "name": "Nia", "role": "agent" })),
    )
    .await;
    assert_eq!(status, 201, "{u}");
    assert_eq!(u["email"], "new@example.test");
    assert!(
        u["password"].as_str().unwrap().len() >= 12,
        "a generated password is answered once"
    );
    let (status, u) = as_admin(
        &app,
        &admin_token,
        patch.clone(),
        &format!("/api/v1/users/{}", u["id"]),
        Some(json!({ "role": "admin", "active": false })),
    )
    .await;
    assert_eq!(
        (status, u["role"].as_str(), u["active"].as_bool()),
        (200, Some("admin"), Some(false))
    );
    let (status, _) = as_admin(
        &app,
        &admin_token,
        patch,
        &format!("/api/v1/users/{}", admin_user.id),
        Some(json!({ "active": false })),
    )
    .await;
    assert_eq!(status, 400, "an admin cannot lock themselves out");
    let mailbox = json!({ "name": "billing", "address": "billing@example.test",
        "imap": { "host": "127.0.0.1", "port": 1, "tls": "none", "username": "billing", "password": "s3cret-pw" } });
    let (status, m) = as_admin(
        &app,
        &admin_token,
        post.clone(),
        "/api/v1/mailboxes",
        Some(mailbox),
    )
    .await;
    assert_eq!(status, 201, "{m}");
    assert!(
        !m.to_string().contains("s3cret-pw"),
        "the password never comes back: {m}"
    );
    let (status, m) = as_admin(
        &app,
        &admin_token,
        post.clone(),
        "/api/v1/mailboxes/billing/pause",
        None,
    )
    .await;
    assert_eq!((status, m["paused"].as_bool()), (200, Some(true)));
    let (status, t) = as_admin(
        &app,
        &admin_token,
        post.clone(),
        "/api/v1/mailboxes/billing/test",
        None,
    )
    .await;
    assert_eq!(
        (status, t["ok"].as_bool()),
        (200, Some(false)),
        "nothing listens on port 1: {t}"
    );
    let (status, e) = as_admin(
        &app,
        &admin_token,
        post,
        "/api/v1/mailboxes",
        Some(json!({ "name": "bad", "address": "nope" })),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(
        as_admin(
            &app,
            &admin_token,
            reqwest::Method::DELETE,
            "/api/v1/mailboxes/billing",
            None
        )
        .await
        .0,
        204
    );
    let (_, l) = as_admin(
        &app,
        &admin_token,
        reqwest::Method::GET,
        "/api/v1/mailboxes",
        None,
    )
    .await;
    assert_eq!(l["mailboxes"], json!([]));
    app.stop().await;
}

/// Lists in filters: several channels, categories and tags, comma-separated,
/// in the API and the console alike.
async fn filters_take_lists(db: TestDb) {
    let app = spawn_app(db).await;
    let post = reqwest::Method::POST;
    for (i, (channel, category, tag)) in [
        ("phone", "Billing", "vip"),
        ("chat", "Technical", "printer"),
        ("email", "General", "other"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({
            "requester": { "email": format!("r{i}@example.org") },
            "subject": format!("Ticket {i}"), "body": "x",
            "channel": channel, "category": category, "tags": [tag],
        });
        let (status, t) = send(&app, post.clone(), "/api/v1/tickets", body).await;
        assert_eq!(status, 201, "{t}");
    }
    let total = |query: &'static str| {
        let app = &app;
        async move {
            let (status, v) = send(
                app,
                reqwest::Method::GET,
                &format!("/api/v1/tickets?{query}"),
                Value::Null,
            )
            .await;
            assert_eq!(status, 200, "{query}: {v}");
            v["total"].as_i64().unwrap()
        }
    };
    assert_eq!(total("channel=phone,chat").await, 2);
    assert_eq!(total("category=Billing,Technical").await, 2);
    assert_eq!(total("category=Billing").await, 1);
    assert_eq!(total("tag=vip,printer").await, 2);
    assert_eq!(total("channel=phone,chat&category=Technical").await, 1);
    let (status, v) = send(
        &app,
        reqwest::Method::GET,
        "/api/v1/tickets?channel=phone,fax",
        Value::Null,
    )
    .await;
    assert_eq!(status, 400, "{v}");
    app.stop().await;
}

/// A new ticket and its tags are one transaction: tags refused, no ticket.
async fn a_ticket_and_its_tags_are_one_change(db: TestDb) {
    let app = spawn_app(db).await;
    let api = |method: &'static str, path: &'static str, body: Value| {
        let app = &app;
        async move { crate::helpers::call_api(app, &app.token, method, path, body).await }
    };
    let too_many: Vec<String> = (0..51).map(|i| format!("tag{i}")).collect();
    let (code, body) = api(
        "POST",
        "/api/v1/tickets",
        json!({"requester": {"email": "ann@example.org"}, "subject": "S", "body": "B", "tags": too_many}),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let (_, list) = api("GET", "/api/v1/tickets", Value::Null).await;
    assert_eq!(list["total"], 0, "the refused ticket was not kept: {list}");
    let (code, t) = api(
        "POST",
        "/api/v1/tickets",
        json!({"requester": {"email": "ann@example.org"}, "subject": "S", "body": "B", "tags": ["VIP", "billing"]}),
    )
    .await;
    assert_eq!(code, 201, "{t}");
    assert_eq!(t["tags"], json!(["billing", "vip"]));
}

crate::on_both_backends!(
    a_ticket_and_its_tags_are_one_change,
    filters_take_lists,
    tickets_over_the_api,
    health_readiness_and_metrics,
    the_openapi_document_names_every_route,
    agents_are_refused_administration,
    bulk_changes_by_filter_and_by_reference,
    merging_and_deleting,
    users_and_mailboxes_as_admin,
);
