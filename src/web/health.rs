//! `/healthz` (the process answers), `/readyz` (the database answers and no
//! active mailbox is failing; with who polls what and the queue depths) and
//! `/metrics` (Prometheus text).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::AppState;

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
    // The web can serve when the database answers: a failing mailbox (a
    // wrong password, a revoked token) must not take the console and the
    // portal out of a load balancer. Mailbox health is reported beside it.
    let ready = database["ok"] == true;
    let mut mailboxes_ok = true;
    let view = match state.store.status(crate::store::now_millis()).await {
        Ok(view) => {
            mailboxes_ok = view.mailboxes.iter().all(|m| m.ok);
            serde_json::to_value(view).unwrap_or_default()
        }
        Err(_) => serde_json::json!({}),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "ready": ready,
            "database": database,
            "mailboxes_ok": mailboxes_ok,
            "mailboxes": view["mailboxes"],
            "daemons": view["daemons"],
            "queues": view["queues"],
        })),
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
