//! The web server: one shared state, each module owning its `router()`.
//! Health, metrics, the JSON API and the requester portal; the console follows.

pub mod api;
pub mod auth;
pub mod canned;
pub mod chart;
pub mod console;
pub mod customer;
pub mod error;
pub mod files;
pub mod health;
pub mod live;
pub mod own;
pub mod owned;
pub mod pages;
pub mod pdf;
pub mod portal;
pub mod queue;
pub mod rating;
pub mod reports;
pub mod signin;
pub mod throttle;
pub mod views;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::actions::Actions;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Work a request leaves running after its answer (shutdown waits for it).
    pub tasks: tokio_util::task::TaskTracker,
    pub actions: Actions,
    pub store: Store,
    /// The settings in force (the console's settings page changes them).
    pub live: crate::config::Live,
    pub metrics: Arc<Metrics>,
    /// Signs and checks portal links.
    pub key: crate::mail::token::SigningKey,
    pub pages: Arc<pages::Pages>,
    pub link_limiter: Arc<portal::LinkLimiter>,
    /// Throttles and bounds the console's sign-ins.
    pub signin: Arc<signin::SignInGuard>,
    pub threads: Arc<portal::ThreadCache>,
    pub memory: Arc<portal::PortalMemory>,
    /// The console's status badges, counted at most every two seconds.
    pub badges: Arc<console::Badges>,
    /// Live updates: committed changes and presence, to every stream.
    pub feed: Arc<live::Feed>,
    /// Saved views' counts, shared for a moment.
    pub view_counts: Arc<views::Counts>,
}

impl AppState {
    /// The settings in force now.
    pub fn settings(&self) -> Arc<Settings> {
        self.live.get()
    }
}

/// The request's id: the caller's `X-Request-Id` when it is a plain token
/// (a proxy's), else a new one.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string())
}

/// Runs every request in a span (its id, method and route pattern: every
/// log line of the request carries them), answers with `X-Request-Id`,
/// logs the outcome, and counts and times it by route pattern (never the
/// raw path, which would make one series per ticket).
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    use tracing::Instrument;
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let method = request.method().as_str().to_string();
    let id = request_id(&request);
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %method,
        route = route.as_deref().unwrap_or("unmatched")
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    span.in_scope(
        || tracing::debug!(status = response.status().as_u16(), latency = ?elapsed, "request done"),
    );
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let route = route.as_deref().unwrap_or("unmatched");
    let status = response.status().as_u16().to_string();
    let m = &state.metrics;
    m.inc(
        "postdesk_http_requests_total",
        &[("route", route), ("method", &method), ("status", &status)],
        1.0,
    );
    m.observe(
        "postdesk_http_request_duration_seconds",
        &[("route", route)],
        elapsed.as_secs_f64(),
    );
    response
}

/// The whole application's routes.
pub fn router(state: AppState) -> Router {
    state.metrics.describe(
        "postdesk_http_requests_total",
        "counter",
        "HTTP requests by route, method and status.",
    );
    state.metrics.describe(
        "postdesk_http_request_duration_seconds",
        "histogram",
        "HTTP request latency by route.",
    );
    let limit = usize::try_from(state.settings().http.max_body_bytes).unwrap_or(usize::MAX);
    Router::new()
        .merge(health::router())
        .nest("/api/v1", api::router())
        .merge(portal::router())
        .merge(console::router())
        .merge(rating::router())
        .route("/static/portal.css", axum::routing::get(pages::stylesheet))
        .route("/favicon.ico", axum::routing::get(pages::favicon))
        .route(
            "/static/console.js",
            axum::routing::get(pages::console_script),
        )
        .route(
            "/static/local-time.js",
            axum::routing::get(pages::local_time_script),
        )
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Serves until `shutdown` is cancelled, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}
