//! The daemon: `App::build` opens and migrates the store and binds the port;
//! `App::run` starts every task and drains them on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::actions::Actions;
use crate::config::{Live, Settings};
use crate::gateway::processor::Processor;
use crate::gateway::supervisor::Supervisor;
use crate::metrics::Metrics;
use crate::outbox::{Templates, Worker};
use crate::scheduler::Scheduler;
use crate::store::{Commits, ForeignKeys, Store, StoreError, now_millis};
use crate::web::{self, AppState};
use std::time::Duration;
use tokio::sync::Notify;

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("web server failed: {0}")]
    Web(std::io::Error),
    #[error(transparent)]
    Templates(#[from] crate::outbox::render::TemplateError),
    #[error("a page template does not compile: {0}")]
    Pages(handlebars::TemplateError),
}

/// A built daemon, ready to run.
pub struct App {
    settings: Arc<Settings>,
    store: Store,
    listener: TcpListener,
    metrics: Arc<Metrics>,
}

/// Opens the store, applies migrations and records the mailboxes declared
/// in the configuration.
pub async fn open_store(settings: &Settings) -> Result<Store, StoreError> {
    let db = &settings.database;
    let store = Store::connect(&db.url, db.max_connections, &settings.tickets.prefix).await?;
    store.migrate().await?;
    let now = crate::store::now_millis();
    for m in &settings.mailboxes {
        store.upsert_mailbox(m, true, now).await?;
    }
    Ok(store)
}

impl App {
    /// Opens and migrates the store and binds the web port (port 0 picks one).
    pub async fn build(settings: Settings) -> Result<App, AppError> {
        let store = open_store(&settings).await?;
        let addr = settings.http.listen_addr();
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AppError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        Ok(App {
            settings: Arc::new(settings),
            store,
            listener,
            metrics: Arc::new(Metrics::default()),
        })
    }

    /// The address the web server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.settings.http.listen_addr())
    }

    /// The store (for tests and tools that run beside the daemon).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs the web server and the scheduler until `shutdown` is cancelled,
    /// then waits for in-flight work, at most `scheduler.shutdown_grace`.
    ///
    /// Long because it is the daemon's start-up and shutdown order, one step after the
    /// other.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let live = Live::new((*self.settings).clone());
        apply_stored_settings(&self.store, &live).await;
        let actions = Actions::with_live(self.store.clone(), live.clone());
        let key = crate::gateway::signing_key(&self.settings, &self.store).await?;
        let tasks = TaskTracker::new();
        let state = AppState {
            tasks: tasks.clone(),
            actions: actions.clone(),
            store: self.store.clone(),
            live: live.clone(),
            metrics: self.metrics.clone(),
            key: key.clone(),
            pages: Arc::new(crate::web::pages::Pages::new().map_err(AppError::Pages)?),
            link_limiter: Arc::new(Default::default()),
            signin: Arc::new(Default::default()),
            threads: Arc::new(Default::default()),
            memory: Arc::new(Default::default()),
            badges: Arc::new(Default::default()),
            feed: Arc::new(crate::web::live::Feed::new(shutdown.child_token())),
            view_counts: Arc::new(Default::default()),
        };
        tasks.spawn(
            state
                .feed
                .clone()
                .run(self.store.clone(), self.store.events()),
        );
        {
            // Listening before serving: a stream opened on this daemon hears
            // every change committed after it opened, on any daemon.
            let cannot = |e: crate::store::StoreError| {
                tracing::error!(error = %e, "live events: cannot listen to the database; consoles update on reload only");
            };
            let listener = self.store.live_listener().await.unwrap_or_else(|e| {
                cannot(e);
                None
            });
            let (store, stop) = (self.store.clone(), shutdown.child_token());
            tasks.spawn(async move {
                if let Err(e) = store.listen_on(listener, stop).await {
                    cannot(e);
                }
            });
        }
        tasks.spawn(Scheduler::new(actions.clone()).run(shutdown.child_token()));
        tasks.spawn(watch_settings(actions.clone(), shutdown.child_token()));
        let holder = (self.settings.cluster.name.clone())
            .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
        let tokens = crate::oauth::Tokens::new(self.store.clone());
        let released = self.store.release_stale_claims().await?;
        if released > 0 {
            tracing::info!(released, "released claims left by a previous run");
        }
        if self.settings.outbound.enabled {
            let templates = Templates::load(self.settings.outbound.templates.as_deref())?;
            let worker = Worker::new(
                self.store.clone(),
                self.settings.clone(),
                Arc::new(templates),
                key.clone(),
                holder.clone(),
            )
            .with_metrics(self.metrics.clone())
            .with_tokens(tokens.clone())
            .with_live(live.clone());
            tasks.spawn(worker.run(shutdown.child_token()));
        }
        let processor =
            Processor::new(actions, key, holder.clone()).with_metrics(self.metrics.clone());
        let wake = Arc::new(Notify::new());
        spawn_processor(processor, wake.clone(), shutdown.child_token(), &tasks);
        let supervisor = Supervisor::new(
            self.store.clone(),
            holder.clone(),
            self.settings.cluster.lease_ttl.0,
            wake,
            self.metrics.clone(),
            tasks.clone(),
        )
        .with_tokens(tokens);
        tasks.spawn(supervisor.run(shutdown.child_token()));
        let (web_shutdown, stop_all) = (shutdown.child_token(), shutdown.clone());
        let web = tasks.spawn(async move {
            // If the server stops on its own (an accept error), stop everything.
            let result = web::serve(self.listener, state, web_shutdown).await;
            stop_all.cancel();
            result
        });
        tracing::info!(url = %self.settings.http.public_url, "postdesk is serving");
        tasks.close();
        shutdown.cancelled().await;
        tracing::info!("shutting down: draining in-flight work");
        let grace = self.settings.scheduler.shutdown_grace.0;
        if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
            tracing::warn!(grace = ?grace, "in-flight work did not finish within the grace period");
        }
        self.store.close().await;
        match web.await {
            Ok(Err(e)) => Err(AppError::Web(e)),
            _ => Ok(()),
        }
    }
}

/// This machine's name, for claims and leases.
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "postdesk".into())
}

/// Runs the processor on a thread of its own: a single-threaded runtime
/// pinned to the last core this process may use, with a pool of its own
/// opened from that thread (so SQLite's worker threads start on the same
/// core). Processing is a chain of statements, each a hand-off between this
/// task and the driver's thread; measured here, a hand-off that wakes an
/// idle core costs 50 µs per SQLite statement, on one core 9 µs
/// (`examples/roundtrip.rs`). Falls back to a task on the main runtime
/// if the thread cannot start.
fn spawn_processor(
    processor: Processor,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) {
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    // Each next batch is read and prepared here, on the daemon's runtime.
    let helper = (tokio::runtime::Handle::current(), processor.store().clone());
    let (thread_wake, thread_shutdown) = (wake.clone(), shutdown.clone());
    let fallback = processor.clone();
    // Pinned only on SQLite, where it is the one writer and hands every
    // statement to SQLite's worker thread (which it spawns, so they share
    // the core). On PostgreSQL pinning buys nothing, and several daemons on
    // one machine would all pin to the same core: three daemons ran their
    // processors on one of two cores.
    let pin = processor.store().backend() == crate::store::Backend::Sqlite;
    let spawned = std::thread::Builder::new()
        .name("postdesk-processor".into())
        .spawn(move || {
            if pin {
                pin_to_one_core();
            }
            crate::gateway::processor::warm_up();
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    tracing::error!(error = %e, "the processor's runtime did not start");
                    return;
                }
            };
            runtime.block_on(async move {
                let own = match processor
                    .store()
                    .dedicated(3, Commits::Unflushed, ForeignKeys::Unchecked)
                    .await
                {
                    Ok(store) => Some(store),
                    Err(e) => {
                        tracing::warn!(error = %e, "the processor shares the daemon's pool");
                        None
                    }
                };
                let processor = match &own {
                    Some(store) => processor
                        .with_store(store.clone())
                        .with_helper(helper.0, helper.1),
                    None => processor,
                };
                run_processor(processor, thread_wake, thread_shutdown).await;
                if let Some(store) = own {
                    store.close().await;
                }
            });
            let _ = done.send(());
        });
    match spawned {
        // Shutdown waits for the thread as for any task.
        Ok(_) => {
            tasks.spawn(async move {
                let _ = finished.await;
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, "no processor thread; processing on the main runtime");
            tasks.spawn(run_processor(fallback, wake, shutdown));
        }
    }
}

/// Pins the calling thread to the last core of this process's affinity
/// mask (with one core, or if the mask cannot be read, leaves it be).
fn pin_to_one_core() {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    if cores.len() > 1
        && let Some(core) = cores.last()
        && !core_affinity::set_for_current(*core)
    {
        tracing::debug!(core = core.id, "could not pin the processor thread");
    }
}

/// Processes stored mail as it arrives: woken by the pollers, and every few
/// seconds anyway (mail stored by `ingest`, claims of a dead daemon expiring).
async fn run_processor(processor: Processor, wake: Arc<Notify>, shutdown: CancellationToken) {
    loop {
        // Up to 16 batches per turn: other daemons (PostgreSQL) get theirs between.
        let pass = processor
            .run_pipelined(200, 16, || !shutdown.is_cancelled())
            .await;
        let busy = match pass {
            Ok(pass) => pass.processed + pass.quarantined > 0,
            Err(e) => {
                tracing::warn!(error = %e, "processing stored mail failed; retrying");
                false
            }
        };
        if shutdown.is_cancelled() {
            break;
        }
        if !busy {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    }
}

/// Puts the settings saved on the console's settings page in force over
/// the config file's; returns whether anything changed. A stored value that
/// no longer reads (an older version, a hand edit) is logged and ignored.
pub async fn apply_stored_settings(store: &Store, live: &Live) -> bool {
    let stored = match store
        .setting(crate::web::console::settings::SETTINGS_KEY)
        .await
    {
        Ok(Some(json)) => json,
        Ok(None) => return false,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the console's settings");
            return false;
        }
    };
    let applied = serde_json::from_str::<crate::config::Editable>(&stored)
        .map_err(|e| e.to_string())
        .and_then(|edits| live.apply(&edits).map_err(|e| e.to_string()));
    match applied {
        Ok(changed) => changed,
        Err(e) => {
            tracing::warn!(error = %e, "the console's stored settings are not valid; the config file's stay in force");
            false
        }
    }
}

/// Every few seconds, takes up settings another daemon's console saved
/// (and refreshes SLA states when the targets changed).
async fn watch_settings(actions: Actions, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
        }
        if apply_stored_settings(actions.store(), actions.live()).await {
            tracing::info!("settings changed on the console are in force");
            let scheduler = Scheduler::new(actions.clone());
            if let Err(e) = scheduler
                .refresh_all_if_settings_changed(now_millis())
                .await
            {
                tracing::warn!(error = %e, "could not refresh SLA states after a settings change");
            }
        }
    }
}
