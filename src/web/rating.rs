//! "How did we do?": the two signed links of the resolved/closed mail
//! (`/rate/{token}/good`, `/rate/{token}/bad`) record the requester's rating
//! with one click and offer a comment; another answer before the ticket is
//! resolved again changes it. Every rating is kept; the ticket shows the
//! latest.
//! Public pages: the signed token is the requester's only credential, and
//! it names one ticket and one requester.

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::domain::TicketRef;
use crate::store::{StoreError, Ticket, now_millis};

/// The longest comment kept.
const COMMENT_MAX: usize = 2_000;

/// The rating pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rate/{token}/{answer}", get(rate))
        .route("/rate/{token}", post(comment))
}

/// A page of the rating: thanks and the comment form, or why not.
fn page(state: &AppState, status: StatusCode, context: Value) -> Response {
    let mut c = serde_json::Map::new();
    c.insert("title".into(), json!("How did we do?"));
    c.insert("team".into(), json!(state.settings().outbound.team_name));
    c.insert("signed_in".into(), json!(false));
    c.insert(
        "support_url".into(),
        json!(state.settings().http.support_url),
    );
    c.insert("csrf".into(), Value::Null);
    if let Value::Object(more) = context {
        c.extend(more);
    }
    state
        .pages
        .render(status, "portal_rating", &Value::Object(c))
}

fn gone(state: &AppState) -> Response {
    page(
        state,
        StatusCode::NOT_FOUND,
        json!({ "heading": "This link does not work", "text": "It may have been cut short by your mail program. Reply to our mail instead: we read every answer." }),
    )
}

fn busy(state: &AppState, e: StoreError) -> Response {
    tracing::error!(error = %e, "rating: store error");
    page(
        state,
        StatusCode::SERVICE_UNAVAILABLE,
        json!({ "heading": "Please try again", "text": "We could not record that just now; please click the link again in a moment." }),
    )
}

/// Since when a rating is this resolution's: the ticket's last resolution
/// (closing without resolving counts as resolving).
fn since(t: &Ticket) -> i64 {
    t.resolved_at.or(t.closed_at).unwrap_or(0)
}

/// The ticket and requester a token names, if the requester takes part in it.
async fn rated(state: &AppState, token: &str) -> Result<Option<(Ticket, i64)>, StoreError> {
    let Some((n, who)) = state.key.verify_rating_token(token) else {
        return Ok(None);
    };
    let r = TicketRef::new(&state.settings().tickets.prefix, n);
    let Some(t) = state.store.ticket_by_ref(&r).await? else {
        return Ok(None);
    };
    let takes_part = t.requester.id == who || state.store.takes_part(t.id, who).await?;
    Ok(takes_part.then_some((t, who)))
}

async fn rate(
    State(state): State<AppState>,
    Path((token, answer)): Path<(String, String)>,
) -> Response {
    let good = match answer.as_str() {
        "good" => true,
        "bad" => false,
        _ => return gone(&state),
    };
    let (t, who) = match rated(&state, &token).await {
        Ok(Some(found)) => found,
        Ok(None) => return gone(&state),
        Err(e) => return busy(&state, e),
    };
    let id = match state
        .store
        .rate(t.id, who, good, since(&t), now_millis())
        .await
    {
        Ok(id) => id,
        Err(e) => return busy(&state, e),
    };
    page(
        &state,
        StatusCode::OK,
        json!({
            "heading": "Thank you",
            "text": format!("You told us {} went {}.", t.reference, if good { "well" } else { "not well" }),
            "form": { "token": token, "id": id, "good": good },
        }),
    )
}

#[derive(Debug, Deserialize)]
struct CommentForm {
    id: i64,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    rating: String,
}

async fn comment(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<CommentForm>,
) -> Response {
    let (t, who) = match rated(&state, &token).await {
        Ok(Some(found)) => found,
        Ok(None) => return gone(&state),
        Err(e) => return busy(&state, e),
    };
    let now = now_millis();
    let comment: String = form.comment.trim().chars().take(COMMENT_MAX).collect();
    if matches!(form.rating.as_str(), "good" | "bad")
        && let Err(e) = state
            .store
            .rate(t.id, who, form.rating == "good", since(&t), now)
            .await
    {
        return busy(&state, e);
    }
    match state
        .store
        .comment_rating(t.id, who, form.id, &comment, now)
        .await
    {
        Ok(true) => page(
            &state,
            StatusCode::OK,
            json!({ "heading": "Thank you", "text": "Your words reach the team that worked on your request." }),
        ),
        Ok(false) => gone(&state),
        Err(e) => busy(&state, e),
    }
}
