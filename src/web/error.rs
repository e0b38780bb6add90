//! One error type for every web response: JSON `{"error": {"code",
//! "message"}}` with a fitting status code, never an internal detail. The
//! console's and the portal's page errors are this one shown as a page:
//! they convert from it (`web/console.rs`, `web/portal.rs`), so that a
//! store or action failure is mapped, and logged, here alone.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::actions::ActionError;
use crate::store::StoreError;

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("sign-in required: send Authorization: Bearer <token>")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed, but not something that can be done (an empty ticket).
    #[error("{0}")]
    Unprocessable(String),
    /// The request was made on a state that has moved on (a message the
    /// caller has not seen).
    #[error("{0}")]
    Conflict(String),
    /// A body or file over its limit.
    #[error("{0}")]
    TooLarge(String),
    /// A portal session opened by one ticket's link asked for a page that
    /// needs an address-wide link.
    #[error("this link opens one request; ask for a link to all your requests")]
    AddressWide,
    #[error("the service is busy; try again shortly")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl WebError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            WebError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            WebError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            WebError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            WebError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            WebError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            WebError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            WebError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            WebError::AddressWide => (StatusCode::FORBIDDEN, "address_wide"),
            WebError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            WebError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let mut response = (
            status,
            Json(serde_json::json!({ "error": { "code": code, "message": self.to_string() } })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        // Logged once here, where it is handled; the client sees no detail.
        tracing::error!(error = %e, "store error while answering a request");
        if e.is_transient() {
            WebError::Unavailable
        } else {
            WebError::Internal
        }
    }
}

impl From<ActionError> for WebError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::NotFound(what) => WebError::NotFound(what),
            ActionError::Forbidden(why) => WebError::Forbidden(why),
            ActionError::Invalid(why) => WebError::BadRequest(why),
            ActionError::Store(e) => e.into(),
        }
    }
}

impl From<super::files::FileError> for WebError {
    fn from(e: super::files::FileError) -> Self {
        match e {
            super::files::FileError::TooLarge(m) => WebError::TooLarge(m),
            super::files::FileError::Bad(m) => WebError::BadRequest(m),
        }
    }
}

/// The ticket a reference names (`TKT-1042`, spaces around allowed), for
/// the API and the console alike; a reference that names none, or is not
/// one, is not found.
pub async fn ticket_by_reference(
    state: &super::AppState,
    reference: &str,
) -> Result<crate::store::Ticket, WebError> {
    let missing = || WebError::NotFound(format!("ticket {}", reference.trim()));
    let r: crate::domain::TicketRef = reference.trim().parse().map_err(|_| missing())?;
    state.store.ticket_by_ref(&r).await?.ok_or_else(missing)
}
