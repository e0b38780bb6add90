//! The pipelined loop: the next batch is claimed, read and prepared
//! (on the helper runtime when there is one) while this one is applied.

use super::*;

/// A batch claimed, its bytes being read and its mails prepared.
struct Ahead {
    /// The ids claimed, to give back if it is abandoned.
    ids: Vec<i64>,
    ready: AheadState,
}

enum AheadState {
    Ready(Loaded),
    Pending(tokio::task::JoinHandle<Result<Loaded, StoreError>>),
}

impl Ahead {
    async fn wait(self) -> Result<Loaded, Transient> {
        match self.ready {
            AheadState::Ready(loaded) => Ok(loaded),
            AheadState::Pending(task) => match task.await {
                Ok(done) => Ok(done?),
                // The helper runtime is shutting down: the claims lapse or are given back.
                Err(e) => Err(Transient(StoreError::TaskStopped(format!(
                    "preparing a batch: {e}"
                )))),
            },
        }
    }
}

impl Processor {
    /// Claims and processes batches of up to `limit` stored mails back to
    /// back, at most `batches` of them in one processing turn, while
    /// `go_on()` says so: each next batch is claimed before the current one
    /// is written, and its bytes are read and its mails prepared on the
    /// helper runtime meanwhile, so that the write lock (the bound on
    /// SQLite) waits on nothing else. Batches stay in arrival order: each
    /// claims only mails after the last one's.
    pub async fn run_pipelined(
        &self,
        limit: i64,
        batches: usize,
        go_on: impl Fn() -> bool,
    ) -> Result<Pass, Transient> {
        let store = self.actions.store();
        let now = crate::store::now_millis();
        let mut ahead = self.claim_ahead(limit, now).await?;
        let mut pass = Pass::default();
        for round in 1..=batches {
            if ahead.ids.is_empty() {
                break;
            }
            let ids = std::mem::take(&mut ahead.ids);
            let give_back = |more: &[i64]| {
                let all: Vec<i64> = ids.iter().chain(more).copied().collect();
                async move {
                    let _ = store.release_claims(&all, &self.holder).await;
                }
            };
            let (raws, mut parsed) = match ahead.wait().await {
                Ok(batch) => batch,
                Err(e) => {
                    give_back(&[]).await;
                    return Err(e);
                }
            };
            let now = crate::store::now_millis();
            let next = if round < batches && go_on() {
                match self.claim_ahead(limit, now).await {
                    Ok(next) => Some(next),
                    Err(e) => {
                        give_back(&[]).await;
                        return Err(e);
                    }
                }
            } else {
                None
            };
            let started = std::time::Instant::now();
            match self.process_prepared(&raws, &mut parsed, now).await {
                Ok(out) => {
                    tracing::debug!(mails = raws.len(), elapsed = ?started.elapsed(), "batch processed");
                    for d in out {
                        match d {
                            Disposition::Quarantined(_) => pass.quarantined += 1,
                            _ => pass.processed += 1,
                        }
                    }
                }
                Err(e) => {
                    give_back(next.as_ref().map_or(&[][..], |n| &n.ids)).await;
                    return Err(e);
                }
            }
            match next {
                Some(next) => ahead = next,
                None => break,
            }
        }
        Ok(pass)
    }

    /// Claims the next batch (the mails of the current one are claimed
    /// already, so it begins after them) and starts reading and preparing
    /// it on the helper runtime, or does so at once without one.
    async fn claim_ahead(&self, limit: i64, now: Millis) -> Result<Ahead, Transient> {
        let mut raws = self
            .actions
            .store()
            .claim_raw_rows(&self.holder, now, CLAIM_MS, limit)
            .await?;
        let ids = raws.iter().map(|r| r.id).collect();
        let ready = match &self.helper {
            Some(helper) if !raws.is_empty() => {
                let store = helper.store.clone();
                AheadState::Pending(helper.runtime.spawn(async move {
                    store.load_raw(&mut raws).await?;
                    let parsed = tokio::task::spawn_blocking(move || {
                        let parsed: Vec<Parsed> = raws.iter().map(prepare).collect();
                        (raws, parsed)
                    })
                    .await
                    .map_err(|e| StoreError::TaskStopped(format!("preparing a batch: {e}")))?;
                    Ok(parsed)
                }))
            }
            _ => {
                self.actions.store().load_raw(&mut raws).await?;
                let parsed = raws.iter().map(prepare).collect();
                AheadState::Ready((raws, parsed))
            }
        };
        Ok(Ahead { ids, ready })
    }
}
