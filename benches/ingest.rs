//! Ingest benchmark (not a test): N realistic mails are written into a
//! private Dovecot's Maildir, then the real `postdesk serve` (release build)
//! starts on SQLite or PostgreSQL and the time until every mail is processed
//! is measured, with the daemon's peak RSS. Then, with IDLE, the latency from
//! APPEND to the ticket being committed over single mails, beside the floor
//! of a bare IDLE client on the same server.
//!
//!     cargo bench --bench ingest -- [--mails 3000] [--db sqlite|postgres] [--latency 200]
//!         [--daemons 1] [--mailboxes 1] [--outbound] [--unmigrated] [--pg-params '?host=/var/run/postgresql']
//!
//! `--pg-params` is appended to the daemon's PostgreSQL URL: by default it
//! connects over TCP to 127.0.0.1, where sqlx's `sslmode=prefer` negotiates
//! TLS with a server that has it (Debian's has); `?host=/var/run/postgresql`
//! is the Unix socket a same-host install would use, `?sslmode=disable`
//! plain TCP.
//!
//! `BENCH_DB_DIR=/dev/shm` puts the SQLite database there instead of the work
//! directory (the disk's share of the time is the difference).
//!
//! With `--daemons N` (PostgreSQL), N daemons share the `--mailboxes M`
//! mailboxes under their leases; the conversations are spread over the
//! mailboxes (each stays in one, as a requester's replies go to the address
//! they first wrote to).
//!
//! `--outbound`: every daemon also sends the receipts (one per new ticket)
//! through the private Postfix, and the clock stops when the last one is
//! sent as well (the loop guards are lifted: the bench's requesters write
//! often, in the same words).

use postdesk::config::{Account, Secret, TlsMode};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common.rs"]
mod common;

const IMAP_PORT: u16 = 32143;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sh(cmd: &mut Command) {
    let status = cmd.status().expect("command runs");
    assert!(status.success(), "{cmd:?} failed");
}

/// A deterministic xorshift generator seeded by the mail's number.
struct Rng(u64);

impl Rng {
    fn new(i: usize) -> Self {
        Rng((i as u64)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407))
    }
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What mail `i` is: 4% auto-replies (to an earlier mail), 40% new
/// requests, the rest replies to an earlier mail; and the generator, to go on.
enum Kind {
    AutoReply(Option<usize>),
    Request,
    Reply(usize),
}

fn kind(i: usize) -> (Kind, Rng) {
    let mut rng = Rng::new(i);
    let roll = rng.next(100);
    let kind = if roll < 4 {
        Kind::AutoReply((i > 0).then(|| rng.next(i as u64) as usize))
    } else if roll < 44 || i < 10 {
        Kind::Request
    } else {
        Kind::Reply(rng.next(i as u64) as usize)
    };
    (kind, rng)
}

/// The requester writing mail `i`: a reply comes from whoever wrote the
/// conversation's first mail, as requesters do.
fn requester(i: usize) -> usize {
    match kind(i).0 {
        Kind::Reply(parent) => requester(parent),
        _ => i % 400,
    }
}

/// A deterministic, realistic mix: 40% new requests, replies by their
/// requesters threaded by In-Reply-To/References, 25% HTML, 10% attachments
/// of 20–200 KB, non-ASCII text, 4% auto-replies.
fn mail(i: usize, support: &str) -> Vec<u8> {
    let (kind, mut rng) = kind(i);
    let mut next = |n: u64| rng.next(n);
    let who = requester(i);
    let requester = format!("user{who}@example.org");
    let mut headers = format!(
        "From: Requester {who} <{requester}>\r\nTo: {support}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bench-{i}@example.org>\r\nMIME-Version: 1.0\r\n"
    );
    // Each mail in its own words, as people write (the loop guard's
    // content key ignores digits: the same words would count as one).
    let words: String = i
        .to_string()
        .bytes()
        .map(|d| {
            [
                "red", "blue", "green", "grey", "black", "white", "pink", "brown", "gold", "teal",
            ][usize::from(d - b'0')]
        })
        .collect::<Vec<_>>()
        .join(" ");
    let body_text = format!(
        "Hello team,\r\n\r\nI have a problem with order {i}: the screen shows an error ({words}). Grüße aus Köln — ünïcödé ✓.\r\nSteps: open, click, fail.\r\n\r\nThanks,\r\nRequester\r\n"
    );
    let subject = match kind {
        Kind::AutoReply(parent) => {
            headers.push_str("Auto-Submitted: auto-replied\r\n");
            if let Some(parent) = parent {
                headers.push_str(&format!("In-Reply-To: <bench-{parent}@example.org>\r\n"));
            }
            "Automatic reply: out of office".to_string()
        }
        Kind::Request => format!("Problem {i} with the portal"),
        Kind::Reply(parent) => {
            headers.push_str(&format!("In-Reply-To: <bench-{parent}@example.org>\r\nReferences: <bench-{parent}@example.org>\r\n"));
            format!("Re: Problem {parent} with the portal")
        }
    };
    headers.push_str(&format!("Subject: {subject}\r\n"));
    let quoted =
        "\r\nOn Mon, 23 Nov 2026 Support wrote:\r\n> We are looking into it.\r\n> Regards\r\n";
    let html = next(100) < 25;
    let attach = next(100) < 10;
    let mut out = headers;
    let text_part = if html {
        format!(
            "Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>{}</p><blockquote>old</blockquote></body></html>\r\n",
            body_text.replace("\r\n", "<br>")
        )
    } else {
        format!(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body_text}{quoted}"
        )
    };
    if attach {
        let size = 20_000 + next(180_000) as usize;
        let data: String = (0..size * 4 / 3 / 76 + 1)
            .map(|l| {
                format!(
                    "{}\r\n",
                    "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0"
                        .chars()
                        .cycle()
                        .skip(l % 7)
                        .take(76)
                        .collect::<String>()
                )
            })
            .collect();
        out.push_str("Content-Type: multipart/mixed; boundary=\"BOUNDARY\"\r\n\r\n--BOUNDARY\r\n");
        out.push_str(&text_part);
        out.push_str("--BOUNDARY\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n");
        out.push_str(&data);
        out.push_str("--BOUNDARY--\r\n");
    } else {
        out.push_str(&text_part);
    }
    out.into_bytes()
}

fn start_stack(dir: &Path) {
    let _ = Command::new(root().join("deploy/mailstack"))
        .args(["stop", dir.to_str().unwrap()])
        .status();
    sh(Command::new(root().join("deploy/mailstack"))
        .args(["start", dir.to_str().unwrap()])
        .env("MAILSTACK_IMAP_PORT", IMAP_PORT.to_string())
        .env("MAILSTACK_IMAPS_PORT", "32993")
        .env("MAILSTACK_LMTP_PORT", "32024")
        .env("MAILSTACK_SMTPS_PORT", "32465")
        .env("MAILSTACK_AUTH_PORT", "32026")
        .env("MAILSTACK_SMTP_PORT", SMTP_PORT.to_string()));
}

fn add_user(dir: &Path, user: &str) {
    sh(Command::new(root().join("deploy/mailstack")).args([
        "adduser",
        dir.to_str().unwrap(),
        user,
        "benchpw",
    ]));
}

/// The first mail of mail `i`'s conversation.
fn thread_root(i: usize) -> usize {
    match kind(i).0 {
        Kind::Reply(parent) | Kind::AutoReply(Some(parent)) => thread_root(parent),
        _ => i,
    }
}

/// Writes mails straight into the user's Maildir (faster than APPEND for
/// set-up): of the mails `0..n`, those `pick` chooses, in order.
fn fill_maildir(dir: &Path, user: &str, n: usize, pick: impl Fn(usize) -> bool) -> u64 {
    let (local, domain) = user.split_once('@').unwrap();
    let maildir = dir.join("mail").join(domain).join(local).join("Maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let mut bytes = 0;
    for i in (0..n).filter(|i| pick(*i)) {
        let m = mail(i, user);
        bytes += m.len() as u64;
        std::fs::write(
            maildir
                .join("new")
                .join(format!("{:010}.bench{i}.host", 1_700_000_000 + i)),
            m,
        )
        .unwrap();
    }
    sh(Command::new("chown").args(["-R", "mail:mail", dir.join("mail").to_str().unwrap()]));
    bytes
}

fn account(user: &str) -> Account {
    Account {
        host: "127.0.0.1".into(),
        port: IMAP_PORT,
        tls: TlsMode::None,
        username: user.into(),
        password: Some(Secret::Inline("benchpw".into())),
        ca_file: None,
        oauth2: None,
    }
}

fn database(kind: &str, work: &Path) -> (String, Option<String>) {
    if kind == "postgres" {
        let name = format!("postdesk_bench_{}", std::process::id());
        sh(Command::new("psql").args([
            "postgres://postgres@127.0.0.1:5432/test",
            "-qc",
            &format!("CREATE DATABASE {name}"),
        ]));
        (
            format!(
                "postgres://postgres@127.0.0.1:5432/{name}{}",
                arg("--pg-params", "")
            ),
            Some(name),
        )
    } else {
        // BENCH_DB_DIR=/dev/shm puts the database in memory: the
        // difference from a run on disk is the disk's share of the time.
        let dir = std::env::var_os("BENCH_DB_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| work.to_path_buf(), PathBuf::from);
        let path = dir.join("bench.db");
        for ext in ["", "-wal", "-shm", ".mail", ".mail-wal", ".mail-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
        }
        (format!("sqlite://{}", path.display()), None)
    }
}

const SMTP_PORT: u16 = 32025;

fn start_daemon(work: &Path, db_url: &str, users: &[String], port: u16, name: &str) -> Child {
    let outbound = std::env::args().any(|a| a == "--outbound");
    let config = work.join(format!("postdesk-{name}.toml"));
    // BENCH_LOG=postdesk=debug shows each batch's timing on stderr.
    let log = std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into());
    let mut f = std::fs::File::create(&config).unwrap();
    write!(
        f,
        "[database]\nurl = \"{db_url}\"\nmax_connections = 8\n[http]\nlisten = \"127.0.0.1:{port}\"\n[log]\nlevel = \"{log}\"\n\
[cluster]\nname = \"{name}\"\n"
    )
    .unwrap();
    if outbound {
        writeln!(
            f,
            "[outbound]\nper_address_per_hour = 1000000\nper_ticket_per_hour = 1000000\n\
per_conversation_per_hour = 1000000\nper_content_per_hour = 1000000"
        )
        .unwrap();
    } else {
        writeln!(f, "[outbound]\nenabled = false").unwrap();
    }
    for (b, user) in users.iter().enumerate() {
        write!(
            f,
            "[[mailboxes]]\nname = \"bench{b}\"\naddress = \"{user}\"\nstart = \"backlog\"\nafter = \"seen\"\n\
imap = {{ host = \"127.0.0.1\", port = {IMAP_PORT}, tls = \"none\", username = \"{user}\", password = \"benchpw\" }}\n"
        )
        .unwrap();
        if outbound {
            writeln!(
                f,
                "smtp = {{ host = \"127.0.0.1\", port = {SMTP_PORT}, tls = \"none\" }}"
            )
            .unwrap();
        }
    }
    Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("serve")
        .env("POSTDESK_CONFIG", &config)
        .current_dir(work)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the postdesk binary cargo built for this bench starts")
}

/// Stored mails processed; with `--outbound`, 0 until the outbox is empty too.
async fn done(store: &postdesk::store::Store) -> i64 {
    let processed = store
        .inbound_counts()
        .await
        .map(|c| c.iter().filter(|(s, _)| s != "new").map(|(_, n)| n).sum())
        .unwrap_or(0);
    if std::env::args().any(|a| a == "--outbound") {
        let unsent = store
            .status(postdesk::store::now_millis())
            .await
            .map_or(1, |v| v.queues.unsent);
        if unsent > 0 {
            return processed.min(1);
        }
    }
    processed
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let n: usize = arg("--mails", "3000").parse().unwrap();
    let kind = arg("--db", "sqlite");
    let singles: usize = arg("--latency", "200").parse().unwrap();
    let daemons: usize = arg("--daemons", "1").parse().unwrap();
    let boxes: usize = arg("--mailboxes", "1").parse::<usize>().unwrap().max(1);
    assert!(
        daemons == 1 || kind == "postgres",
        "several daemons need PostgreSQL"
    );
    let work = root().join("target/bench-ingest");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let stack = work.join("mailstack");
    start_stack(&stack);
    let users: Vec<String> = (0..boxes)
        .map(|b| format!("bench{b}-{}@example.test", std::process::id()))
        .collect();
    let mut bytes = 0;
    for (b, u) in users.iter().enumerate() {
        add_user(&stack, u);
        // A conversation stays in the mailbox its first mail went to, as a
        // requester's replies go to the address they wrote to.
        bytes += fill_maildir(&stack, u, n, |i| thread_root(i) % boxes == b);
    }
    if std::env::args().any(|a| a == "--outbound") {
        // The requesters' own mailboxes, so that receipts are delivered
        // rather than bounced back into the support mailboxes.
        let mut list = std::fs::OpenOptions::new()
            .append(true)
            .open(stack.join("users"))
            .unwrap();
        for who in 0..400 {
            writeln!(list, "user{who}@example.org:{{PLAIN}}benchpw").unwrap();
        }
        drop(list);
        // Waits until Dovecot has read the list.
        add_user(&stack, "user399@example.org");
    }
    let user = users[0].clone();
    let (db_url, pg_name) = database(&kind, &work);
    // The database is migrated before the clock starts, as an installed
    // help desk's is when its daemon starts (`--unmigrated`: the daemon
    // migrates a fresh database inside the timing).
    let store = postdesk::store::Store::connect(&db_url, 2, "TKT")
        .await
        .unwrap();
    if !std::env::args().any(|a| a == "--unmigrated") {
        store.migrate().await.unwrap();
    }

    let started = Instant::now();
    let cpu_before = common::machine_cpu();
    let mut others: Vec<Child> = (1..daemons)
        .map(|k| {
            start_daemon(
                &work,
                &db_url,
                &users,
                18099 + k as u16,
                &format!("bench-{k}"),
            )
        })
        .collect();
    let mut daemon = start_daemon(&work, &db_url, &users, 18099, "bench-0");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The first commit seen: from there on the rate is the sustained one
    // (before it the daemon starts, connects and fetches its first group).
    let mut first: Option<(Instant, i64)> = None;
    loop {
        let now_done = done(&store).await;
        if now_done >= n as i64 {
            break;
        }
        if first.is_none() && now_done > 0 {
            first = Some((Instant::now(), now_done));
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "ingest did not finish in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let sustained = first.map(|(at, done)| (n as i64 - done) as f64 / at.elapsed().as_secs_f64());
    let cpu_after = common::machine_cpu();
    let counts = store.inbound_counts().await.unwrap();
    println!(
        "ingest {kind}, {daemons} daemon(s), {boxes} mailbox(es): {n} mails ({:.1} MB) in {elapsed:.2} s (daemon start to last commit) = {:.0} mails/s; peak RSS {:.1} MB (first daemon); states {counts:?}",
        bytes as f64 / 1e6,
        n as f64 / elapsed,
        common::peak_rss_mb(&(daemon.id().to_string()))
    );
    if let (Some(rate), Some((at, _))) = (sustained, first) {
        println!(
            "sustained, from the first commit seen to the last: {rate:.0} mails/s; first commit seen {:.2} s after the daemon started",
            (at - started).as_secs_f64()
        );
    }
    // Whether the run was bound by the machine's two cores: the share of all
    // CPU time that was busy (the daemon, Dovecot, this bench), and the
    // daemon's threads' own CPU seconds.
    let (busy, all) = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
    let threads: Vec<String> = common::thread_cpu(daemon.id())
        .into_iter()
        .filter(|(_, (user, sys))| user + sys > 0.0)
        .map(|(name, (user, sys))| format!("{name} {user:.2} + {sys:.2}"))
        .collect();
    let (wcalls, wbytes, rcalls, rbytes) = common::process_io(daemon.id());
    println!(
        "I/O of the daemon so far: {wcalls} write calls ({:.1} MB), {rcalls} read calls ({:.1} MB); per mail {:.1} writes, {:.1} KB",
        wbytes as f64 / 1e6,
        rbytes as f64 / 1e6,
        wcalls as f64 / n as f64,
        wbytes as f64 / 1e3 / n as f64
    );
    println!(
        "CPU: machine {:.0}% busy ({busy:.2} of {all:.2} s); daemon threads, user + system s: {}",
        100.0 * busy / all.max(0.01),
        threads.join(", ")
    );

    // Latency with IDLE: APPEND one mail, wait until it is processed.
    let mut appender = postdesk::gateway::imap::connect(&account(&user))
        .await
        .unwrap();
    let mut latencies = Vec::with_capacity(singles);
    for i in 0..singles {
        let before = done(&store).await;
        let m = mail(n + 1000 + i, &user);
        let t = Instant::now();
        appender.append("INBOX", None, None, &m).await.unwrap();
        while done(&store).await <= before {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    for d in others.iter_mut().chain(std::iter::once(&mut daemon)) {
        let _ = Command::new("kill")
            .args(["-TERM", &d.id().to_string()])
            .status();
        let _ = d.wait();
    }

    // The floor: a bare IDLE client's APPEND → EXISTS delay on the same server.
    let mut floor = Vec::new();
    for i in 0..singles.min(50) {
        let mut watcher = postdesk::gateway::imap::connect(&account(&user))
            .await
            .unwrap();
        watcher.select("INBOX").await.unwrap();
        let mut idle = watcher.idle();
        idle.init().await.unwrap();
        let (wait, _stop) = idle.wait_with_timeout(Duration::from_secs(10));
        let m = mail(n + 5000 + i, &user);
        let t = Instant::now();
        let append = async {
            appender.append("INBOX", None, None, &m).await.unwrap();
            std::future::pending::<()>().await
        };
        tokio::select! { _ = wait => {}, _ = append => {} }
        floor.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    floor.sort_by(f64::total_cmp);
    if !latencies.is_empty() {
        println!(
            "latency {kind}: APPEND → ticket committed over {} mails: median {:.0} ms, p99 {:.0} ms; bare IDLE client floor over {}: median {:.0} ms, p99 {:.0} ms",
            latencies.len(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            floor.len(),
            percentile(&floor, 0.5),
            percentile(&floor, 0.99)
        );
    }
    let _ = Command::new(root().join("deploy/mailstack"))
        .args(["stop", stack.to_str().unwrap()])
        .status();
    if let Some(name) = pg_name {
        store.close().await;
        let _ = Command::new("psql")
            .args([
                "postgres://postgres@127.0.0.1:5432/test",
                "-qc",
                &format!("DROP DATABASE {name} WITH (FORCE)"),
            ])
            .status();
    }
}
