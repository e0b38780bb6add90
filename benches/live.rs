//! Live-updates benchmark (not a test): N consoles hold `/api/v1/events`
//! streams open on the release daemon (a child process, so that its memory
//! is its own) while notes are added to a ticket through the API, one at a
//! time; for every note, the time from sending the request until each
//! stream has the event, and the daemon's resident memory before and with
//! the streams connected. With `--daemons 2` (PostgreSQL) the streams are
//! on the second daemon and the notes go through the first.
//!
//!     cargo bench --bench live -- [--db sqlite|postgres] [--consoles 500]
//!         [--events 100] [--daemons 1]

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postdesk::app::open_store;
use postdesk::config::Settings;

#[path = "common.rs"]
mod common;
use common::arg;

/// Starts the release daemon on `url`; returns it and its base URL.
async fn daemon(work: &std::path::Path, name: &str, url: &str) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = work.join(format!("{name}.toml"));
    let mut f = std::fs::File::create(&config).unwrap();
    writeln!(
        f,
        "[database]\nurl = \"{url}\"\nmax_connections = 8\n[http]\nlisten = \"127.0.0.1:{port}\"\n[outbound]\nenabled = false\n[log]\nlevel = \"warn\"\n[cluster]\nname = \"{name}\""
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (child, base)
}

/// When each stream got each message's event: message id → arrival times.
type Arrivals = Arc<Mutex<std::collections::HashMap<i64, Vec<Instant>>>>;

#[tokio::main]
async fn main() {
    let kind = arg("--db", "sqlite");
    let consoles: usize = arg("--consoles", "500").parse().unwrap();
    let events: usize = arg("--events", "100").parse().unwrap();
    let daemons: usize = arg("--daemons", "1").parse().unwrap();
    assert!(
        daemons == 1 || kind == "postgres",
        "several daemons need --db postgres"
    );
    let work = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-live");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let (url, pg) = common::bench_database(&kind, "lbench", &work);
    let mut s = Settings::load_with_env(None, Vec::new()).unwrap();
    s.database.url = url.clone();
    let store = open_store(&s).await.unwrap();
    let (_, token) = common::admin_with_token(&store).await;
    drop(store);

    let mut children = Vec::new();
    let (first, writer) = daemon(&work, "live-1", &url).await;
    children.push(first);
    let reader = if daemons > 1 {
        let (second, base) = daemon(&work, "live-2", &url).await;
        children.push(second);
        base
    } else {
        writer.clone()
    };
    let watched = children.last().unwrap().id().to_string();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{writer}/api/v1/tickets"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "requester": { "email": "ann@example.org" }, "subject": "Live", "body": "Hi." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = common::rss_mb(&watched);

    // The consoles: one connection each, every message event's arrival noted.
    let arrivals: Arrivals = Arc::default();
    let (ready_tx, mut ready) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..consoles {
        let (reader, token, arrivals, ready_tx) = (
            reader.clone(),
            token.clone(),
            arrivals.clone(),
            ready_tx.clone(),
        );
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut r = client
                .get(format!("{reader}/api/v1/events"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            let _ = ready_tx.send(());
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = r.chunk().await {
                let at = Instant::now();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:")) else {
                        continue;
                    };
                    let v: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
                    if v["type"] == "message"
                        && let Some(id) = v["message"].as_i64()
                    {
                        arrivals.lock().unwrap().entry(id).or_default().push(at);
                    }
                }
            }
        });
    }
    for _ in 0..consoles {
        ready.recv().await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let connected = common::rss_mb(&watched);

    let mut sent = Vec::new();
    for i in 0..events {
        let at = Instant::now();
        let r = http
            .post(format!("{writer}/api/v1/tickets/TKT-1/notes"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "body": format!("Note {i}") }))
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        sent.push((v["message"].as_i64().unwrap(), at));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let peak = common::rss_mb(&watched);
    let arrived = arrivals.lock().unwrap().clone();
    let mut latencies = Vec::new();
    let mut missed = 0;
    for (id, at) in &sent {
        let got = arrived.get(id).map_or(&[][..], Vec::as_slice);
        missed += consoles.saturating_sub(got.len());
        latencies.extend(
            got.iter()
                .map(|t| t.duration_since(*at).as_secs_f64() * 1000.0),
        );
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "live: {kind}, {daemons} daemon(s), {consoles} consoles, {events} events: \
         {} deliveries, {missed} missed; latency from sending the change p50 {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms; daemon RSS {before:.1} MB before the streams, \
         {connected:.1} MB with them (+{:.1} MB), {peak:.1} MB after the events",
        latencies.len(),
        pct(0.50),
        pct(0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        connected - before,
    );
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    if let Some(name) = pg {
        common::drop_pg(&name);
    }
}
