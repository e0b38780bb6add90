//! Portal benchmark (not a test): the ticket page of a 50-message thread,
//! signed in as its requester, under wrk (Debian's package, installed if
//! missing) against the release daemon in this process. Reports requests per
//! second and latency percentiles as wrk prints them.
//!
//!     cargo bench --bench portal -- [--db sqlite|postgres] [--seconds 10] [--connections 32]

use postdesk::actions::{Actions, OpenTicket, ReplyInput};
use postdesk::app::{App, open_store};
use postdesk::config::Settings;
use postdesk::domain::{Actor, Channel, Role};
use postdesk::store::NewUser;
use std::process::Command;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[path = "common.rs"]
mod common;
use common::arg;

#[tokio::main]
async fn main() {
    let kind = arg("--db", "sqlite");
    let seconds = arg("--seconds", "10");
    let connections = arg("--connections", "32");
    if Command::new("wrk").arg("--version").output().is_err() {
        let ok = Command::new("apt-get")
            .args(["install", "-y", "-qq", "wrk"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "wrk is needed: apt-get install wrk");
    }
    let work = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-portal");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let mut pg = None;
    let mut s = Settings::load_with_env(None, Vec::new()).unwrap();
    s.database.url = if kind == "postgres" {
        let name = format!("postdesk_pbench_{}", std::process::id());
        pg = Some(name.clone());
        common::create_pg(&name)
    } else {
        format!("sqlite://{}", work.join("bench.db").display())
    };
    s.database.max_connections = arg("--pool", "16").parse().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    s.http.listen = format!("127.0.0.1:{port}");
    s.outbound.enabled = false;
    s.log.level = "warn".into();

    // A ticket with a 50-message thread: the requester and an agent in turn.
    let store = open_store(&s).await.unwrap();
    let actions = Actions::new(store.clone(), Arc::new(s.clone()));
    let agent = store
        .insert_user(
            &NewUser {
                email: "agent@example.org".parse().unwrap(),
                name: "Agent Smith".into(),
                role: Role::Agent,
                password_hash: "x".into(),
            },
            1,
        )
        .await
        .unwrap();
    let now = postdesk::store::now_millis();
    let opened = actions
        .open_ticket(
            None,
            OpenTicket::new(
                "ann@example.org".parse().unwrap(),
                "Printer on fire",
                "It smokes. Grüße ✓",
                Channel::Email,
            ),
            now,
        )
        .await
        .unwrap();
    let t = store.ticket(opened.ticket_id).await.unwrap().unwrap();
    for i in 1..50 {
        let actor = if i % 2 == 1 {
            Actor::Staff {
                user_id: agent.id,
                role: Role::Agent,
            }
        } else {
            Actor::Requester {
                requester_id: t.requester.id,
            }
        };
        let text = format!(
            "Message {i}: we tried the next thing.\n\nLine two of a longer message, with some detail about what happened."
        );
        actions
            .reply(actor, t.id, ReplyInput::text(&text), now + i)
            .await
            .unwrap();
    }
    let cookie = postdesk::web::auth::start_requester_session(
        &store,
        t.requester.id,
        Some(t.id),
        false,
        now,
    )
    .await
    .unwrap();
    let cookie = cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    store.close().await;

    let app = App::build(s).await.unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(app.run(stop.clone()));
    let url = format!("http://127.0.0.1:{port}/portal/tickets/{}", t.reference);
    let check = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download}",
            "-H",
            &format!("Cookie: {cookie}"),
            &url,
        ])
        .output()
        .unwrap();
    println!("GET {url}: {}", String::from_utf8_lossy(&check.stdout));
    let out = tokio::task::spawn_blocking(move || {
        Command::new("wrk")
            .args([
                "-t2",
                "-c",
                &connections,
                "-d",
                &format!("{seconds}s"),
                "--latency",
                "-H",
                &format!("Cookie: {cookie}"),
                &url,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    println!("{kind}:\n{}", String::from_utf8_lossy(&out.stdout));
    stop.cancel();
    let _ = running.await;
    if let Some(name) = pg {
        common::drop_pg(&name);
    }
}
