//! Mail handed to postdesk directly rather than fetched: one mail from an
//! MTA's pipe (`postdesk ingest`) and a backlog (`postdesk import`: an mbox
//! file or a Maildir, read one message at a time so memory stays bounded).
//! Both store under one key, [`raw_key`], through the same inbound table,
//! and are processed by the same processor as mail from IMAP. A backlog is
//! silent unless asked.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::processor::{Processor, Transient};
use crate::mail::MAX_MAIL_BYTES;
use crate::store::inbound::Stored;
use crate::store::{Store, StoreError};

/// Why a source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0} is neither an mbox file nor a Maildir (a folder with cur/ and new/)")]
    Unknown(PathBuf),
}

/// The messages of an mbox file or a Maildir, one at a time.
pub enum Source {
    Mbox {
        reader: BufReader<File>,
        pending: Option<Vec<u8>>,
        path: PathBuf,
    },
    Maildir {
        files: std::vec::IntoIter<PathBuf>,
    },
}

impl Source {
    /// Opens `path` as a Maildir (a folder with `cur/` and `new/`) or an mbox file.
    pub fn open(path: &Path) -> Result<Source, ImportError> {
        let io = |e| ImportError::Io(path.to_path_buf(), e);
        if path.is_dir() {
            if !path.join("cur").is_dir() && !path.join("new").is_dir() {
                return Err(ImportError::Unknown(path.to_path_buf()));
            }
            let mut files = Vec::new();
            for sub in ["cur", "new"] {
                let Ok(entries) = std::fs::read_dir(path.join(sub)) else {
                    continue;
                };
                for e in entries {
                    let e = e.map_err(io)?;
                    if e.file_type().map_err(io)?.is_file() {
                        files.push(e.path());
                    }
                }
            }
            files.sort();
            return Ok(Source::Maildir {
                files: files.into_iter(),
            });
        }
        let file = File::open(path).map_err(io)?;
        Ok(Source::Mbox {
            reader: BufReader::new(file),
            pending: None,
            path: path.to_path_buf(),
        })
    }

    /// How many messages a Maildir holds (mbox: unknown without reading it).
    pub fn len_hint(&self) -> Option<usize> {
        match self {
            Source::Maildir { files } => Some(files.len()),
            Source::Mbox { .. } => None,
        }
    }

    /// The next message, or `None` at the end. A message larger than the
    /// limit is cut at the limit (and will be quarantined as unreadable or too large).
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, ImportError> {
        match self {
            Source::Maildir { files } => match files.next() {
                Some(p) => std::fs::read(&p)
                    .map(Some)
                    .map_err(|e| ImportError::Io(p, e)),
                None => Ok(None),
            },
            Source::Mbox {
                reader,
                pending,
                path,
            } => {
                let mut message = pending.take();
                let mut line = Vec::new();
                loop {
                    line.clear();
                    let n = reader
                        .read_until(b'\n', &mut line)
                        .map_err(|e| ImportError::Io(path.clone(), e))?;
                    if n == 0 {
                        return Ok(message.filter(|m| !m.iter().all(u8::is_ascii_whitespace)));
                    }
                    if line.starts_with(b"From ") {
                        match message {
                            Some(m) if !m.iter().all(u8::is_ascii_whitespace) => {
                                *pending = Some(Vec::new());
                                return Ok(Some(m));
                            }
                            _ => {
                                message = Some(Vec::new());
                                continue;
                            }
                        }
                    }
                    let m = message.get_or_insert_with(Vec::new);
                    // mboxrd quoting: ">From " (and ">>From ") lose one '>'.
                    let unquoted = if line.starts_with(b">")
                        && line
                            .iter()
                            .skip_while(|b| **b == b'>')
                            .take(5)
                            .eq(b"From ".iter())
                    {
                        &line[1..]
                    } else {
                        &line[..]
                    };
                    if m.len() + unquoted.len() <= MAX_MAIL_BYTES + 1 {
                        m.extend_from_slice(unquoted);
                    }
                }
            }
        }
    }
}

/// A one-line text progress bar for stderr.
pub fn progress_line(done: usize, total: Option<usize>) -> String {
    match total {
        Some(t) if t > 0 => {
            let width = 30;
            let filled = done.min(t) * width / t;
            format!(
                "\r[{}{}] {done}/{t}",
                "#".repeat(filled),
                " ".repeat(width - filled)
            )
        }
        _ => format!("\r{done} messages"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_splits_on_from_lines_and_unquotes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("box.mbox");
        std::fs::write(
            &path,
            "From a@b Mon Jan  1 00:00:00 2026\nSubject: one\n\nbody\n>From here\n\nFrom c@d Mon Jan  1 00:00:00 2026\nSubject: two\n\nx\n",
        )
        .unwrap();
        let mut s = Source::open(&path).unwrap();
        let one = String::from_utf8(s.next_message().unwrap().unwrap()).unwrap();
        assert!(
            one.starts_with("Subject: one") && one.contains("\nFrom here"),
            "{one}"
        );
        let two = String::from_utf8(s.next_message().unwrap().unwrap()).unwrap();
        assert!(two.starts_with("Subject: two"), "{two}");
        assert!(s.next_message().unwrap().is_none());
        assert_eq!(
            progress_line(5, Some(10)),
            format!("\r[{}{}] 5/10", "#".repeat(15), " ".repeat(15))
        );
    }
}

/// The key a mail handed over directly is stored under: the digest of its
/// bytes, so the same mail handed over twice (an MTA's retry, an import
/// run again) is stored once. A different mail reusing a Message-ID is
/// stored, and the processor decides what it is.
pub fn raw_key(raw: &[u8]) -> String {
    format!("sha256:{}", crate::secrets::bytes_digest(raw))
}

/// Stores one mail from an MTA's pipe for `mailbox_id`, committed before
/// the pipe is answered.
pub async fn store_piped(
    store: &Store,
    mailbox_id: i64,
    raw: &[u8],
    silent: bool,
    now: i64,
) -> Result<Stored, StoreError> {
    let mut tx = store.begin().await?;
    let stored = tx
        .store_raw(Some(mailbox_id), &raw_key(raw), raw, silent, now)
        .await?;
    tx.commit().await?;
    Ok(stored)
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportFailed {
    #[error(transparent)]
    Source(#[from] ImportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Processing(#[from] Transient),
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    pub read: usize,
    pub stored: usize,
    /// Already stored by an earlier run.
    pub duplicates: usize,
}

/// Messages stored per transaction, then processed, during an import.
const IMPORT_BATCH: usize = 200;

/// Imports every message of `source` into `mailbox_id`: stored 200 a
/// transaction, then processed, until the source ends. `progress` hears
/// how many were read after each batch.
pub async fn import_all(
    store: &Store,
    processor: &Processor,
    mailbox_id: i64,
    source: &mut Source,
    silent: bool,
    mut progress: impl FnMut(usize),
) -> Result<Imported, ImportFailed> {
    let mut done = Imported::default();
    loop {
        let mut tx = store.begin().await?;
        let mut batch = 0;
        while batch < IMPORT_BATCH {
            let Some(raw) = source.next_message()? else {
                break;
            };
            done.read += 1;
            batch += 1;
            let now = crate::store::now_millis();
            match tx
                .store_raw(Some(mailbox_id), &raw_key(&raw), &raw, silent, now)
                .await?
            {
                Stored::New(_) => done.stored += 1,
                Stored::Duplicate(_) => done.duplicates += 1,
            }
        }
        tx.commit().await?;
        loop {
            let pass = processor
                .run_once(IMPORT_BATCH as i64, crate::store::now_millis())
                .await?;
            if pass.processed + pass.quarantined == 0 {
                break;
            }
        }
        progress(done.read);
        if batch < IMPORT_BATCH {
            return Ok(done);
        }
    }
}
