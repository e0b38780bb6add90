//! Live updates (issue 34, item 2): `GET /api/v1/events` streams committed
//! changes and presence to every connected client, filtered to one ticket
//! on request; on PostgreSQL an event on one daemon reaches streams on
//! every daemon. Streams end when the daemon stops.

use crate::helpers::{TestApp, TestDb, spawn_app};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// A connected event stream: its events as they arrive, `None` once it ended.
struct Stream(mpsc::UnboundedReceiver<Value>);

impl Stream {
    async fn open(app: &TestApp, token: &str, query: &str) -> Stream {
        let mut r = app
            .http
            .get(app.url(&format!("/api/v1/events{query}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = r.chunk().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    for line in event.lines() {
                        if let Some(data) = line.strip_prefix("data:") {
                            let _ = tx.send(serde_json::from_str(data.trim()).unwrap());
                        }
                    }
                }
            }
        });
        Stream(rx)
    }

    /// The next event `matches` accepts (others are skipped), within 30 s.
    async fn expect(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let wait = async {
            while let Some(e) = self.0.recv().await {
                if matches(&e) {
                    return e;
                }
            }
            panic!("the stream ended before {what}");
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), wait)
            .await
            .unwrap_or_else(|_| panic!("no event: {what}"))
    }

    /// The next event, whatever it is.
    async fn next(&mut self, what: &str) -> Value {
        self.expect(what, |_| true).await
    }
}

async fn post(app: &TestApp, path: &str, body: Value) -> u16 {
    app.http
        .post(app.url(path))
        .bearer_auth(&app.token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Announces the token's agent on TKT-1; the status answered.
async fn presence(app: &TestApp, state: &str) -> u16 {
    post(
        app,
        "/api/v1/tickets/TKT-1/presence",
        json!({ "state": state }),
    )
    .await
}

async fn new_ticket(app: &TestApp, subject: &str) {
    let body =
        json!({ "requester": { "email": "ann@example.org" }, "subject": subject, "body": "Help." });
    assert_eq!(post(app, "/api/v1/tickets", body).await, 201);
}

async fn agent_id(app: &TestApp) -> i64 {
    app.store
        .user_by_email(&"agent@example.test".parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn changes_and_presence_reach_every_stream(db: TestDb) {
    let app = spawn_app(db).await;
    let me = agent_id(&app).await;
    let mut all = Stream::open(&app, &app.token, "").await;
    new_ticket(&app, "Printer").await;
    all.expect("TKT-1 opened", |e| {
        e["type"] == "ticket" && e["ticket"] == "TKT-1" && e["created"] == true
    })
    .await;
    all.expect("its first message", |e| {
        e["type"] == "message" && e["ticket"] == "TKT-1"
    })
    .await;

    let mut one = Stream::open(&app, &app.token, "?ticket=TKT-1").await;
    assert_eq!(
        post(
            &app,
            "/api/v1/tickets/TKT-1/replies",
            json!({ "body": "On it." })
        )
        .await,
        201
    );
    for s in [&mut all, &mut one] {
        let e = s
            .expect("the reply", |e| {
                e["type"] == "message" && e["kind"] == "reply"
            })
            .await;
        assert_eq!(
            (e["ticket"].clone(), e["by"].clone()),
            (json!("TKT-1"), json!(me))
        );
    }
    // Another ticket's events reach the stream of all, not TKT-1's.
    new_ticket(&app, "Scanner").await;
    all.expect("TKT-2 opened", |e| {
        e["ticket"] == "TKT-2" && e["created"] == true
    })
    .await;
    assert_eq!(presence(&app, "typing").await, 204);
    let e = one
        .expect("presence", |e| {
            e["type"] == "presence" || e["ticket"] != "TKT-1"
        })
        .await;
    assert_eq!(
        e["type"], "presence",
        "TKT-2 never reaches TKT-1's stream: {e}"
    );
    assert_eq!(
        (e["user"].clone(), e["state"].clone()),
        (json!(me), json!("typing"))
    );
    assert_eq!(e["name"], "Staff Member");
    all.expect("presence on the stream of all", |e| e["type"] == "presence")
        .await;
    // A newcomer to the ticket hears at once who is there.
    let mut late = Stream::open(&app, &app.token, "?ticket=TKT-1").await;
    let e = late.next("who is here").await;
    assert_eq!(
        (e["type"].clone(), e["state"].clone()),
        (json!("presence"), json!("typing"))
    );
    assert_eq!(presence(&app, "left").await, 204);
    late.expect("left", |e| e["state"] == "left").await;
    let mut after = Stream::open(&app, &app.token, "?ticket=TKT-1").await;
    // Nobody is there now: the first event is the next change.
    assert_eq!(
        post(
            &app,
            "/api/v1/tickets/TKT-1/notes",
            json!({ "body": "Note." })
        )
        .await,
        201
    );
    let e = after.next("the note").await;
    assert_eq!(
        (e["type"].clone(), e["kind"].clone()),
        (json!("message"), json!("note"))
    );

    // Refused: no token, a wrong one, a ticket that does not exist, a
    // presence that is not one.
    let r = app
        .http
        .get(app.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = app
        .http
        .get(app.url("/api/v1/events"))
        .bearer_auth("pd_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = app
        .http
        .get(app.url("/api/v1/events?ticket=TKT-99"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(presence(&app, "dancing").await, 400);
    // Streams end when the daemon stops (its shutdown does not wait on them).
    app.stop().await;
    for mut s in [all, one, late, after] {
        let ended = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while s.0.recv().await.is_some() {}
        })
        .await;
        assert!(ended.is_ok(), "a stream outlived its daemon");
    }
}

crate::on_both_backends!(changes_and_presence_reach_every_stream);

/// Two daemons on one PostgreSQL database: a change made through one, and
/// a presence announced on one, reach a stream connected to the other.
#[cfg(feature = "stack")]
#[tokio::test]
async fn an_event_on_one_daemon_reaches_a_stream_on_another() {
    let db = TestDb::postgres().await;
    let other = db.shared();
    let first = spawn_app(db).await;
    let second = spawn_app(other).await;
    let mut far = Stream::open(&second, &second.token, "").await;
    new_ticket(&first, "Printer").await;
    far.expect("TKT-1 opened on the first daemon", |e| {
        e["ticket"] == "TKT-1" && e["created"] == true
    })
    .await;
    assert_eq!(
        post(
            &first,
            "/api/v1/tickets/TKT-1/replies",
            json!({ "body": "On it." })
        )
        .await,
        201
    );
    far.expect("the reply", |e| {
        e["type"] == "message" && e["kind"] == "reply"
    })
    .await;
    assert_eq!(presence(&first, "viewing").await, 204);
    far.expect("presence", |e| {
        e["type"] == "presence" && e["state"] == "viewing"
    })
    .await;
    second.stop().await;
    first.stop().await;
}
