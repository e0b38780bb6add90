//! The real `postdesk` binary: configuration checks, accounts, and a served
//! daemon that drains and exits 0 on SIGTERM.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn postdesk(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_postdesk"));
    c.current_dir(dir)
        .env_remove("POSTDESK_CONFIG")
        .env("RUST_LOG", "warn");
    c
}

/// A working directory whose postdesk.toml declares one `support` mailbox.
fn dir_with_support_mailbox() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("postdesk.toml"),
        "[[mailboxes]]\nname = \"support\"\naddress = \"support@example.test\"\nimap = { host = \"127.0.0.1\", port = 143, tls = \"none\" }\n",
    )
    .unwrap();
    dir
}

#[test]
fn check_config_masks_secrets_and_names_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("postdesk.toml"),
        "[security]\nsecret_key = \"0123456789abcdef0123456789abcdef-secret\"\n",
    )
    .unwrap();
    let out = postdesk(dir.path()).arg("check-config").output().unwrap();
    assert!(out.status.success());
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("secret_key = \"********\"") && !shown.contains("-secret"),
        "{shown}"
    );

    // Credentials inside any URL are masked too.
    std::fs::write(
        dir.path().join("pg.toml"),
        "[database]\nurl = \"postgres://desk:hunter2@db.example:5432/desk?sslmode=require&password=hunter3\"\n",
    )
    .unwrap();
    let out = postdesk(dir.path())
        .args(["--config", "pg.toml", "check-config"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(!shown.contains("hunter"), "{shown}");
    assert!(
        shown.contains(
            "postgres://desk:********@db.example:5432/desk?sslmode=require&password=********"
        ),
        "{shown}"
    );

    std::fs::write(
        dir.path().join("bad.toml"),
        "[tickets]\nauto_close_after = \"soon\"\n",
    )
    .unwrap();
    let out = postdesk(dir.path())
        .args(["--config", "bad.toml", "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tickets.auto_close_after") && err.contains("soon"),
        "{err}"
    );

    let out = postdesk(dir.path())
        .arg("check-config")
        .env("POSTDESK__HTTP__LISTEN", "nowhere")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`http.listen` = `nowhere`"));

    let out = postdesk(dir.path()).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("postdesk "));
}

#[test]
fn user_accounts_and_tokens_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::helpers::succeed(postdesk(dir.path()).args([
        "user",
        "add",
        "--email",
        "Admin@Example.test",
        "--role",
        "admin",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("created admin admin@example.test"), "{text}");
    let password = text
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap();
    assert_eq!(password.len(), 20);

    let mut child = postdesk(dir.path())
        .args([
            "user",
            "add",
            "--email",
            "agent@example.test",
            "--role",
            "agent",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("password:"));

    let dup = postdesk(dir.path())
        .args(["user", "add", "--email", "agent@example.test"])
        .output()
        .unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let bad_role = postdesk(dir.path())
        .args(["user", "add", "--email", "x@example.test", "--role", "boss"])
        .output()
        .unwrap();
    assert!(!bad_role.status.success());

    let out = postdesk(dir.path())
        .args(["user", "token", "--email", "agent@example.test"])
        .output()
        .unwrap();
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.starts_with("pd_") && token.len() == 67, "{token}");
    let missing = postdesk(dir.path())
        .args(["user", "token", "--email", "ghost@example.test"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
}

#[test]
fn serve_answers_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        postdesk(dir.path())
            .arg("migrate")
            .status()
            .unwrap()
            .success()
    );
    let port = crate::helpers::free_port();
    let mut child = postdesk(dir.path())
        .arg("serve")
        .env("POSTDESK__HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let healthy = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
            let mut reply = String::new();
            let _ = std::io::Read::read_to_string(&mut s, &mut reply);
            break reply;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        healthy.starts_with("HTTP/1.0 200") || healthy.starts_with("HTTP/1.1 200"),
        "{healthy}"
    );
    assert!(
        dir.path().join("postdesk.db").exists(),
        "the default SQLite file is in the working directory"
    );
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn inspect_prints_stable_json_and_refuses_non_mail_with_65() {
    let dir = tempfile::tempdir().unwrap();
    let mail = "From: Jane <jane@example.org>\r\nTo: support+tok123@example.test\r\nSubject: Re: [TKT-5] Printer\r\n\
Message-ID: <m1@example.org>\r\nIn-Reply-To: <n1@postdesk>\r\n\r\nThanks!\r\n\r\nOn Mon, Jan 5, 2026 Support wrote:\r\n> old\r\n";
    std::fs::write(dir.path().join("m.eml"), mail).unwrap();
    let out = crate::helpers::succeed(postdesk(dir.path()).args(["inspect", "--json", "m.eml"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["from"]["email"], "jane@example.org");
    assert_eq!(v["clean_subject"], "Printer");
    assert_eq!(v["ticket_tag"], "TKT-5");
    assert_eq!(v["reply_token"], "tok123");
    assert_eq!(v["classification"], "human");
    assert_eq!(v["reply_text"], "Thanks!");
    assert_eq!(v["in_reply_to"], serde_json::json!(["<n1@postdesk>"]));
    for key in [
        "to",
        "cc",
        "subject",
        "message_id",
        "references",
        "bounce",
        "body_text",
        "attachments",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    std::fs::write(dir.path().join("junk.bin"), [0u8, 1, 2, 3, 255]).unwrap();
    let out = postdesk(dir.path())
        .args(["inspect", "--json", "junk.bin"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "not_a_mail");
}

#[test]
fn ingest_takes_a_pipe_with_mta_exit_codes() {
    let dir = dir_with_support_mailbox();
    let ingest = |mail: &[u8], mailbox: &str| {
        let mut child = postdesk(dir.path())
            .args(["ingest", "--mailbox", mailbox])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(mail).unwrap();
        child.wait_with_output().unwrap()
    };
    let opens = |mail: &[u8]| {
        let out = ingest(mail, "support");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(err.contains("Opened"), "{err}");
    };
    let mail = b"From: jane@example.org\r\nTo: support@example.test\r\nSubject: Piped\r\nMessage-ID: <p1@example.org>\r\n\r\nhello\r\n";
    opens(mail);
    let again = ingest(mail, "support");
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already stored"));
    // An MTA pipes bare-LF mail; a date ending in "UT" once hid the From
    // after it from the parser, and the mail was quarantined.
    let lf = b"Date: Sat, 22 Apr 2006 17:14:50 UT\nFrom: Jane <jane@example.org>\nTo: support@example.test\nSubject: Piped with LF\nMessage-ID: <lf1@example.org>\n\nhello\n";
    opens(lf);
    let junk = ingest(b"\x00\x01 not a mail", "support");
    assert_eq!(
        junk.status.code(),
        Some(65),
        "{}",
        String::from_utf8_lossy(&junk.stderr)
    );
    let unknown = ingest(mail, "nope");
    assert_eq!(
        unknown.status.code(),
        Some(75),
        "an unknown mailbox keeps the mail with the MTA"
    );
    let list = postdesk(dir.path())
        .args(["quarantine", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("unreadable mail"), "{text}");

    // `postdesk status`: no daemon runs, nothing waits, the junk is quarantined.
    let status = crate::helpers::succeed(postdesk(dir.path()).args(["status", "--json"]));
    let view: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(view["daemons"], serde_json::json!([]), "{view}");
    assert_eq!(view["mailboxes"][0]["name"], "support", "{view}");
    assert_eq!(view["mailboxes"][0]["holder"], serde_json::Value::Null);
    assert_eq!(view["queues"]["unprocessed"], 0, "{view}");
    assert_eq!(view["queues"]["quarantined"], 1, "{view}");
    let text = crate::helpers::succeed(postdesk(dir.path()).arg("status")).stdout;
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("none running") && text.contains("quarantined      1"),
        "{text}"
    );
}

#[test]
fn import_reads_mbox_and_maildir_silently_and_only_once() {
    let dir = dir_with_support_mailbox();
    let mut mbox = String::new();
    for i in 0..30 {
        mbox.push_str(&format!(
            "From sender@example.org Mon Jan  5 10:00:00 2026\nFrom: user{i}@example.org\nTo: support@example.test\nSubject: Old request {i}\nMessage-ID: <old-{i}@example.org>\n\nBody {i}\n>From the archive\n\n"
        ));
    }
    std::fs::write(dir.path().join("backlog.mbox"), mbox).unwrap();
    let maildir = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::write(maildir.join("cur/1.a"), "From: user3@example.org\nSubject: Re: Old request 3\nIn-Reply-To: <old-3@example.org>\nMessage-ID: <md-1@example.org>\n\nfollow-up\n").unwrap();
    std::fs::write(maildir.join("new/2.b"), "\u{0}junk").unwrap();
    let run = |path: &str| {
        postdesk(dir.path())
            .args(["import", "--mailbox", "support", path])
            .output()
            .unwrap()
    };
    let out = run("backlog.mbox");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("read 30 messages: 30 stored, 0 already there")
    );
    let again = run("backlog.mbox");
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("30 already there"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    let out = run("Maildir");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("read 2 messages: 2 stored") && text.contains("1 in quarantine"),
        "{text}"
    );
    // 30 tickets, the requester's follow-up threaded onto #4, no receipts queued (silent).
    let db = dir.path().join("postdesk.db");
    let check = Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute('select count(*) from tickets').fetchone()[0], c.execute('select count(*) from outbox').fetchone()[0], c.execute(\"select count(*) from messages m join tickets t on t.id=m.ticket_id where t.number=4 and m.kind='reply'\").fetchone()[0])", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "30 0 2");
}

#[test]
fn the_example_configurations_parse() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["postdesk.example.toml", "postdesk.cluster.example.toml"] {
        let out = postdesk(root)
            .arg("check-config")
            .env("POSTDESK_CONFIG", root.join("deploy").join(file))
            .output()
            .unwrap();
        // Everything parses; only the key file, which lives on the server, is missing.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("security.secret_key") && err.contains("/etc/postdesk/secret_key"),
            "{file}: {err}"
        );
    }
}
