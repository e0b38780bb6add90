//! Queue benchmark (not a test): 100,000 tickets and 1,000,000 messages
//! generated into SQLite or PostgreSQL, the release daemon started on them
//! (a child process, so that its memory is its own), then latencies of the
//! console's queue page and the API's list with a search term and two
//! filters, reports over the last 30 days and over the whole year (API and
//! page), and a CSV export of every ticket with the daemon's peak RSS
//! before and after.
//!
//!     cargo bench --bench queue -- [--db sqlite|postgres] [--tickets 100000]
//!         [--messages 10] [--requests 200] [--compact yes] [--keep yes]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use postdesk::app::open_store;
use postdesk::config::Settings;

#[path = "common.rs"]
mod common;
use common::{arg, peak_rss_mb};

/// A small deterministic generator (no dependency for a benchmark).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Skewed towards small values, as word frequencies are.
    fn skewed(&mut self, n: u64) -> u64 {
        let a = self.below(n);
        let b = self.below(n);
        a.min(b).min(self.below(n))
    }
}

const REAL: [&str; 24] = [
    "printer", "invoice", "password", "login", "refund", "shipping", "broken", "error", "account",
    "billing", "delivery", "screen", "laptop", "network", "email", "crash", "upgrade", "license",
    "cancel", "order", "payment", "update", "server", "access",
];

fn vocabulary(rng: &mut Lcg) -> Vec<String> {
    let syllables = [
        "ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "zi", "po", "da", "fe", "gu", "hi", "jo",
        "be", "ci", "xo", "wa", "ye",
    ];
    let mut words: Vec<String> = REAL.iter().map(|w| w.to_string()).collect();
    while words.len() < 4000 {
        let n = 2 + rng.below(3);
        let w: String = (0..n)
            .map(|_| syllables[rng.below(syllables.len() as u64) as usize])
            .collect();
        words.push(w);
    }
    words
}

fn sentence(rng: &mut Lcg, words: &[String], n: usize) -> String {
    (0..n)
        .map(|_| words[rng.skewed(words.len() as u64) as usize].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs SQL statements in one transaction with the `psql` or `sqlite3`-free
/// path: sqlx directly, literal values (the generator's own words only).
async fn exec(pool: &sqlx::AnyPool, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", &sql[..sql.len().min(300)]));
}

fn percentiles(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    format!(
        "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {}",
        at(0.5),
        at(0.95),
        at(0.99),
        v[v.len() - 1],
        v.len()
    )
}

#[tokio::main]
async fn main() {
    let kind = arg("--db", "sqlite");
    let tickets: u64 = arg("--tickets", "100000").parse().unwrap();
    let per: u64 = arg("--messages", "10").parse().unwrap();
    let requests: usize = arg("--requests", "200").parse().unwrap();
    let work = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-queue");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let (url, pg) = common::bench_database(&kind, "qbench", &work);
    let mut s = Settings::load_with_env(None, Vec::new()).unwrap();
    s.database.url = url.clone();
    let store = open_store(&s).await.unwrap();
    let (admin, token) = common::admin_with_token(&store).await;
    let now = postdesk::store::now_millis();
    let cookie = postdesk::web::auth::start_session(
        &store,
        postdesk::web::auth::SessionOf::Staff(admin.id),
        false,
        now,
    )
    .await
    .unwrap()
    .to_str()
    .unwrap()
    .split(';')
    .next()
    .unwrap()
    .to_string();
    store.close().await;

    // Generate: 20 agents, 20,000 requesters, the tickets, their messages.
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let started = Instant::now();
    let mut rng = Lcg(42);
    let words = vocabulary(&mut rng);
    let mut sql = String::from("BEGIN;");
    for a in 0..20 {
        sql.push_str(&format!(
            "INSERT INTO users (email, name, role, created_at) VALUES ('agent{a}@example.org', 'Agent {a}', 'agent', 1);"
        ));
    }
    let requesters = 20_000u64;
    for chunk in (0..requesters).collect::<Vec<_>>().chunks(500) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|r| {
                let first = &words[(r % 3000) as usize + 24];
                format!(
                    "('person{r}@customer{}.test', '{first}', 'Customer{r}', 1)",
                    r % 97
                )
            })
            .collect();
        sql.push_str(&format!(
            "INSERT INTO requesters (email, first_name, last_name, created_at) VALUES {};",
            rows.join(",")
        ));
    }
    sql.push_str("COMMIT;");
    exec(&pool, &sql).await;
    let statuses = [
        "open",
        "in_progress",
        "pending",
        "on_hold",
        "resolved",
        "closed",
    ];
    let priorities = ["low", "normal", "high", "urgent"];
    let categories = postdesk::domain::ticket::DEFAULT_CATEGORIES;
    let year = 365 * 24 * 3_600_000i64;
    let mut message_count = 0u64;
    for start in (0..tickets).step_by(1000) {
        let mut sql = String::from("BEGIN;");
        let mut rows = Vec::new();
        let mut times = Vec::new();
        let mut ratings = Vec::new();
        for n in start..(start + 1000).min(tickets) {
            let created = now - year + (n as i64 * year / tickets as i64);
            let updated = created + rng.below(30 * 24 * 3_600_000) as i64;
            times.push((created, updated));
            let assignee = if rng.below(10) < 3 {
                "NULL".to_string()
            } else {
                (2 + rng.below(20)).to_string()
            };
            let subject = format!(
                "{} {}",
                REAL[rng.below(REAL.len() as u64) as usize],
                sentence(&mut rng, &words, 4)
            );
            // What reports read: the first reply within two days (most
            // tickets), resolution at the last update, pauses, ratings.
            let status = statuses[rng.skewed(6) as usize];
            let first = created + rng.below(48 * 3_600_000) as i64;
            let (first, first_paused) = if rng.below(10) < 9 && first <= updated {
                (first.to_string(), "0".to_string())
            } else {
                ("NULL".to_string(), "NULL".to_string())
            };
            let resolved = matches!(status, "resolved" | "closed");
            let paused = rng.below(((updated - created) / 2).max(1) as u64);
            let requester = 1 + rng.below(requesters);
            if resolved && rng.below(10) < 3 {
                ratings.push(format!(
                    "({}, {requester}, '{}', {}, {})",
                    n + 1,
                    if rng.below(10) < 8 { "good" } else { "bad" },
                    updated + 3_600_000,
                    updated + 3_600_000
                ));
            }
            rows.push(format!(
                "({}, '{subject}', '{status}', '{}', '{}', 'email', {requester}, {assignee}, NULL, 0, {created}, {updated}, {updated}, '{}', \
                 {first}, {first_paused}, {}, {}, {paused})",
                n + 1,
                priorities[rng.below(4) as usize],
                categories[rng.below(7) as usize],
                ["none", "ok", "warning", "breached"][rng.below(4) as usize],
                if resolved { updated.to_string() } else { "NULL".into() },
                if status == "closed" { updated.to_string() } else { "NULL".into() },
            ));
        }
        sql.push_str(&format!(
            "INSERT INTO tickets (number, subject, status, priority, category, channel, requester_id, assignee_id, \
             mailbox_id, message_count, created_at, updated_at, last_message_at, sla_state, first_response_at, \
             sla_first_response_paused_ms, resolved_at, closed_at, sla_paused_ms) VALUES {};",
            rows.join(",")
        ));
        if !ratings.is_empty() {
            sql.push_str(&format!(
                "INSERT INTO ratings (ticket_id, requester_id, rating, created_at, updated_at) VALUES {};",
                ratings.join(",")
            ));
        }
        // Ticket ids follow numbers on a fresh database. The messages are
        // spread from the ticket's creation to its last update (the
        // triggers count them and set the ticket's updated_at to the last).
        let mut msgs = Vec::new();
        for (n, (created, updated)) in (start..(start + 1000).min(tickets)).zip(times) {
            for i in 0..per {
                let note = rng.below(10) == 0;
                let len = 12 + rng.below(40) as usize;
                msgs.push(format!(
                    "({}, '{}', '{}', {}, '{}', {})",
                    n + 1,
                    if note { "note" } else { "reply" },
                    if i % 2 == 0 { "requester" } else { "agent" },
                    if i % 2 == 0 {
                        format!("NULL, {}", 1 + rng.below(requesters))
                    } else {
                        format!("{}, NULL", 2 + rng.below(20))
                    },
                    sentence(&mut rng, &words, len),
                    created + (updated - created) * (i as i64 + 1) / per as i64,
                ));
                message_count += 1;
            }
            if msgs.len() >= 2000 {
                sql.push_str(&format!(
                    "INSERT INTO messages (ticket_id, kind, author_kind, author_user_id, author_requester_id, body_text, created_at) VALUES {};",
                    msgs.join(",")
                ));
                msgs.clear();
            }
        }
        if !msgs.is_empty() {
            sql.push_str(&format!(
                "INSERT INTO messages (ticket_id, kind, author_kind, author_user_id, author_requester_id, body_text, created_at) VALUES {};",
                msgs.join(",")
            ));
        }
        if kind != "postgres" {
            // What the daemon's commits do for the rows they write.
            sql.push_str(postdesk::store::SEARCH_CATCH_UP);
        }
        sql.push_str("COMMIT;");
        exec(&pool, &sql).await;
        if kind == "postgres" && start % 10_000 == 9_000 {
            // Autovacuum's part: in a database that grew over months it has
            // run many times, reclaiming the search vectors each message
            // rewrote (its default threshold is a fifth of a table dead).
            exec(&pool, "VACUUM tickets").await;
            exec(&pool, "VACUUM ticket_search").await;
        }
        if start % 20_000 == 0 {
            eprint!(
                "\rgenerated {start} tickets ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    let counter = if kind == "postgres" {
        // As autovacuum would have done by the time anyone searches; with
        // --compact, also compacting what the generation's appends left
        // behind (each message rewrote its ticket's search vector).
        let vacuum = if arg("--compact", "no") == "yes" {
            "VACUUM FULL ANALYZE"
        } else {
            "VACUUM ANALYZE"
        };
        format!("SELECT setval('ticket_ref_seq', {tickets}); {vacuum}")
    } else {
        format!("UPDATE counters SET value = {tickets} WHERE name = 'ticket_ref'; ANALYZE")
    };
    for statement in counter.split("; ") {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string()))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    pool.close().await;
    println!(
        "\n{kind}: generated {tickets} tickets and {message_count} messages in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    // The release daemon on that database.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = work.join("postdesk.toml");
    let mut f = std::fs::File::create(&config).unwrap();
    writeln!(
        f,
        "[database]\nurl = \"{url}\"\nmax_connections = 8\n[http]\nlisten = \"127.0.0.1:{port}\"\n[outbound]\nenabled = false\n[log]\nlevel = \"warn\""
    )
    .unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = daemon.id().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let terms = [
        "printer",
        "invoice refund",
        "kalo",
        "password",
        "mine",
        "zizi",
        "network error",
        "vosa",
        "lokaru",
        "server",
        "upgrade",
        "tepo",
        "crash",
        "rusa",
        "billing",
        "nezi",
    ];
    let mut report = Vec::new();
    for (label, path) in [
        (
            "console queue, search + 2 filters",
            "/console?q={q}&status=open&priority=high",
        ),
        (
            "API list, search + 2 filters",
            "/api/v1/tickets?q={q}&status=open&priority=high",
        ),
        (
            "console queue, 2 filters, no search",
            "/console?status=open&priority=high&page={p}",
        ),
        ("console queue, search only", "/console?q={q}"),
    ] {
        let mut times = Vec::with_capacity(requests);
        let mut matched = 0u64;
        for i in 0..requests + 10 {
            let url = format!(
                "{base}{}",
                path.replace("{q}", &terms[i % terms.len()].replace(' ', "+"))
                    .replace("{p}", &(1 + i % 5).to_string())
            );
            let t = Instant::now();
            let r = http
                .get(&url)
                .header("cookie", &cookie)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200, "{url}");
            let body = r.text().await.unwrap();
            if i >= 10 {
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                matched += u64::from(body.contains("TKT-"));
            }
        }
        let line = format!("{label}: {} ({matched} with results)", percentiles(times));
        println!("{line}");
        report.push(line);
    }
    let before = peak_rss_mb(&pid);
    let t = Instant::now();
    let mut r = http
        .get(format!("{base}/console/export.csv"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let (mut bytes, mut lines) = (0usize, 0usize);
    while let Some(chunk) = r.chunk().await.unwrap() {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    println!(
        "CSV export of all: {} rows, {:.1} MB in {:.2} s; daemon peak RSS {before:.0} MB before, {:.0} MB after",
        lines - 1,
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        peak_rss_mb(&pid)
    );
    let t = Instant::now();
    let r = http
        .get(format!("{base}/console/export.pdf"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let pdf = r.bytes().await.unwrap();
    println!(
        "PDF export of all: {:.1} MB in {:.2} s; daemon peak RSS {:.0} MB",
        pdf.len() as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        peak_rss_mb(&pid)
    );
    // Reports, on a help desk that closes what it is asked: the generated
    // statuses leave nearly every ticket open, so first 97% of those last
    // updated over 30 days ago are closed then (the backlog a report counts
    // is a few thousand, not 95,000).
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let aged = sqlx::query(
        "UPDATE tickets SET status = 'closed', resolved_at = updated_at, closed_at = updated_at \
         WHERE updated_at < $1 AND status NOT IN ('resolved', 'closed') AND id % 33 <> 0",
    )
    .bind(now - 30 * 24 * 3_600_000)
    .execute(&pool)
    .await
    .unwrap()
    .rows_affected();
    pool.close().await;
    println!("aged: {aged} tickets closed");
    // Reports: the last 30 days (the page's default) and the whole year.
    let today = postdesk::domain::rfc3339(now)[..10].to_string();
    let year_ago = postdesk::domain::rfc3339(now - year)[..10].to_string();
    let whole = format!("from={year_ago}&to={today}");
    for (label, path) in [
        (
            "reports API, 30 days by day",
            "/api/v1/reports?group=day".to_string(),
        ),
        (
            "reports API, 30 days by agent",
            "/api/v1/reports?group=agent".into(),
        ),
        (
            "reports API, 30 days by category",
            "/api/v1/reports?group=category".into(),
        ),
        (
            "reports page, 30 days by day (SVG)",
            "/console/reports?group=day&tz=%2B00:00".into(),
        ),
        (
            "reports API, a year by day",
            format!("/api/v1/reports?{whole}&group=day"),
        ),
        (
            "reports API, a year by category",
            format!("/api/v1/reports?{whole}&group=category"),
        ),
    ] {
        let mut times = Vec::new();
        let mut opened = 0;
        for i in 0..(requests / 4).max(5) + 3 {
            let t = Instant::now();
            let r = http
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200, "{path}");
            let body = r.text().await.unwrap();
            if i >= 3 {
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
                opened = v["total"]["opened"].as_i64().unwrap_or(0);
            }
        }
        let line = format!(
            "{label}: {} ({opened} tickets opened in it)",
            percentiles(times)
        );
        println!("{line}");
        report.push(line);
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    if let Some(name) = pg {
        if arg("--keep", "no") == "yes" {
            println!("kept for inspection: {url}");
        } else {
            common::drop_pg(&name);
        }
    }
}
