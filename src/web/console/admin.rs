//! Administration pages (admins only): mailboxes, users and roles, settings.

use axum::Router;

use crate::web::AppState;

/// The admin pages' routes.
pub fn router() -> Router<AppState> {
    Router::new()
}
