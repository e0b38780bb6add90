//! Mail from the command line: `postdesk inspect` (how the gateway reads
//! a file), `postdesk ingest` (the MTA pipe) and `postdesk import` (mbox or
//! Maildir).

use super::*;

pub(super) fn inspect(
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

pub(super) fn read_limited(reader: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut raw = Vec::new();
    reader
        .take(crate::mail::MAX_MAIL_BYTES as u64 + 1)
        .read_to_end(&mut raw)?;
    Ok(raw)
}

pub(super) async fn processor_for(
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

pub(super) async fn ingest(settings: &Settings, mailbox: &str, silent: bool) -> Result<()> {
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
    let now = now_millis();
    let stored = crate::gateway::import::store_piped(&store, mb.id, &raw, silent, now)
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

pub(super) async fn import(
    settings: &Settings,
    mailbox: &str,
    notify: bool,
    path: &std::path::Path,
) -> Result<()> {
    use crate::gateway::import::{Imported, Source, import_all, progress_line};
    use std::io::Write;
    let store = open_store(settings).await.context("opening the database")?;
    let mb = store
        .mailbox_by_name(mailbox)
        .await?
        .with_context(|| format!("no mailbox is named `{mailbox}`"))?;
    let mut source = Source::open(path)?;
    let total = source.len_hint();
    let processor = processor_for(settings, &store).await?;
    let mut stderr = std::io::stderr();
    let Imported {
        read,
        stored,
        duplicates,
    } = import_all(&store, &processor, mb.id, &mut source, !notify, |read| {
        let _ = write!(stderr, "{}", progress_line(read, total));
        let _ = stderr.flush();
    })
    .await?;
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
