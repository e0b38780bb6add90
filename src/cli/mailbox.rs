//! `postdesk mailbox add|list|show|test|pause|resume|remove`.

use super::*;

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

pub(super) fn mailbox_settings(a: &MailboxArgs) -> Result<crate::config::MailboxSettings> {
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

pub(super) async fn mailbox(settings: &Settings, command: &MailboxCommand) -> Result<()> {
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
