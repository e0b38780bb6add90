//! Loading, layering and checking settings.
use super::*;
use std::io::Write;

fn load_str(toml: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let mut f = tempfile::NamedTempFile::with_suffix(".toml").unwrap();
    f.write_all(toml.as_bytes()).unwrap();
    Settings::load_with_env(
        Some(f.path()),
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

#[test]
fn runs_with_no_file_at_all() {
    let s = Settings::load_with_env(None, Vec::new()).unwrap();
    assert_eq!(s.database.url, "sqlite://postdesk.db");
    assert_eq!(s.http.listen, "127.0.0.1:8080");
    assert_eq!(s.tickets.prefix, "TKT");
    assert_eq!(s.tickets.auto_close_after, Span::days(7));
}

#[test]
fn the_spec_example_loads_and_env_overrides_it() {
    let toml = r#"
[database]
url = "sqlite://x.db"
[http]
listen = "127.0.0.1:9000"
public_url = "https://help.example.test"
[tickets]
prefix = "HD"
reopen_window = "3d"
auto_close_after = "0"
[[mailboxes]]
name = "support"
address = "support@example.test"
folder = "INBOX"
after = "move:Processed"
idle = true
poll_interval = "30s"
start = "backlog-silent"
imap = { host = "imap.example.test", port = 993, tls = "implicit", username = "support", password = { env = "SUPPORT_IMAP_PASSWORD" } }
smtp = { host = "smtp.example.test", port = 587, tls = "starttls", username = "support", password = { file = "/run/secrets/smtp" } }
"#;
    let s = load_str(
        toml,
        &[
            ("POSTDESK__TICKETS__PREFIX", "SUP"),
            ("POSTDESK__HTTP__PUBLIC_URL", "https://x.example.test"),
        ],
    )
    .unwrap();
    assert_eq!(s.tickets.prefix, "SUP");
    assert_eq!(s.http.public_url, "https://x.example.test");
    assert!(s.tickets.auto_close_after.is_zero());
    let m = &s.mailboxes[0];
    assert_eq!(m.after, AfterAction::Move("Processed".into()));
    assert_eq!(m.start, StartMode::BacklogSilent);
    assert_eq!(
        m.imap.password,
        Some(Secret::Env {
            env: "SUPPORT_IMAP_PASSWORD".into()
        })
    );
}

#[test]
fn secrets_are_masked_in_output_and_debug() {
    let toml = r#"
[security]
secret_key = "a-very-secret-key-that-is-long-enough-1234"
"#;
    let s = load_str(toml, &[]).unwrap();
    let shown = s.to_masked_toml();
    assert!(!shown.contains("a-very-secret"), "{shown}");
    assert!(shown.contains("********"));
    assert!(!format!("{s:?}").contains("a-very-secret"));
    let toml = r#"
[database]
url = "postgres://desk:hunter2@db.example:5432/desk?sslmode=require&password=hunter3"
"#;
    let shown = load_str(toml, &[]).unwrap().to_masked_toml();
    assert!(!shown.contains("hunter"), "{shown}");
    assert!(
        shown.contains("postgres://desk:********@db.example:5432/desk"),
        "{shown}"
    );
}

#[test]
fn malformed_values_name_their_key() {
    let cases = [
        ("[tickets]\nprefix = \"T-1\"\n", "tickets.prefix"),
        ("[tickets]\nreopen_window = \"7x\"\n", "reopen_window"),
        ("[database]\nurl = \"mysql://x\"\n", "database.url"),
        ("[http]\nlisten = \"nowhere\"\n", "http.listen"),
        (
            "[database]\nmax_connections = \"many\"\n",
            "max_connections",
        ),
        ("[tickets]\nprefx = \"T\"\n", "prefx"),
    ];
    for (toml, key) in cases {
        let e = load_str(toml, &[]).unwrap_err().to_string();
        assert!(e.contains(key), "{toml:?} gave {e}");
    }
    let e = Settings::load_with_env(
        None,
        [("POSTDESK__TICKETS__AUTO_CLOSE_AFTER".into(), "soon".into())],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("auto_close_after"), "{e}");
}

#[test]
fn plain_imap_only_to_loopback() {
    let toml = r#"
[[mailboxes]]
name = "s"
address = "s@example.test"
imap = { host = "imap.example.test", port = 143, tls = "none" }
"#;
    let e = load_str(toml, &[]).unwrap_err().to_string();
    assert!(e.contains("mailboxes[0].imap.tls"), "{e}");
    let ok = toml.replace("imap.example.test", "127.0.0.1");
    assert!(load_str(&ok, &[]).is_ok());
}
