//! The queues an operator looks after: `postdesk quarantine`, `postdesk
//! outbox` and `postdesk status`.

use super::mail::processor_for;
use super::*;

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

pub(super) async fn quarantine(settings: &Settings, command: &QuarantineCommand) -> Result<()> {
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

pub(super) async fn outbox(settings: &Settings, command: &OutboxCommand) -> Result<()> {
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

pub(super) async fn status(settings: &Settings, json: bool) -> Result<()> {
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
