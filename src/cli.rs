//! One short function per subcommand. The only place besides `main` that
//! uses `anyhow`, to add context a person can act on.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

use crate::app::{App, open_store};
use crate::config::{LogFormat, Settings};
use crate::domain::{EmailAddress, Role};
use crate::secrets;
use crate::store::{NewUser, now_millis};

/// postdesk: an email-driven help desk.
#[derive(Debug, Parser)]
#[command(name = "postdesk", version, about)]
pub struct Cli {
    /// Configuration file (default: ./postdesk.toml if present).
    #[arg(long, global = true, env = "POSTDESK_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: web server, scheduler, mailbox pollers, outbox worker.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the effective configuration with secrets masked; fail on an invalid one.
    CheckConfig,
    /// Manage staff accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Take one mail from standard input (for an MTA pipe): exit 0 when it is
    /// stored and processed, 75 on a transient fault (retry), 65 when it can
    /// never be processed (it is kept in quarantine).
    Ingest {
        /// The mailbox the mail was addressed to.
        #[arg(long)]
        mailbox: String,
        /// Record without notifying anyone.
        #[arg(long)]
        silent: bool,
    },
    /// Import a backlog from an mbox file or a Maildir, silently unless --notify.
    Import {
        /// The mailbox the mail belongs to.
        #[arg(long)]
        mailbox: String,
        /// Send receipts and notifications as if the mail had just arrived.
        #[arg(long)]
        notify: bool,
        /// An mbox file or a Maildir folder.
        path: PathBuf,
    },
    /// Mail that could not be processed.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Notification mail: what is queued, sent, failed or held back.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Support mailboxes (also declared in the config file as [[mailboxes]]).
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// Which daemons are alive, who polls each mailbox, queue depths and
    /// the oldest unprocessed and unsent mail.
    Status {
        /// Print JSON (the same document as `/readyz` minus the database check).
        #[arg(long)]
        json: bool,
    },
    /// Show how the gateway reads one mail, without storing anything.
    Inspect {
        /// Print the stable JSON form.
        #[arg(long)]
        json: bool,
        /// The support address the mail arrived at (for the plus-address token).
        #[arg(long)]
        mailbox: Option<String>,
        /// The .eml file (`-` for standard input).
        file: PathBuf,
    },
}

/// `postdesk user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an agent or admin account.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "agent")]
        role: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Read the password from the first line of standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Create an API token for an account and print it once.
    Token {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "cli")]
        label: String,
    },
}

/// `postdesk mailbox …`
#[derive(Debug, Subcommand)]
pub enum MailboxCommand {
    /// Add a mailbox (or replace the settings of one with the same name).
    Add(Box<MailboxArgs>),
    /// List mailboxes with their state and last error.
    List,
    /// Show one mailbox's settings (secrets masked) and state.
    Show { name: String },
    /// Connect, log in and look at the folder, read-only.
    Test { name: String },
    /// Stop polling a mailbox.
    Pause { name: String },
    /// Poll a paused mailbox again.
    Resume { name: String },
    /// Forget a mailbox (its tickets and stored mail stay).
    Remove { name: String },
}

/// The settings of `postdesk mailbox add`.
#[derive(Debug, clap::Args)]
pub struct MailboxArgs {
    #[arg(long)]
    name: String,
    /// The support address (where requesters write).
    #[arg(long)]
    address: String,
    #[arg(long)]
    imap_host: String,
    #[arg(long, default_value_t = 993)]
    imap_port: u16,
    /// implicit, starttls or none (loopback only).
    #[arg(long, default_value = "implicit")]
    tls: String,
    #[arg(long)]
    username: String,
    /// Read the password from this environment variable at run time.
    #[arg(long, conflicts_with_all = ["password_file", "password_stdin"])]
    password_env: Option<String>,
    /// Read the password from this file at run time.
    #[arg(long, conflicts_with = "password_stdin")]
    password_file: Option<PathBuf>,
    /// Read the password from standard input now and store it in the database.
    #[arg(long)]
    password_stdin: bool,
    #[arg(long, default_value = "INBOX")]
    folder: String,
    /// seen, delete or move:<folder>.
    #[arg(long, default_value = "seen")]
    after: String,
    /// now, backlog or backlog-silent.
    #[arg(long, default_value = "now")]
    start: String,
    /// Poll instead of using IDLE.
    #[arg(long)]
    no_idle: bool,
    #[arg(long, default_value = "30s")]
    poll_interval: String,
    /// Accept mail to support+TOKEN@ addresses.
    #[arg(long)]
    plus_addressing: bool,
    /// An authserv-id whose Authentication-Results verify senders (repeatable).
    #[arg(long = "trust-authserv-id")]
    trust_authserv_id: Vec<String>,
    /// Trust the topmost Authentication-Results header (Microsoft 365).
    #[arg(long)]
    trust_topmost_results: bool,
    /// Check DKIM, SPF and DMARC in process where no trusted server stamps results.
    #[arg(long)]
    verify_in_process: bool,
    /// The mailbox's own receiving server, as its Received lines name it (for SPF; repeatable).
    #[arg(long = "received-by")]
    received_by: Vec<String>,
}

/// `postdesk quarantine …`
#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined mails with their reasons.
    List,
    /// Show one quarantined mail as the gateway reads it.
    Show { id: i64 },
    /// Process a quarantined mail again (after a fix).
    Retry { id: i64 },
    /// Give up on a quarantined mail (it stays stored, marked discarded).
    Discard { id: i64 },
}

/// `postdesk outbox …`
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List notifications, newest first.
    List {
        /// Only this state: queued, sent, failed, held or suppressed.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Queue failed notifications again: one by id, or every failed one.
    Retry {
        /// The notification to requeue (failed, held or suppressed).
        id: Option<i64>,
        /// Requeue every failed notification.
        #[arg(long, conflicts_with = "id")]
        all_failed: bool,
    },
}

/// Why the CLI failed, as far as the exit code cares.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigProblem(pub String);

/// A fault that may pass: the caller should retry (exit status 75, EX_TEMPFAIL).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TempFail(pub String);

/// Input that can never be processed (exit status 65, EX_DATAERR).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DataError(pub String);

fn load(cli: &Cli) -> Result<Settings> {
    Settings::load(cli.config.as_deref())
        .map_err(|e| anyhow::Error::new(ConfigProblem(e.to_string())))
}

/// Starts logging as the settings say; `RUST_LOG` overrides the level.
pub fn init_logging(settings: &Settings) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<()> {
    let settings = load(&cli)?;
    match &cli.command {
        Command::CheckConfig => check_config(&settings),
        Command::Migrate => migrate(&settings).await,
        Command::Serve => serve(settings).await,
        Command::User(UserCommand::Add {
            email,
            role,
            name,
            password_stdin,
        }) => user_add(&settings, email, role, name, *password_stdin).await,
        Command::User(UserCommand::Token { email, label }) => {
            user_token(&settings, email, label).await
        }
        Command::Ingest { mailbox, silent } => ingest(&settings, mailbox, *silent).await,
        Command::Quarantine(q) => quarantine(&settings, q).await,
        Command::Outbox(o) => outbox(&settings, o).await,
        Command::Import {
            mailbox,
            notify,
            path,
        } => import(&settings, mailbox, *notify, path).await,
        Command::Mailbox(m) => mailbox(&settings, m).await,
        Command::Status { json } => status(&settings, *json).await,
        Command::Inspect {
            json,
            mailbox,
            file,
        } => inspect(&settings, *json, mailbox.as_deref(), file),
    }
}

fn check_config(settings: &Settings) -> Result<()> {
    crate::outbox::Templates::load(settings.outbound.templates.as_deref())
        .map_err(|e| anyhow::Error::new(ConfigProblem(e.to_string())))?;
    print!("{}", settings.to_masked_toml());
    eprintln!("configuration is valid");
    Ok(())
}

async fn migrate(settings: &Settings) -> Result<()> {
    open_store(settings)
        .await
        .context("migrating the database")?;
    eprintln!("database is up to date");
    Ok(())
}

async fn serve(settings: Settings) -> Result<()> {
    // Listen for SIGTERM before anything else: one that arrives while the
    // database migrates still means a clean stop (exit 0), not death by signal.
    let stop = StopSignal::listen();
    init_logging(&settings);
    let app = App::build(settings).await.context("starting postdesk")?;
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        stop.wait().await;
        trigger.cancel();
    });
    app.run(shutdown).await.context("running postdesk")
}

/// SIGTERM or SIGINT (Ctrl-C), registered when created.
struct StopSignal {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl StopSignal {
    fn listen() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        StopSignal {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    async fn wait(mut self) {
        let term = async {
            match &mut self.term {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        let int = async {
            match &mut self.int {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = term => {}
            _ = int => {}
        }
    }
}

async fn user_add(
    settings: &Settings,
    email: &str,
    role: &str,
    name: &str,
    password_stdin: bool,
) -> Result<()> {
    let email: EmailAddress = email.parse()?;
    let role: Role = role.parse()?;
    let (password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        if password.chars().count() < 10 {
            bail!("the password must have at least 10 characters");
        }
        (password, false)
    } else {
        (secrets::new_password(), true)
    };
    let store = open_store(settings).await.context("opening the database")?;
    if store.user_by_email(&email).await?.is_some() {
        bail!("an account with the address {email} already exists");
    }
    let password_hash = secrets::hash_password(&password)?;
    let user = store
        .insert_user(
            &NewUser {
                email,
                name: name.to_string(),
                role,
                password_hash,
            },
            now_millis(),
        )
        .await?;
    println!(
        "created {} {} (id {})",
        user.role.as_str(),
        user.email,
        user.id
    );
    if generated {
        println!("password: {password}");
        if std::io::stdout().is_terminal() {
            eprintln!("(shown once; it is stored only as a hash)");
        }
    }
    Ok(())
}

async fn user_token(settings: &Settings, email: &str, label: &str) -> Result<()> {
    let email: EmailAddress = email.parse()?;
    let store = open_store(settings).await.context("opening the database")?;
    let user = store
        .user_by_email(&email)
        .await?
        .with_context(|| format!("no account has the address {email}"))?;
    let token = secrets::new_api_token();
    store
        .insert_api_token(user.id, &secrets::token_digest(&token), label, now_millis())
        .await?;
    println!("{token}");
    Ok(())
}

fn inspect(
    settings: &Settings,
    json: bool,
    mailbox: Option<&str>,
    file: &std::path::Path,
) -> Result<()> {
    use std::io::Read;
    let mailbox: Option<EmailAddress> = mailbox.map(str::parse).transpose()?;
    let mut raw = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(crate::mail::MAX_MAIL_BYTES as u64 + 1)
            .read_to_end(&mut raw)?;
    } else {
        std::fs::File::open(file)
            .with_context(|| format!("opening {}", file.display()))?
            .take(crate::mail::MAX_MAIL_BYTES as u64 + 1)
            .read_to_end(&mut raw)?;
    }
    match crate::mail::inspect::inspect(&raw, &settings.tickets.prefix, mailbox.as_ref()) {
        Ok(i) if json => println!("{}", serde_json::to_string_pretty(&i)?),
        Ok(i) => print!("{}", crate::mail::inspect::render_text(&i)),
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "error": { "code": "not_a_mail", "message": e.to_string() } })
                );
            }
            return Err(DataError(format!("{}: {e}", file.display())).into());
        }
    }
    Ok(())
}

fn read_limited(reader: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut raw = Vec::new();
    reader
        .take(crate::mail::MAX_MAIL_BYTES as u64 + 1)
        .read_to_end(&mut raw)?;
    Ok(raw)
}

async fn processor_for(
    settings: &Settings,
    store: &crate::store::Store,
) -> Result<crate::gateway::processor::Processor> {
    let key = crate::gateway::signing_key(settings, store).await?;
    let actions =
        crate::actions::Actions::new(store.clone(), std::sync::Arc::new(settings.clone()));
    Ok(crate::gateway::processor::Processor::new(
        actions,
        key,
        format!("cli-{}", std::process::id()),
    ))
}

async fn ingest(settings: &Settings, mailbox: &str, silent: bool) -> Result<()> {
    use crate::gateway::processor::Disposition;
    use crate::store::inbound::Stored;
    let temp = |what: &str, e: &dyn std::fmt::Display| {
        anyhow::Error::new(TempFail(format!("{what}: {e}")))
    };
    let raw = read_limited(std::io::stdin().lock()).map_err(|e| temp("reading the mail", &e))?;
    let store = open_store(settings)
        .await
        .map_err(|e| temp("opening the database", &e))?;
    let Some(mb) = store
        .mailbox_by_name(mailbox)
        .await
        .map_err(|e| temp("reading mailboxes", &e))?
    else {
        return Err(TempFail(format!(
            "no mailbox is named `{mailbox}`; the mail stays with the MTA"
        ))
        .into());
    };
    let key = crate::mail::parse(&raw)
        .ok()
        .and_then(|m| m.message_id)
        .unwrap_or_else(|| {
            format!(
                "sha256:{}",
                secrets::token_digest(&String::from_utf8_lossy(&raw))
            )
        });
    let now = now_millis();
    let mut tx = store
        .begin()
        .await
        .map_err(|e| temp("storing the mail", &e))?;
    let stored = tx
        .store_raw(Some(mb.id), &key, &raw, silent, now)
        .await
        .map_err(|e| temp("storing the mail", &e))?;
    tx.commit()
        .await
        .map_err(|e| temp("storing the mail", &e))?;
    let id = match stored {
        Stored::Duplicate(id) => {
            eprintln!("already stored as inbound mail {id}");
            return Ok(());
        }
        Stored::New(id) => id,
    };
    let processor = processor_for(settings, &store)
        .await
        .map_err(|e| temp("preparing", &e))?;
    match processor.process_id(id, now).await {
        // A running daemon took it: it is stored, which is all the MTA needs.
        Ok(None) => Ok(()),
        Ok(Some(Disposition::Quarantined(reason))) => {
            Err(DataError(format!("quarantined as {id}: {reason}")).into())
        }
        Ok(Some(d)) => {
            eprintln!("inbound mail {id}: {d:?}");
            Ok(())
        }
        // Stored: the daemon retries it; the MTA need not.
        Err(e) => {
            eprintln!("stored as inbound mail {id}; processing will be retried: {e}");
            Ok(())
        }
    }
}

async fn quarantine(settings: &Settings, command: &QuarantineCommand) -> Result<()> {
    let store = open_store(settings).await.context("opening the database")?;
    match command {
        QuarantineCommand::List => {
            let list = store.quarantined(1_000).await?;
            if list.is_empty() {
                println!("no quarantined mail");
            }
            for q in list {
                let when = crate::domain::rfc3339(q.received_at);
                println!(
                    "{:>6}  {}  {:<12} {:>8} B  {}",
                    q.id,
                    when,
                    q.mailbox.unwrap_or_default(),
                    q.size,
                    q.reason
                );
            }
        }
        QuarantineCommand::Show { id } => {
            let (state, reason, raw) = store
                .inbound(*id)
                .await?
                .with_context(|| format!("no inbound mail {id}"))?;
            println!("state:  {state}\nreason: {}", reason.unwrap_or_default());
            match crate::mail::inspect::inspect(&raw, &settings.tickets.prefix, None) {
                Ok(i) => print!("{}", crate::mail::inspect::render_text(&i)),
                Err(e) => println!("not readable: {e}"),
            }
        }
        QuarantineCommand::Retry { id } => {
            if !store.retry_quarantined(*id).await? {
                bail!("inbound mail {id} is not in quarantine");
            }
            let processor = processor_for(settings, &store).await?;
            let now = now_millis();
            match processor.process_id(*id, now).await? {
                Some(d) => println!("{d:?}"),
                None => println!("queued again; the running daemon will process it"),
            }
        }
        QuarantineCommand::Discard { id } => {
            if !store.discard_quarantined(*id).await? {
                bail!("inbound mail {id} is not in quarantine");
            }
            println!("discarded {id}");
        }
    }
    Ok(())
}

async fn outbox(settings: &Settings, command: &OutboxCommand) -> Result<()> {
    let store = open_store(settings).await.context("opening the database")?;
    match command {
        OutboxCommand::List { state, limit } => {
            if let Some(s) = state
                && !crate::store::outbox::STATES.contains(&s.as_str())
            {
                bail!(
                    "unknown state `{s}`: use one of {}",
                    crate::store::outbox::STATES.join(", ")
                );
            }
            let rows = store.outbox_list(state.as_deref(), *limit).await?;
            if rows.is_empty() {
                println!("no notifications");
            }
            for r in rows {
                println!(
                    "{:>7}  {}  {:<10} {:<16} {:<32} attempts {}  {}",
                    r.id,
                    crate::domain::rfc3339(r.created_at),
                    r.state,
                    r.notice,
                    r.recipient,
                    r.attempts,
                    r.last_error.unwrap_or_default()
                );
            }
        }
        OutboxCommand::Retry { id, all_failed } => {
            if id.is_none() && !all_failed {
                bail!("name a notification id, or --all-failed");
            }
            let n = store.outbox_retry(*id, now_millis()).await?;
            if n == 0 {
                bail!("nothing to requeue");
            }
            println!("requeued {n}");
        }
    }
    Ok(())
}

async fn status(settings: &Settings, json: bool) -> Result<()> {
    let store = open_store(settings).await.context("opening the database")?;
    let view = store.status(now_millis()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    println!("daemons:");
    if view.daemons.is_empty() {
        println!("  none running");
    }
    for d in &view.daemons {
        println!("  {:<32} polls {}", d.name, d.mailboxes.join(", "));
    }
    println!("mailboxes:");
    for m in &view.mailboxes {
        let state = match (&m.last_error, m.paused) {
            (_, true) => "paused".to_string(),
            (Some(e), _) => format!("failing: {e}"),
            (None, _) => "ok".to_string(),
        };
        println!(
            "  {:<24} {:<32} {state}",
            m.name,
            m.holder.as_deref().unwrap_or("(no daemon)")
        );
    }
    let q = &view.queues;
    let since = |t: &Option<String>| {
        t.as_ref()
            .map(|t| format!(", oldest {t}"))
            .unwrap_or_default()
    };
    println!("queues:");
    println!(
        "  unprocessed mail {}{}",
        q.unprocessed,
        since(&q.oldest_unprocessed_at)
    );
    println!("  quarantined      {}", q.quarantined);
    println!(
        "  unsent mail      {}{}",
        q.unsent,
        since(&q.oldest_unsent_at)
    );
    println!("  failed mail      {}", q.failed);
    Ok(())
}

fn mailbox_settings(a: &MailboxArgs) -> Result<crate::config::MailboxSettings> {
    use crate::config::{Account, MailboxSettings, Secret};
    let password = if let Some(var) = &a.password_env {
        Some(Secret::Env { env: var.clone() })
    } else if let Some(file) = &a.password_file {
        Some(Secret::File { file: file.clone() })
    } else if a.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password")?;
        Some(Secret::Inline(
            line.trim_end_matches(['\r', '\n']).to_string(),
        ))
    } else {
        None
    };
    let m = MailboxSettings {
        name: a.name.clone(),
        address: a.address.parse()?,
        folder: a.folder.clone(),
        after: a
            .after
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--after: {e}"))?,
        idle: !a.no_idle,
        poll_interval: a.poll_interval.parse()?,
        start: serde_json::from_value(serde_json::Value::String(a.start.clone()))
            .map_err(|_| anyhow::anyhow!("--start must be now, backlog or backlog-silent"))?,
        plus_addressing: a.plus_addressing,
        imap: Account {
            host: a.imap_host.clone(),
            port: a.imap_port,
            tls: serde_json::from_value(serde_json::Value::String(a.tls.clone()))
                .map_err(|_| anyhow::anyhow!("--tls must be implicit, starttls or none"))?,
            username: a.username.clone(),
            password,
            ca_file: None,
            oauth2: None,
        },
        smtp: None,
        default_category: None,
        default_priority: None,
        default_assignee: None,
        trusted_authserv_ids: a.trust_authserv_id.clone(),
        trust_topmost_results: a.trust_topmost_results,
        verify_in_process: a.verify_in_process,
        received_by: a.received_by.clone(),
    };
    m.check()
        .map_err(|e| anyhow::Error::new(ConfigProblem(e.replace("mailboxes[0].", "--"))))?;
    Ok(m)
}

async fn mailbox(settings: &Settings, command: &MailboxCommand) -> Result<()> {
    let store = open_store(settings).await.context("opening the database")?;
    let need = |found: bool, name: &str| {
        if found {
            Ok(())
        } else {
            Err(anyhow::anyhow!("no mailbox is named `{name}`"))
        }
    };
    match command {
        MailboxCommand::Add(args) => {
            let m = mailbox_settings(args)?;
            let id = store.upsert_mailbox(&m, false, now_millis()).await?;
            println!(
                "mailbox {} ({}) saved as {id}; a running daemon picks it up within 10 seconds",
                m.name, m.address
            );
        }
        MailboxCommand::List => {
            for m in store.mailboxes().await? {
                let state = if m.paused {
                    "paused".to_string()
                } else if let Some(e) = &m.last_error {
                    format!(
                        "ERROR since {}: {e}",
                        m.last_error_at
                            .map(crate::domain::rfc3339)
                            .unwrap_or_default()
                    )
                } else if let Some(ok) = m.last_ok_at {
                    format!("ok at {}", crate::domain::rfc3339(ok))
                } else {
                    "not polled yet".to_string()
                };
                println!(
                    "{:<16} {:<32} {}:{} {:<8} {state}",
                    m.name,
                    m.settings.address,
                    m.settings.imap.host,
                    m.settings.imap.port,
                    m.settings.folder
                );
            }
        }
        MailboxCommand::Show { name } => {
            let m = store
                .mailbox_by_name(name)
                .await?
                .with_context(|| format!("no mailbox is named `{name}`"))?;
            print!(
                "{}",
                toml::to_string_pretty(&m.settings).unwrap_or_default()
            );
            println!(
                "\n# state\n# paused = {}\n# uidvalidity = {:?}\n# last_uid = {:?}\n# last_error = {:?}",
                m.paused, m.uidvalidity, m.last_uid, m.last_error
            );
        }
        MailboxCommand::Test { name } => {
            let m = store
                .mailbox_by_name(name)
                .await?
                .with_context(|| format!("no mailbox is named `{name}`"))?;
            let p = crate::gateway::imap::probe(
                &m.settings.imap,
                Some(&crate::oauth::Tokens::new(store.clone())),
                &m.settings.folder,
            )
            .await
            .with_context(|| format!("testing mailbox {name}"))?;
            println!(
                "ok: logged in as {}, folder {} holds {} messages (UIDVALIDITY {:?}); IDLE {}, MOVE {}",
                m.settings.imap.username,
                m.settings.folder,
                p.messages,
                p.uidvalidity,
                if p.idle { "yes" } else { "no" },
                if p.r#move { "yes" } else { "no" }
            );
        }
        MailboxCommand::Pause { name } => need(store.set_mailbox_paused(name, true).await?, name)?,
        MailboxCommand::Resume { name } => {
            need(store.set_mailbox_paused(name, false).await?, name)?
        }
        MailboxCommand::Remove { name } => need(store.remove_mailbox(name).await?, name)?,
    }
    Ok(())
}

async fn import(
    settings: &Settings,
    mailbox: &str,
    notify: bool,
    path: &std::path::Path,
) -> Result<()> {
    use crate::gateway::import::{Source, progress_line};
    use std::io::Write;
    let store = open_store(settings).await.context("opening the database")?;
    let mb = store
        .mailbox_by_name(mailbox)
        .await?
        .with_context(|| format!("no mailbox is named `{mailbox}`"))?;
    let mut source = Source::open(path)?;
    let total = source.len_hint();
    let processor = processor_for(settings, &store).await?;
    let (mut read, mut stored, mut duplicates) = (0usize, 0usize, 0usize);
    let mut stderr = std::io::stderr();
    loop {
        // Store up to 200 messages in one transaction, then process them.
        let mut tx = store.begin().await?;
        let mut batch = 0;
        while batch < 200 {
            let Some(raw) = source.next_message()? else {
                break;
            };
            read += 1;
            batch += 1;
            let key = format!("sha256:{}", secrets::bytes_digest(&raw));
            match tx
                .store_raw(Some(mb.id), &key, &raw, !notify, now_millis())
                .await?
            {
                crate::store::inbound::Stored::New(_) => stored += 1,
                crate::store::inbound::Stored::Duplicate(_) => duplicates += 1,
            }
        }
        tx.commit().await?;
        loop {
            let pass = processor.run_once(200, now_millis()).await?;
            if pass.processed + pass.quarantined == 0 {
                break;
            }
        }
        let _ = write!(stderr, "{}", progress_line(read, total));
        let _ = stderr.flush();
        if batch < 200 {
            break;
        }
    }
    eprintln!();
    let quarantined: i64 = store
        .inbound_counts()
        .await?
        .iter()
        .filter(|(state, _)| state == "quarantined")
        .map(|(_, n)| n)
        .sum();
    println!(
        "read {read} messages: {stored} stored, {duplicates} already there; {quarantined} in quarantine in all"
    );
    Ok(())
}
