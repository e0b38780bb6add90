//! Shared set-up: test databases on both backends, settings, a running app.

use postdesk::actions::Actions;
use postdesk::app::{App, open_store};
use postdesk::config::Settings;
use postdesk::domain::{Actor, EmailAddress, Role};
use postdesk::secrets;
use postdesk::store::{NewUser, Store, User};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The PostgreSQL server the tests create their databases on.
pub fn pg_admin_url() -> String {
    std::env::var("POSTDESK_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database for one test, removed when dropped (also when the test panics).
pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A new SQLite file in a temporary folder.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}", dir.path().join("postdesk.db").display());
        TestDb {
            url,
            pg_name: None,
            _dir: Some(dir),
        }
    }

    /// A new, empty PostgreSQL database. Fails loudly if PostgreSQL is not reachable.
    pub async fn postgres() -> TestDb {
        let name = format!("postdesk_t_{}", uuid::Uuid::new_v4().simple());
        let admin = pg_admin_url();
        let mut conn = connect_admin(&admin).await;
        sqlx::Executor::execute(
            &mut conn,
            sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
        )
        .await
        .expect("CREATE DATABASE");
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin.clone());
        TestDb {
            url: format!("{base}/{name}"),
            pg_name: Some(name),
            _dir: None,
        }
    }
}

impl TestDb {
    /// The same database for another daemon (removed with the first).
    pub fn shared(&self) -> TestDb {
        TestDb {
            url: self.url.clone(),
            pg_name: None,
            _dir: None,
        }
    }
}

async fn connect_admin(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {url} is required for these tests and is not reachable: {e}")
    })
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = pg_admin_url();
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut conn = connect_admin(&admin).await;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(sql)).await;
            });
        })
        .join();
    }
}

/// Settings for a test: the given database, port 0, defaults elsewhere.
pub fn settings(db: &TestDb) -> Settings {
    let mut s = Settings::load_with_env(None, Vec::new()).expect("default settings");
    s.database.url = db.url.clone();
    s.database.max_connections = 5;
    s.http.listen = "127.0.0.1:0".into();
    s.tickets.related_kinds = vec!["order".into()];
    s
}

/// A migrated store and actions over it.
pub async fn actions_for(settings: Settings) -> (Store, Actions) {
    let store = open_store(&settings)
        .await
        .expect("store opens and migrates");
    let actions = Actions::new(store.clone(), Arc::new(settings));
    (store, actions)
}

/// Creates a staff account and returns it with its actor.
pub async fn staff(store: &Store, email: &str, role: Role) -> (User, Actor) {
    let email: EmailAddress = email.parse().unwrap();
    let user = store
        .insert_user(
            &NewUser {
                email,
                name: "Staff Member".into(),
                role,
                password_hash: "x".into(),
            },
            1,
        )
        .await
        .expect("insert user");
    (
        user.clone(),
        Actor::Staff {
            user_id: user.id,
            role,
        },
    )
}

/// A running daemon on port 0.
pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Store,
    pub token: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<()>>,
    /// Keeps the database alive as long as the app.
    _db: TestDb,
}

impl TestApp {
    /// The URL of `path` on this app.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The `/metrics` page as text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Stops the daemon and waits for it to drain.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await.expect("app task");
        }
    }

    /// Stops the daemon, waits until the work it spawned is done, and
    /// hands back its database with a fresh store on it: what the store
    /// holds then is final (nothing in flight can add to it).
    pub async fn drained(mut self) -> (TestDb, Store) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await.expect("app task");
        }
        let TestApp { _db: db, .. } = self;
        let store = Store::connect(&db.url, 2, "TKT").await.unwrap();
        (db, store)
    }
}

/// Starts the daemon on `db` with an agent account and an API token.
pub async fn spawn_app(db: TestDb) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

/// As [`spawn_app`], with the settings adjusted first.
pub async fn spawn_app_with(db: TestDb, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let mut s = settings(&db);
    adjust(&mut s);
    // POSTDESK_TEST_LOG=debug shows the daemons' logs beside a failing test.
    if let Ok(level) = std::env::var("POSTDESK_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(level))
            .with_test_writer()
            .try_init();
    }
    let app = App::build(s).await.expect("app builds");
    let addr = app.local_addr();
    let store = app.store().clone();
    // A second daemon on the same database finds the account there.
    let user = match store
        .user_by_email(&"agent@example.test".parse().unwrap())
        .await
        .unwrap()
    {
        Some(u) => u,
        None => staff(&store, "agent@example.test", Role::Agent).await.0,
    };
    let token = secrets::new_api_token();
    store
        .insert_api_token(user.id, &secrets::token_digest(&token), "test", 1)
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let handle = tokio::spawn(async move { app.run(stop).await.expect("app runs") });
    TestApp {
        addr,
        store,
        token,
        http: reqwest::Client::new(),
        shutdown,
        handle: Some(handle),
        _db: db,
    }
}

/// A JSON API call with a bearer token: the status and the JSON answered
/// (null when there is none).
pub async fn call_api(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let req = app
        .http
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(token);
    let req = if body.is_null() { req } else { req.json(&body) };
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// Runs each listed async test function against SQLite and PostgreSQL
/// (PostgreSQL with the `stack` feature, as `scripts/test` runs them).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::helpers::TestDb::sqlite()).await;
            })+
        }
        #[cfg(feature = "stack")]
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::helpers::TestDb::postgres().await).await;
            })+
        }
    };
}

/// The private Dovecot the tests share, started once per run by
/// `deploy/mailstack` (installed from Debian's packages if missing).
pub struct MailStack {
    pub dir: std::path::PathBuf,
    pub imap_port: u16,
    pub lmtp_port: u16,
    pub smtp_port: u16,
    /// Postfix with implicit TLS (the certificate is `dir/cert.pem`).
    pub smtps_port: u16,
}

static MAILSTACK: std::sync::OnceLock<MailStack> = std::sync::OnceLock::new();

/// Dovecot's SASL service on the test stack (Postfix's SMTP AUTH asks it).
pub const AUTH_PORT: u16 = 31026;
/// The OAuth2 token service of the OAuth2 test (Dovecot's introspection URL).
pub const OAUTH_PORT: u16 = 31180;

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/mailstack")
}

/// Starts (once) and returns the test mail stack. Fails loudly if it cannot.
pub fn mailstack() -> &'static MailStack {
    MAILSTACK.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/mailstack-test");
        let (imap_port, imaps_port, lmtp_port, smtp_port) =
            (31143u16, 31993u16, 31024u16, 31025u16);
        let out = std::process::Command::new(script())
            .args(["start", dir.to_str().unwrap()])
            .env("MAILSTACK_IMAP_PORT", imap_port.to_string())
            .env("MAILSTACK_IMAPS_PORT", imaps_port.to_string())
            .env("MAILSTACK_LMTP_PORT", lmtp_port.to_string())
            .env("MAILSTACK_SMTP_PORT", smtp_port.to_string())
            .env("MAILSTACK_SMTPS_PORT", "31465")
            .env("MAILSTACK_AUTH_PORT", AUTH_PORT.to_string())
            .env(
                "MAILSTACK_OAUTH_URL",
                format!("http://127.0.0.1:{OAUTH_PORT}/introspect"),
            )
            .output()
            .expect("deploy/mailstack runs");
        assert!(
            out.status.success(),
            "the mail stack did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        MailStack {
            dir,
            imap_port,
            lmtp_port,
            smtp_port,
            smtps_port: 31465,
        }
    })
}

impl MailStack {
    /// A new mail user with a unique address; returns (address, password).
    pub fn user(&self, name: &str) -> (String, String) {
        let email = format!(
            "{name}-{}@example.test",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        let status = std::process::Command::new(script())
            .args(["adduser", self.dir.to_str().unwrap(), &email, &password])
            .status()
            .unwrap();
        assert!(status.success());
        (email, password)
    }

    /// Writes mails straight into `user`'s Maildir (much faster than APPEND
    /// for set-up); Dovecot gives them UIDs when the folder is next opened.
    pub fn fill_maildir(&self, user: &str, mails: &[Vec<u8>]) {
        let (local, domain) = user.split_once('@').unwrap();
        let maildir = self
            .dir
            .join("mail")
            .join(domain)
            .join(local)
            .join("Maildir");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        for (i, m) in mails.iter().enumerate() {
            std::fs::write(
                maildir
                    .join("new")
                    .join(format!("{}.fill{i}.test", 1_700_000_000 + i)),
                m,
            )
            .unwrap();
        }
        // Dovecot (as `mail`) must be able to create other users' folders in
        // the domain folder this may just have created as root.
        let domain_dir = self.dir.join("mail").join(domain);
        let user_dir = domain_dir.join(local);
        for args in [
            vec!["mail:mail", domain_dir.to_str().unwrap()],
            vec!["-R", "mail:mail", user_dir.to_str().unwrap()],
        ] {
            let status = std::process::Command::new("chown")
                .args(&args)
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    /// An IMAP session as `user` (plain, loopback).
    pub async fn session(&self, user: &str, password: &str) -> postdesk::gateway::imap::Session {
        let account = self.account(user, password);
        // A user added a moment ago may take Dovecot a moment to see.
        for _ in 0..50 {
            if let Ok(s) = postdesk::gateway::imap::connect(&account).await {
                return s;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        postdesk::gateway::imap::connect(&account)
            .await
            .expect("test IMAP login")
    }

    /// Every mail in `user`'s INBOX, oldest first.
    pub async fn inbox(&self, user: &str, password: &str) -> Vec<Vec<u8>> {
        use futures::TryStreamExt;
        let mut s = self.session(user, password).await;
        let mailbox = s.select("INBOX").await.expect("select INBOX");
        if mailbox.exists == 0 {
            let _ = s.logout().await;
            return Vec::new();
        }
        let fetched: Vec<_> = s
            .uid_fetch("1:*", "(UID BODY.PEEK[])")
            .await
            .expect("fetch")
            .try_collect()
            .await
            .expect("fetch all");
        let mut mails: Vec<(u32, Vec<u8>)> = fetched
            .iter()
            .filter_map(|f| Some((f.uid?, f.body()?.to_vec())))
            .collect();
        mails.sort_by_key(|(uid, _)| *uid);
        let _ = s.logout().await;
        mails.into_iter().map(|(_, m)| m).collect()
    }

    /// The plain loopback SMTP account of the stack's Postfix (or of
    /// another Postfix on `port`).
    pub fn smtp_account(&self, port: u16) -> postdesk::config::Account {
        postdesk::config::Account {
            host: "127.0.0.1".into(),
            port,
            tls: postdesk::config::TlsMode::None,
            username: String::new(),
            password: None,
            ca_file: None,
            oauth2: None,
        }
    }

    /// Sends a mail through the stack's Postfix, as a mail client would.
    pub async fn send(&self, from: &str, to: &str, message: &[u8]) {
        assert!(
            self.try_send(from, to, message).await,
            "Postfix accepts the mail"
        );
    }

    /// Sends a mail through the stack's Postfix; false if it refused it.
    pub async fn try_send(&self, from: &str, to: &str, message: &[u8]) -> bool {
        use lettre::transport::smtp::client::AsyncSmtpConnection;
        use lettre::transport::smtp::extension::ClientId;
        let Ok(mut c) = AsyncSmtpConnection::connect_tokio1(
            ("127.0.0.1", self.smtp_port),
            Some(std::time::Duration::from_secs(10)),
            &ClientId::Domain("client.test".into()),
            None,
            None,
        )
        .await
        else {
            return false;
        };
        let envelope =
            lettre::address::Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()])
                .unwrap();
        let ok = c.send(&envelope, message).await.is_ok();
        let _ = c.quit().await;
        ok
    }

    /// Runs a `deploy/mailstack` command for a second, private Postfix in
    /// `dir` on `port` that delivers into the shared Dovecot.
    pub fn extra_postfix(&self, command: &str, dir: &std::path::Path, port: u16) {
        let out = std::process::Command::new(script())
            .args([command, dir.to_str().unwrap()])
            .env("MAILSTACK_SMTP_PORT", port.to_string())
            .env("MAILSTACK_SMTPS_PORT", (port + 300).to_string())
            .env("MAILSTACK_AUTH_PORT", AUTH_PORT.to_string())
            .env("MAILSTACK_LMTP_PORT", self.lmtp_port.to_string())
            .output()
            .expect("deploy/mailstack runs");
        assert!(
            out.status.success(),
            "mailstack {command} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The account settings for `user`.
    pub fn account(&self, user: &str, password: &str) -> postdesk::config::Account {
        postdesk::config::Account {
            host: "127.0.0.1".into(),
            port: self.imap_port,
            tls: postdesk::config::TlsMode::None,
            username: user.into(),
            password: Some(postdesk::config::Secret::Inline(password.into())),
            ca_file: None,
            oauth2: None,
        }
    }
}

/// A mailbox on the test stack for `user`, polled every second, backlog
/// included, plus addressing on, no SMTP account (nothing is sent).
pub fn mailbox(
    user: &str,
    password: &str,
    folder: &str,
    after: postdesk::config::AfterAction,
) -> postdesk::config::MailboxSettings {
    let stack = mailstack();
    postdesk::config::MailboxSettings {
        name: "support".into(),
        address: user.parse().unwrap(),
        folder: folder.into(),
        after,
        idle: true,
        poll_interval: postdesk::domain::Span::secs(1),
        start: postdesk::config::StartMode::Backlog,
        plus_addressing: true,
        imap: stack.account(user, password),
        smtp: None,
        default_category: None,
        default_priority: None,
        default_assignee: None,
        trusted_authserv_ids: vec!["mx.support.test".into()],
        trust_topmost_results: false,
        verify_in_process: false,
        received_by: Vec::new(),
    }
}

/// Waits until `check` holds, for at most `secs` seconds (a bound on a
/// background process, not a timing assertion).
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Whether the Postfix whose state is in `dir` (see `deploy/mailstack`)
/// holds no mail in any of its queues.
pub fn postfix_queue_empty(dir: &std::path::Path) -> bool {
    fn files(p: &std::path::Path) -> usize {
        std::fs::read_dir(p).map_or(0, |entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => files(&e.path()),
                    Ok(_) => 1,
                    Err(_) => 0,
                })
                .sum()
        })
    }
    let spool = dir.join("postfix/spool");
    ["maildrop", "incoming", "active", "deferred", "hold"]
        .iter()
        .all(|q| files(&spool.join(q)) == 0)
}

/// How many stored mails the processor has dealt with (done, recorded or
/// quarantined: every state but `new`).
pub async fn settled_mails(store: &postdesk::store::Store) -> i64 {
    store
        .inbound_counts()
        .await
        .unwrap()
        .iter()
        .filter(|(state, _)| state != "new")
        .map(|(_, n)| n)
        .sum()
}

/// The real `postdesk serve`, killed if the test ends early (a failed
/// assertion must not leave it running).
pub struct Daemon(pub std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `postdesk serve` with a configuration file, quiet.
pub fn start_daemon(config: &std::path::Path) -> Daemon {
    start_daemon_logging(config, "error", std::process::Stdio::null())
}

/// Starts `postdesk serve` with a configuration file, logging at `filter`
/// (a `RUST_LOG` value) to `log`.
pub fn start_daemon_logging(
    config: &std::path::Path,
    filter: &str,
    log: impl Into<std::process::Stdio>,
) -> Daemon {
    Daemon(
        std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("serve")
            .env("POSTDESK_CONFIG", config)
            .env("RUST_LOG", filter)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// A TCP port free a moment ago, on loopback.
/// A real name server on loopback (dnsmasq, from Debian's packages,
/// installed if missing), answering the TXT records it was given and
/// "no such name" for anything else under `.example`. Stopped when dropped.
pub struct NameServer {
    pub addr: SocketAddr,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for NameServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Installs Debian's `package` with apt-get unless `path` exists; fails
/// the test, naming the package, if it cannot.
pub fn ensure_installed(path: &str, package: &str) {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let path = std::path::Path::new(path);
    if path.exists() {
        return;
    }
    let apt = |args: &[&str]| {
        std::process::Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .expect("apt-get runs")
    };
    let mut out = apt(&["install", "-y", "-qq", package]);
    if !out.status.success() {
        // A fresh machine may not have read the package lists yet.
        apt(&["update", "-qq"]);
        out = apt(&["install", "-y", "-qq", package]);
    }
    assert!(
        out.status.success() && path.exists(),
        "{package} could not be installed (apt-get install {package}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts a [`NameServer`] with `txt` records `(name, text)`.
pub fn name_server(txt: &[(&str, &str)]) -> NameServer {
    ensure_installed("/usr/sbin/dnsmasq", "dnsmasq-base");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut conf = format!(
        "port={port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\nlocal=/example/\npid-file=\nlog-facility={}\n",
        dir.path().join("dnsmasq.log").display()
    );
    for (name, text) in txt {
        conf.push_str(&format!("txt-record={name},\"{text}\"\n"));
    }
    let conf_path = dir.path().join("dnsmasq.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = std::process::Command::new("/usr/sbin/dnsmasq")
        .arg("--keep-in-foreground")
        .arg(format!("--conf-file={}", conf_path.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dnsmasq starts");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "dnsmasq did not listen on {addr}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    NameServer {
        addr,
        child,
        _dir: dir,
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `postdesk migrate` with a configuration file; fails loudly.
pub fn migrate_with(config: &std::path::Path) {
    succeed(
        std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("migrate")
            .env("POSTDESK_CONFIG", config),
    );
}

/// Runs a command to its end; fails the test with its stderr unless it exits 0.
pub fn succeed(command: &mut std::process::Command) -> std::process::Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        command,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
