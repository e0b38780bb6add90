//! OAuth2 mailboxes (issue 8): IMAP and SMTP sign in with XOAUTH2 against the
//! real Dovecot and Postfix, which ask a token service written for this test
//! (below) whether each access token is valid. The service grants short-lived
//! access tokens, rotates the refresh token on every grant, can expire tokens
//! early and can revoke an account.

use axum::extract::{Form, State};
use axum::routing::post;
use axum::{Json, Router};
use postdesk::config::{AfterAction, OAuth2Settings, Secret};
use postdesk::store::Store;
use postdesk::store::tickets::{SortKey, TicketFilter};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::helpers::*;

#[derive(Default)]
struct Accounts {
    /// Refresh token → user.
    refresh: HashMap<String, String>,
    /// Access token → (user, expiry).
    access: HashMap<String, (String, Instant)>,
    /// Access-token lifetime per user.
    lifetime: HashMap<String, Duration>,
    /// Grants per user.
    grants: HashMap<String, usize>,
    /// Expired or unknown tokens presented to Dovecot, per user.
    refused: HashMap<String, usize>,
}

type Shared = Arc<Mutex<Accounts>>;

fn random() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn token(
    State(s): State<Shared>,
    Form(f): Form<HashMap<String, String>>,
) -> (axum::http::StatusCode, Json<Value>) {
    let mut a = s.lock().unwrap();
    let client_ok = f.get("client_id").map(String::as_str) == Some("postdesk-test")
        && f.get("client_secret").map(String::as_str) == Some("s3cret");
    let user = f
        .get("refresh_token")
        .and_then(|r| a.refresh.get(r).cloned());
    match (f.get("grant_type").map(String::as_str), client_ok, user) {
        (Some("refresh_token"), true, Some(user)) => {
            // Rotate: the presented refresh token is retired at once.
            a.refresh.remove(&f["refresh_token"]);
            let (access, refresh) = (random(), random());
            let life = a.lifetime[&user];
            a.access
                .insert(access.clone(), (user.clone(), Instant::now() + life));
            a.refresh.insert(refresh.clone(), user.clone());
            *a.grants.entry(user).or_default() += 1;
            (
                axum::http::StatusCode::OK,
                Json(json!({
                    "access_token": access,
                    "token_type": "Bearer",
                    "expires_in": life.as_secs(),
                    "refresh_token": refresh,
                })),
            )
        }
        _ => (
            axum::http::StatusCode::BAD_REQUEST,
            Json(
                json!({ "error": "invalid_grant", "error_description": "unknown or revoked refresh token" }),
            ),
        ),
    }
}

async fn introspect(
    State(s): State<Shared>,
    Form(f): Form<HashMap<String, String>>,
) -> Json<Value> {
    let mut a = s.lock().unwrap();
    let presented = f.get("token").cloned().unwrap_or_default();
    match a.access.get(&presented).cloned() {
        Some((user, expires)) if Instant::now() < expires => {
            Json(json!({ "active": true, "username": user }))
        }
        Some((user, _)) => {
            *a.refused.entry(user).or_default() += 1;
            Json(json!({ "active": false }))
        }
        None => Json(json!({ "active": false })),
    }
}

/// The token service, started once per test process on `OAUTH_PORT` (the
/// port the test Dovecot's introspection URL names).
fn service() -> Shared {
    static SERVICE: OnceLock<Shared> = OnceLock::new();
    SERVICE
        .get_or_init(|| {
            let shared = Shared::default();
            let state = shared.clone();
            let listener = std::net::TcpListener::bind(("127.0.0.1", OAUTH_PORT))
                .expect("the OAuth2 test service's port is free");
            listener.set_nonblocking(true).unwrap();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let app = Router::new()
                        .route("/token", post(token))
                        .route("/introspect", post(introspect))
                        .with_state(state);
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    axum::serve(listener, app).await.unwrap();
                });
            });
            shared
        })
        .clone()
}

fn register(user: &str, lifetime: Duration) -> String {
    let s = service();
    let mut a = s.lock().unwrap();
    let refresh = random();
    a.refresh.insert(refresh.clone(), user.into());
    a.lifetime.insert(user.into(), lifetime);
    refresh
}

fn grants(user: &str) -> usize {
    service()
        .lock()
        .unwrap()
        .grants
        .get(user)
        .copied()
        .unwrap_or(0)
}

fn refused(user: &str) -> usize {
    service()
        .lock()
        .unwrap()
        .refused
        .get(user)
        .copied()
        .unwrap_or(0)
}

fn current_refresh(user: &str) -> Vec<String> {
    let s = service();
    let a = s.lock().unwrap();
    a.refresh
        .iter()
        .filter(|(_, u)| *u == user)
        .map(|(r, _)| r.clone())
        .collect()
}

/// Ends every IMAP session of `user`, so the poller must sign in again.
fn kick(user: &str) {
    let stack = mailstack();
    succeed(std::process::Command::new("doveadm").args([
        "-c",
        stack.dir.join("dovecot.conf").to_str().unwrap(),
        "kick",
        user,
    ]));
}

async fn tickets(store: &Store) -> i64 {
    store
        .list_tickets(&TicketFilter::default(), (SortKey::Created, false), 1, 10)
        .await
        .unwrap()
        .0
}

async fn write(from: &str, to: &str, subject: &str) {
    let mail = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{}@client.test>\r\n\r\nHello.\r\n",
        random()
    );
    mailstack().send(from, to, mail.as_bytes()).await;
}

#[tokio::test]
async fn an_oauth2_mailbox_refreshes_rotates_and_reports_a_revoked_token() {
    let stack = mailstack();
    let (support, _) = stack.user("oauth");
    let (ann, ann_pw) = stack.user("ann");
    let refresh = register(&support, Duration::from_secs(5));
    let oauth = OAuth2Settings {
        token_url: format!("http://127.0.0.1:{OAUTH_PORT}/token"),
        client_id: "postdesk-test".into(),
        client_secret: Some(Secret::Inline("s3cret".into())),
        refresh_token: Secret::Inline(refresh.clone()),
        scope: None,
    };
    let mut m = mailbox(&support, "", "INBOX", AfterAction::Seen);
    m.imap.password = None;
    m.imap.oauth2 = Some(oauth.clone());
    let mut smtp = stack.smtp_account(stack.smtp_port);
    smtp.username = support.clone();
    smtp.oauth2 = Some(oauth.clone());
    m.smtp = Some(smtp);
    let imap_account = m.imap.clone();
    let app = spawn_app_with(TestDb::sqlite(), |s| {
        s.mailboxes = vec![m];
        s.outbound.retry_base = postdesk::domain::Span::secs(1);
    })
    .await;
    let store = app.store.clone();

    // 1. IMAP and SMTP sign in with XOAUTH2: a mail becomes a ticket and the
    //    receipt, sent through Postfix with XOAUTH2, reaches Ann.
    write(&ann, &support, "Printer").await;
    eventually(60, "the first mail becomes a ticket", || async {
        tickets(&store).await == 1
    })
    .await;
    eventually(60, "the receipt reaches Ann", || async {
        stack.inbox(&ann, &ann_pw).await.len() == 1
    })
    .await;
    assert!(grants(&support) >= 1);

    // 2. The access token's life runs out; the next sign-in uses a fresh one,
    //    never the expired one, with the rotated refresh token.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    kick(&support);
    write(&ann, &support, "Scanner").await;
    eventually(60, "the second mail becomes a ticket", || async {
        tickets(&store).await == 2
    })
    .await;
    assert!(grants(&support) >= 2, "the token was refreshed");
    assert_eq!(
        refused(&support),
        0,
        "postdesk never presented an expired token"
    );
    assert!(
        !current_refresh(&support).contains(&refresh),
        "the first refresh token was retired by rotation"
    );
    // The rotated token is in the database: a fresh token source (a restarted
    // daemon) gets an access token although the configured one is retired.
    let fresh = postdesk::oauth::Tokens::new(store.clone());
    fresh
        .access_token(&imap_account, &oauth)
        .await
        .expect("the stored rotated refresh token works after a restart");

    // 3. The provider expires tokens early (clock skew, a reset): the refused
    //    token is dropped and the next attempt fetches a new one.
    {
        let s = service();
        let mut a = s.lock().unwrap();
        for (user, expiry) in a.access.values_mut() {
            if *user == support {
                *expiry = Instant::now();
            }
        }
    }
    kick(&support);
    write(&ann, &support, "Projector").await;
    eventually(60, "the third mail becomes a ticket", || async {
        tickets(&store).await == 3
    })
    .await;

    // 4. The provider revokes the account: the mailbox shows the token error,
    //    and /readyz fails with it.
    {
        let s = service();
        let mut a = s.lock().unwrap();
        a.refresh.retain(|_, u| *u != support);
        a.access.retain(|_, (u, _)| *u != support);
    }
    kick(&support);
    eventually(60, "the mailbox reports the revoked token", || async {
        let row = store.mailbox_by_name("support").await.unwrap().unwrap();
        row.last_error
            .is_some_and(|e| e.contains("refused the refresh token") && e.contains("invalid_grant"))
    })
    .await;
    // The web stays in service (a mailbox never takes it out); the
    // mailbox's health is reported beside.
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["mailboxes_ok"], false, "{ready}");
    assert_eq!(ready["mailboxes"][0]["ok"], false, "{ready}");
    assert!(
        ready["mailboxes"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid_grant")),
        "{ready}"
    );
    app.stop().await;
}
