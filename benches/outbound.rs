//! Outbound benchmark (not a test): N notifications are queued (N tickets
//! opened on the web channel, each with a receipt), then the outbox worker
//! delivers the backlog to a private Postfix on loopback, which passes it to
//! Dovecot over LMTP. Reports mails per second accepted by Postfix, the
//! process's peak RSS, and how many reached the recipients' Maildirs.
//!
//!     cargo bench --bench outbound -- [--mails 3000] [--db sqlite|postgres] [--connections 8]

use postdesk::actions::{Actions, OpenTicket};
use postdesk::config::{Account, Settings, TlsMode};
use postdesk::domain::{Channel, Span};
use postdesk::outbox::{Templates, Worker};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SMTP_PORT: u16 = 33025;
const RECIPIENTS: usize = 20;

#[path = "common.rs"]
mod common;
use common::arg;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stack(command: &str, dir: &Path, extra: &[&str]) {
    let status = Command::new(root().join("deploy/mailstack"))
        .arg(command)
        .arg(dir)
        .args(extra)
        .env("MAILSTACK_IMAP_PORT", "33143")
        .env("MAILSTACK_IMAPS_PORT", "33993")
        .env("MAILSTACK_LMTP_PORT", "33024")
        .env("MAILSTACK_SMTPS_PORT", "33465")
        .env("MAILSTACK_AUTH_PORT", "33026")
        .env("MAILSTACK_SMTP_PORT", SMTP_PORT.to_string())
        .status()
        .expect("deploy/mailstack runs");
    assert!(status.success(), "mailstack {command} failed");
}

fn delivered(dir: &Path) -> usize {
    (0..RECIPIENTS)
        .map(|r| {
            let new = dir.join(format!("mail/example.test/rcpt{r}/Maildir/new"));
            std::fs::read_dir(new).map(|d| d.count()).unwrap_or(0)
        })
        .sum()
}

#[tokio::main]
async fn main() {
    let n: usize = arg("--mails", "3000").parse().unwrap();
    let kind = arg("--db", "sqlite");
    let connections: usize = arg("--connections", "8").parse().unwrap();
    let work = root().join("target/bench-outbound");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let dir = work.join("stack");
    stack("start", &dir, &[]);
    for r in 0..RECIPIENTS {
        stack(
            "adduser",
            &dir,
            &[&format!("rcpt{r}@example.test"), "benchpw"],
        );
    }
    let (url, pg) = if kind == "postgres" {
        let name = format!("postdesk_obench_{}", std::process::id());
        (common::create_pg(&name), Some(name))
    } else {
        (
            format!("sqlite://{}", work.join("bench.db").display()),
            None,
        )
    };

    let mut s = Settings::load_with_env(None, Vec::new()).unwrap();
    s.database.url = url;
    s.database.max_connections = 8;
    s.outbound.from = Some("support@example.test".parse().unwrap());
    s.outbound.smtp = Some(Account {
        host: "127.0.0.1".into(),
        port: SMTP_PORT,
        tls: TlsMode::None,
        username: String::new(),
        password: None,
        ca_file: None,
        oauth2: None,
    });
    s.outbound.connections = connections;
    s.outbound.per_address_per_hour = u32::MAX;
    s.outbound.per_ticket_per_hour = u32::MAX;
    s.outbound.timeout = Span::secs(60);
    let settings = Arc::new(s);
    let store = postdesk::app::open_store(&settings).await.unwrap();
    let actions = Actions::new(store.clone(), settings.clone());

    let setup = Instant::now();
    let now = postdesk::store::now_millis();
    for i in 0..n {
        let to = format!("rcpt{}@example.test", i % RECIPIENTS);
        let mut t = OpenTicket::new(
            to.parse().unwrap(),
            &format!("Bench request {i}"),
            "Hello, something is broken. Grüße ✓",
            Channel::Web,
        );
        t.requester_name = Some(format!("Recipient {}", i % RECIPIENTS));
        actions.open_ticket(None, t, now).await.unwrap();
    }
    println!(
        "queued {n} receipts in {:.1} s (set-up, not measured)",
        setup.elapsed().as_secs_f64()
    );

    let key = postdesk::gateway::signing_key(&settings, &store)
        .await
        .unwrap();
    let worker = Worker::new(
        store.clone(),
        settings.clone(),
        Arc::new(Templates::load(None).unwrap()),
        key,
        "bench".into(),
    );
    let started = Instant::now();
    let (mut sent, mut other) = (0, 0);
    loop {
        let o = worker
            .run_once(postdesk::store::now_millis())
            .await
            .unwrap();
        if o.claimed == 0 {
            break;
        }
        sent += o.sent;
        other += o.retried + o.failed + o.held + o.suppressed;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{kind}: {sent} sent ({other} not) in {secs:.2} s = {:.0} mails/s with {connections} connections; peak RSS {:.0} MB",
        sent as f64 / secs,
        common::peak_rss_mb("self")
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while delivered(&dir) < sent && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "delivered by Postfix into Dovecot: {} of {sent} ({:.1} s after the last send)",
        delivered(&dir),
        started.elapsed().as_secs_f64() - secs
    );
    store.close().await;
    stack("stop", &dir, &[]);
    if let Some(name) = pg {
        common::drop_pg(&name);
    }
}
