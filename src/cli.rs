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

mod mail;
mod mailbox;
mod queues;
mod users;

use mail::{import, ingest, inspect};
use mailbox::mailbox;
pub use mailbox::{MailboxArgs, MailboxCommand};
pub use queues::{OutboxCommand, QuarantineCommand};
use queues::{outbox, quarantine, status};
pub use users::UserCommand;
use users::{user_add, user_token};

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
