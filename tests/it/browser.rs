//! The portal in headless Chromium (tests/browser/portal.mjs, driven by
//! playwright-core): a requester follows the link of a receipt that really
//! arrived in their Dovecot mailbox, replies with a photo, closes, reopens by replying,
//! opens a new request, and a ticket made of hostile mail renders inert.
//! Screenshots at desktop and phone widths go to target/browser-shots.

use crate::helpers::{TestDb, eventually, free_port, mailbox, mailstack, spawn_app_with};
use postdesk::config::AfterAction;
use std::path::Path;

/// Fails loudly when the browser tooling is missing (scripts/ensure-browser
/// installs it; scripts/test runs that first).
fn browser_tools() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Chromium is missing: run scripts/ensure-browser"
    );
    for module in ["playwright-core", "axe-core"] {
        assert!(
            dir.join("node_modules").join(module).exists(),
            "{module} is missing: run scripts/ensure-browser"
        );
    }
    dir
}

/// Up to `n` HTML mails of ../shared/corpus (no bounce collections), their
/// senders replaced by `from` so that they land among that requester's tickets.
fn corpus_html_mails(from: &str, to: &str, n: usize) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = p.to_string_lossy().to_string();
            if p.is_dir() {
                if !["sisimai", "flufl", "rfc3834"]
                    .iter()
                    .any(|x| name.contains(x))
                {
                    dirs.push(p);
                }
            } else if name.ends_with(".eml") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let Ok(raw) = std::fs::read(f) else { continue };
        if out.len() == n || !raw.windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")) {
            continue;
        }
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 4)
            .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2));
        let Some(body_at) = split else { continue };
        let head = String::from_utf8_lossy(&raw[..body_at]).to_string();
        let mut kept = String::new();
        let mut skipping = false;
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if !skipping {
                    kept.push_str(line);
                    kept.push_str("\r\n");
                }
                continue;
            }
            let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
            skipping = matches!(
                name.as_str(),
                "from"
                    | "sender"
                    | "reply-to"
                    | "return-path"
                    | "to"
                    | "cc"
                    | "message-id"
                    | "in-reply-to"
                    | "references"
            );
            if !skipping && !line.is_empty() {
                kept.push_str(line);
                kept.push_str("\r\n");
            }
        }
        let mut mail = format!(
            "From: Ann Example <{from}>\r\nTo: {to}\r\nMessage-ID: <corpus-{i}@client.test>\r\n{kept}\r\n"
        )
        .into_bytes();
        mail.extend_from_slice(&raw[body_at..]);
        out.push(mail);
    }
    out
}

#[tokio::test]
async fn a_requester_works_a_ticket_in_the_browser() {
    browser_tools();
    let stack = mailstack();
    let (support, support_pw) = stack.user("support");
    let (ann, ann_pw) = stack.user("ann");
    let _ = stack.session(&support, &support_pw).await.logout().await;
    let port = free_port();
    let app = spawn_app_with(TestDb::sqlite(), |s| {
        let mut m = mailbox(&support, &support_pw, "INBOX", AfterAction::Seen);
        m.smtp = Some(stack.smtp_account(stack.smtp_port));
        s.mailboxes = vec![m];
        s.http.listen = format!("127.0.0.1:{port}");
        s.http.public_url = format!("http://127.0.0.1:{port}");
    })
    .await;

    let first = format!(
        "From: Ann Example <{ann}>\r\nTo: {support}\r\nSubject: Printer on fire\r\nMessage-ID: <b-1@client.test>\r\n\r\nThe printer smokes.\r\n"
    );
    stack.send(&ann, &support, first.as_bytes()).await;
    // Hostile mail from the same requester: script in subject, body, HTML
    // part and attachment name.
    let hostile = format!(
        "From: Ann Example <{ann}>\r\nTo: {support}\r\nSubject: <img src=x onerror=alert(1)> hi\r\nMessage-ID: <b-2@client.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n<p>Hello</p><script>alert(2)</script><img src=x onerror=\"alert(3)\">\
         <a href=\"javascript:alert(4)\">click</a><svg onload=alert(5)></svg>\r\n--b\r\n\
         Content-Type: text/plain; name=\"\\\"><svg onload=alert(6)>.txt\"\r\n\
         Content-Disposition: attachment; filename=\"\\\"><svg onload=alert(6)>.txt\"\r\n\r\nx\r\n--b--\r\n"
    );
    stack.send(&ann, &support, hostile.as_bytes()).await;
    eventually(60, "both receipts reach Ann", || async {
        stack.inbox(&ann, &ann_pw).await.len() == 2
    })
    .await;
    // HTML mails of the shared corpus, sent as if Ann wrote them.
    let corpus = corpus_html_mails(&ann, &support, 20);
    let mut sent = 2;
    for mail in &corpus {
        if stack.try_send(&ann, &support, mail).await {
            sent += 1;
        }
    }
    let store = app.store.clone();
    eventually(60, "every mail is processed", || async {
        let counts = store.inbound_counts().await.unwrap();
        counts
            .iter()
            .filter(|(s, _)| s != "new")
            .map(|(_, n)| n)
            .sum::<i64>()
            >= sent
    })
    .await;
    let receipt = stack
        .inbox(&ann, &ann_pw)
        .await
        .into_iter()
        .map(|raw| {
            mail_parser::MessageParser::default()
                .parse(&raw)
                .unwrap()
                .body_text(0)
                .unwrap()
                .to_string()
        })
        .find(|t| t.contains("The printer smokes."))
        .expect("the receipt of the first mail");
    let link = receipt
        .split_whitespace()
        .find(|w| w.contains("/portal/t/"))
        .expect("a portal link in the receipt")
        .to_string();
    let hostile_ref = app
        .store
        .ticket_ref_of_mail("<b-2@client.test>")
        .await
        .unwrap()
        .expect("the hostile mail is a ticket");
    // The address-wide link, as the portal's "send me a link" mails it.
    let key =
        postdesk::gateway::signing_key(&crate::helpers::settings(&TestDb::sqlite()), &app.store)
            .await
            .unwrap();
    let ann_id = app
        .store
        .requester_id_by_email(&ann)
        .await
        .unwrap()
        .expect("ann is a requester");
    let far = postdesk::store::now_millis() / 1000 + 3600;
    let base = link.split("/portal/").next().unwrap().to_string();
    let wide = format!("{base}/portal/t/{}", key.portal_token(0, ann_id, far));
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-shots");
    std::fs::create_dir_all(&out).unwrap();
    run_browser_script(
        "portal.mjs",
        vec![
            ("LINK", link),
            ("WIDE", wide),
            ("HOSTILE", hostile_ref.to_string()),
            ("OUT", out.to_string_lossy().to_string()),
        ],
    )
    .await;
    for shot in [
        "ticket",
        "reply-with-photo",
        "my-requests",
        "new-request",
        "help",
        "profile",
        "hostile",
    ] {
        for width in ["desktop", "phone"] {
            assert!(out.join(format!("{shot}-{width}.png")).exists());
        }
    }
    app.stop().await;
}

/// Runs a script of tests/browser with `env`; fails with its output unless
/// it ends well. The daemon runs on the calling test's runtime, so node is
/// waited for off it.
async fn run_browser_script(script: &str, env: Vec<(&'static str, String)>) -> String {
    let script = browser_tools().join(script);
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .envs(env)
            .output()
    })
    .await
    .unwrap()
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("\"ok\":true"), "{stdout}");
    eprintln!("browser: {stdout}");
    stdout
}

#[tokio::test]
async fn an_agent_works_the_queue_in_the_browser() {
    browser_tools();
    let stack = mailstack();
    let (support, support_pw) = stack.user("support");
    let (ann, ann_pw) = stack.user("ann");
    let (extra, extra_pw) = stack.user("billing");
    let port = free_port();
    let app = spawn_app_with(TestDb::sqlite(), |s| {
        let mut m = mailbox(&support, &support_pw, "INBOX", AfterAction::Seen);
        m.smtp = Some(stack.smtp_account(stack.smtp_port));
        s.mailboxes = vec![m];
        s.http.listen = format!("127.0.0.1:{port}");
        s.http.public_url = format!("http://127.0.0.1:{port}");
    })
    .await;
    crate::console::account(
        &app,
        "boss@example.test",
        postdesk::domain::Role::Admin,
        "boss-password-1",
    )
    .await;
    // Text, HTML and the photo the HTML shows inline (`cid:`).
    let photo = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(crate::portal::PNG)
    };
    let first = format!(
        "From: Ann Example <{ann}>\r\nTo: {support}\r\nSubject: Printer on fire\r\nMessage-ID: <c-1@client.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=\"r\"\r\n\r\n--r\r\n\
         Content-Type: multipart/alternative; boundary=\"a\"\r\n\r\n--a\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nThe printer smokes.\r\n--a\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n<p>The printer smokes.</p><p><img src=\"cid:smoke@client.test\" alt=\"the smoke\"></p>\r\n--a--\r\n--r\r\n\
         Content-Type: image/png; name=\"smoke.png\"\r\nContent-ID: <smoke@client.test>\r\n\
         Content-Disposition: inline; filename=\"smoke.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{photo}\r\n--r--\r\n"
    );
    stack.send(&ann, &support, first.as_bytes()).await;
    eventually(60, "the receipt reaches Ann", || async {
        stack.inbox(&ann, &ann_pw).await.len() == 1
    })
    .await;
    for subject in ["Invoice wrong", "Password reset"] {
        let r = app
            .http
            .post(app.url("/api/v1/tickets"))
            .bearer_auth(&app.token)
            .json(&serde_json::json!({ "requester": { "email": "bob@example.org" }, "subject": subject, "body": "Help." }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-shots");
    std::fs::create_dir_all(&out).unwrap();
    let mailbox_json = serde_json::json!({
        "name": "billing", "address": extra, "host": "127.0.0.1", "port": stack.imap_port,
        "username": extra, "password": extra_pw,
    });
    run_browser_script(
        "console.mjs",
        vec![
            ("BASE", app.url("")),
            ("EMAIL", "boss@example.test".into()),
            ("PASSWORD", "boss-password-1".into()),
            ("MAILBOX", mailbox_json.to_string()),
            ("OUT", out.to_string_lossy().to_string()),
        ],
    )
    .await;

    // What the requester sees: the reply by mail and in the portal, never the note.
    let texts = || async {
        stack
            .inbox(&ann, &ann_pw)
            .await
            .into_iter()
            .map(|raw| {
                let mail = mail_parser::MessageParser::default().parse(&raw).unwrap();
                let text = mail.body_text(0).map(|t| t.to_string()).unwrap_or_default();
                let html = mail.body_html(0).map(|t| t.to_string()).unwrap_or_default();
                format!("{text}\n{html}")
            })
            .collect::<Vec<_>>()
    };
    eventually(60, "the agent's reply reaches Ann", || async {
        texts()
            .await
            .iter()
            .any(|t| t.contains("We are sending a technician."))
    })
    .await;
    let mails = texts().await;
    assert!(
        mails.iter().all(|t| !t.contains("Secret")),
        "no mail carries the note"
    );
    let receipt = mails
        .iter()
        .find(|t| t.contains("/portal/t/"))
        .expect("a portal link");
    let link: String = receipt
        .split_whitespace()
        .find(|w| w.contains("/portal/t/"))
        .unwrap()
        .to_string();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http.get(&link).send().await.unwrap();
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let to = r.headers()["location"].to_str().unwrap().to_string();
    let portal = http
        .get(app.url(&to))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        portal.contains("We are sending a technician."),
        "the portal shows the reply"
    );
    assert!(
        !portal.contains("Secret"),
        "the portal never shows the note"
    );
    // The mailbox added in the browser is stored and polled.
    let m = app
        .store
        .mailbox_by_name("billing")
        .await
        .unwrap()
        .expect("the new mailbox");
    assert_eq!(m.settings.address.as_str(), extra);
    for shot in ["queue", "ticket", "mailboxes"] {
        for width in ["desktop", "phone"] {
            assert!(out.join(format!("console-{shot}-{width}.png")).exists());
        }
    }
    app.stop().await;
}

/// Two agents on one ticket, each in a browser signed in to a different
/// daemon of one PostgreSQL database (tests/browser/live.mjs): presence,
/// a reply appearing without reload, the question before a send over an
/// unseen message, a watched queue (issue 34, item 2).
#[tokio::test]
async fn two_agents_on_one_ticket_across_daemons() {
    use crate::console::account;
    use postdesk::domain::Role;
    browser_tools();
    let db = TestDb::postgres().await;
    let other = db.shared();
    let first = crate::helpers::spawn_app(db).await;
    let second = crate::helpers::spawn_app(other).await;
    let password = "live-password-1";
    account(&first, "alan@example.test", Role::Agent, password).await;
    account(&first, "bea@example.test", Role::Agent, password).await;
    for (email, name) in [
        ("alan@example.test", "Alan Turing"),
        ("bea@example.test", "Bea Liskov"),
    ] {
        let store = &first.store;
        let user = store
            .user_by_email(&email.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        store
            .update_user(user.id, name, Role::Agent, true, 1)
            .await
            .unwrap();
    }
    let r = first
        .http
        .post(first.url("/api/v1/tickets"))
        .bearer_auth(&first.token)
        .json(&serde_json::json!({ "requester": { "email": "ann@example.org" }, "subject": "Printer", "body": "Help." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    run_browser_script(
        "live.mjs",
        vec![
            ("BASE1", first.url("")),
            ("BASE2", second.url("")),
            ("A_EMAIL", "alan@example.test".into()),
            ("B_EMAIL", "bea@example.test".into()),
            ("PASSWORD", password.into()),
            ("REF", "TKT-1".into()),
            ("TOKEN", first.token.clone()),
        ],
    )
    .await;
    second.stop().await;
    first.stop().await;
}
