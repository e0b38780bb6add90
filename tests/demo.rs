//! The quick start as a newcomer runs it: `scripts/demo` on its own ports and
//! state folder builds the release binary, starts Dovecot, Postfix and the
//! daemon, and prints the login; a mail sent to the demo address through
//! Postfix becomes a ticket visible through the API, and its receipt lands in
//! the sender's mailbox. A test binary of its own, so that its release build
//! never competes with the timing-sensitive integration tests.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const PORT: u16 = 38080;

fn demo(args: &[&str], state: &PathBuf) -> std::process::Output {
    Command::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/demo"))
        .args(args)
        .env("POSTDESK_DEMO_DIR", state)
        .env("POSTDESK_DEMO_PORT", PORT.to_string())
        .env("MAILSTACK_IMAP_PORT", "38143")
        .env("MAILSTACK_IMAPS_PORT", "38993")
        .env("MAILSTACK_LMTP_PORT", "38024")
        .env("MAILSTACK_SMTP_PORT", "38025")
        .env("MAILSTACK_SMTPS_PORT", "38465")
        .env("MAILSTACK_AUTH_PORT", "38026")
        .output()
        .expect("scripts/demo runs")
}

/// Stops the demo however the test ends.
struct Stop(PathBuf);
impl Drop for Stop {
    fn drop(&mut self) {
        let _ = demo(&["stop"], &self.0);
    }
}

#[tokio::test]
async fn the_quick_start_brings_up_a_working_demo() {
    let state = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/demo-test");
    let _ = std::fs::remove_dir_all(&state);
    let _stop = Stop(state.clone());
    let out = demo(&[], &state);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "scripts/demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("http://127.0.0.1:{PORT}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("admin login:  admin@example.test / "),
        "{stdout}"
    );
    assert!(stdout.contains("scripts/demo stop"), "{stdout}");
    // The printed admin login signs in to the printed console.
    let password = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("admin login:  admin@example.test / "))
        .expect("the admin password is printed")
        .trim()
        .to_string();
    assert!(
        stdout.contains(&format!("http://127.0.0.1:{PORT}/console")),
        "{stdout}"
    );
    let signed_in = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("http://127.0.0.1:{PORT}/console/login"))
        .form(&[
            ("email", "admin@example.test"),
            ("password", password.as_str()),
            ("next", "/console"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status().as_u16(), 303, "the admin login works");
    let token = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("API token:"))
        .expect("the API token is printed")
        .trim()
        .to_string();

    // Send a mail the way the printed one-liner does: SMTP to Postfix.
    use lettre::transport::smtp::client::AsyncSmtpConnection;
    use lettre::transport::smtp::extension::ClientId;
    let mut smtp = AsyncSmtpConnection::connect_tokio1(
        ("127.0.0.1", 38025),
        Some(Duration::from_secs(10)),
        &ClientId::Domain("newcomer.test".into()),
        None,
        None,
    )
    .await
    .expect("the demo's Postfix listens");
    let envelope = lettre::address::Envelope::new(
        Some("you@example.org".parse().unwrap()),
        vec!["support@example.test".parse().unwrap()],
    )
    .unwrap();
    smtp.send(
        &envelope,
        b"From: you@example.org\r\nTo: support@example.test\r\nSubject: Hello from the quick start\r\n\r\nIt works!\r\n",
    )
    .await
    .expect("Postfix accepts the mail");

    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let ticket = loop {
        let list: serde_json::Value = http
            .get(format!("http://127.0.0.1:{PORT}/api/v1/tickets"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(t) = list["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["subject"] == "Hello from the quick start")
        {
            assert_eq!(list["total"], 4, "the three samples and this one");
            break t.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the mail never became a ticket: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ticket["requester"]["email"], "you@example.org");
    let inbox = state.join("mailstack/mail/example.org/you/Maildir/new");
    while std::fs::read_dir(&inbox).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(
            Instant::now() < deadline,
            "no receipt reached you@example.org"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
