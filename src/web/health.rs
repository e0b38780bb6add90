//! `/healthz` (the process answers), `/readyz` (the database answers; later
//! also the mailbox pollers) and `/metrics` (Prometheus text).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::AppState;
use crate::domain::rfc3339;

/// The health routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = match state.store.ping().await {
        Ok(()) => serde_json::json!({ "ok": true }),
        Err(e) => serde_json::json!({ "ok": false, "error": e.to_string() }),
    };
    let mut ready = database["ok"] == true;
    let mailboxes: Vec<serde_json::Value> = match state.store.mailboxes().await {
        Ok(list) => list
            .iter()
            .map(|m| {
                let ok = m.paused || m.last_error.is_none();
                ready &= ok;
                serde_json::json!({
                    "name": m.name,
                    "ok": ok,
                    "paused": m.paused,
                    "last_ok_at": m.last_ok_at.map(rfc3339),
                    "last_error": m.last_error,
                    "last_error_at": m.last_error_at.map(rfc3339),
                })
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({ "ready": ready, "database": database, "mailboxes": mailboxes })),
    )
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
