//! Live updates for consoles and API clients: `GET /api/v1/events`, a
//! stream of server-sent events (a ticket opened or changed, a message
//! added, who is viewing or typing on a ticket), and the presence an agent's
//! page announces (`POST /console/tickets/{ref}/presence`, or the API's
//! `POST /api/v1/tickets/{ref}/presence`).
//!
//! One [`Feed`] per daemon listens to the store's committed changes (from
//! every daemon, on PostgreSQL: `store::events`), names their tickets once,
//! and hands each event, ready to send, to every connected stream; a stream
//! only filters. Staff see every ticket, so a stream carries all of them, or
//! one ticket's with `?ticket=REF`. Streams end when the daemon shuts down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::error::WebError;
use crate::domain::TicketRef;
use crate::store::events::LiveEvent;
use crate::store::{Store, User};

/// How long a presence lasts without being announced again.
pub const PRESENCE_FOR: Duration = Duration::from_secs(40);

/// The most ticket references kept named.
const NAMES_KEPT: usize = 100_000;

/// One event, ready to send.
#[derive(Debug)]
pub struct Outgoing {
    /// The ticket it is about (`None`: everyone's, e.g. refresh).
    pub ticket: Option<i64>,
    /// The event's JSON.
    pub data: String,
}

/// An agent on a ticket: their name, what they do, since when.
type Presences = HashMap<i64, HashMap<i64, (String, String, Instant)>>;

/// This daemon's live feed.
pub struct Feed {
    out: broadcast::Sender<Arc<Outgoing>>,
    presence: Mutex<Presences>,
    names: Mutex<HashMap<i64, String>>,
    /// Cancelled at shutdown: every stream ends.
    stop: CancellationToken,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").finish_non_exhaustive()
    }
}

impl Feed {
    /// A feed whose streams end when `stop` is cancelled.
    pub fn new(stop: CancellationToken) -> Self {
        Feed {
            out: broadcast::channel(4_096).0,
            presence: Mutex::default(),
            names: Mutex::default(),
            stop,
        }
    }

    /// How many streams are connected.
    pub fn streams(&self) -> usize {
        self.out.receiver_count()
    }

    /// A ticket's reference, named once and kept.
    async fn name(&self, store: &Store, ticket: i64) -> Option<String> {
        if let Some(n) = self.names.lock().ok()?.get(&ticket) {
            return Some(n.clone());
        }
        let r: TicketRef = store.ticket_reference(ticket).await.ok()??;
        let name = r.to_string();
        if let Ok(mut names) = self.names.lock() {
            if names.len() >= NAMES_KEPT {
                names.clear();
            }
            names.insert(ticket, name.clone());
        }
        Some(name)
    }

    /// Notes a presence; the ones that are over are dropped.
    fn note_presence(&self, ticket: i64, user: i64, name: &str, state: &str) {
        let Ok(mut all) = self.presence.lock() else {
            return;
        };
        let now = Instant::now();
        all.retain(|_, people| {
            people.retain(|_, (_, _, at)| now.duration_since(*at) < PRESENCE_FOR);
            !people.is_empty()
        });
        let people = all.entry(ticket).or_default();
        if state == "left" {
            people.remove(&user);
        } else {
            people.insert(user, (name.to_string(), state.to_string(), now));
        }
    }

    /// Who is on `ticket` now, as presence events.
    fn present(&self, ticket: i64, reference: &str) -> Vec<String> {
        let Ok(all) = self.presence.lock() else {
            return Vec::new();
        };
        all.get(&ticket)
            .map(|people| {
                people
                    .iter()
                    .filter(|(_, (_, _, at))| at.elapsed() < PRESENCE_FOR)
                    .map(|(user, (name, state, _))| {
                        json!({ "type": "presence", "ticket": reference, "id": ticket,
                                "user": user, "name": name, "state": state })
                        .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The event as clients get it; `None` for a ticket that is gone.
    async fn outgoing(&self, store: &Store, e: LiveEvent) -> Option<Outgoing> {
        let ticket = e.ticket();
        let reference = match ticket {
            Some(t) => Some(self.name(store, t).await.unwrap_or_default()),
            None => None,
        };
        let data = match e {
            LiveEvent::Ticket { ticket, created } => {
                json!({ "type": "ticket", "ticket": reference, "id": ticket, "created": created })
            }
            LiveEvent::Message {
                ticket,
                message,
                kind,
                by,
            } => json!({ "type": "message", "ticket": reference, "id": ticket,
                         "message": message, "kind": kind, "by": by }),
            LiveEvent::Presence {
                ticket,
                user,
                name,
                state,
            } => {
                self.note_presence(ticket, user, &name, &state);
                json!({ "type": "presence", "ticket": reference, "id": ticket,
                        "user": user, "name": name, "state": state })
            }
            LiveEvent::Refresh => json!({ "type": "refresh" }),
        };
        Some(Outgoing {
            ticket,
            data: data.to_string(),
        })
    }

    /// Hands the store's events to the streams until the daemon stops. The
    /// daemon subscribes (`store.events()`) before it serves, so that no
    /// change committed once a stream is open goes unheard.
    pub async fn run(
        self: Arc<Self>,
        store: Store,
        mut events: broadcast::Receiver<crate::store::events::LiveEvent>,
    ) {
        loop {
            let e = tokio::select! {
                _ = self.stop.cancelled() => return,
                e = events.recv() => e,
            };
            let e = match e {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(_)) => LiveEvent::Refresh,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            // Nobody listening: nothing to name (presence is still noted,
            // for the first stream that opens).
            if self.out.receiver_count() == 0 {
                if let LiveEvent::Presence {
                    ticket,
                    user,
                    name,
                    state,
                } = &e
                {
                    self.note_presence(*ticket, *user, name, state);
                }
                continue;
            }
            if let Some(out) = self.outgoing(&store, e).await {
                let _ = self.out.send(Arc::new(out));
            }
        }
    }
}

/// `?ticket=REF`: one ticket's events only.
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    ticket: Option<String>,
}

/// The staff member a stream or presence is for: an API token, or the
/// console's session (a browser's `EventSource` sends no header but its
/// cookie).
async fn viewer(state: &AppState, headers: &HeaderMap) -> Result<User, WebError> {
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or(WebError::Unauthorized)?;
        return state
            .store
            .user_by_token_hash(&crate::secrets::token_digest(token))
            .await?
            .ok_or(WebError::Unauthorized);
    }
    super::console::staff(state, headers)
        .await
        .map(|s| s.user)
        .map_err(|_| WebError::Unauthorized)
}

async fn ticket_id(state: &AppState, reference: &str) -> Result<(i64, String), WebError> {
    let t = super::error::ticket_by_reference(state, reference).await?;
    Ok((t.id, t.reference.to_string()))
}

/// `GET /api/v1/events[?ticket=REF]`: server-sent events, one JSON object
/// each (`type`: ticket, message, presence, refresh).
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let Query(q) = query.map_err(|e| WebError::BadRequest(e.body_text()))?;
    viewer(&state, &headers).await?;
    let only = match q.ticket.as_deref() {
        Some(r) => Some(ticket_id(&state, r).await?),
        None => None,
    };
    let feed = state.feed.clone();
    let receiver = feed.out.subscribe();
    let first: Vec<String> = only
        .as_ref()
        .map(|(id, r)| feed.present(*id, r))
        .unwrap_or_default();
    let only = only.map(|(id, _)| id);
    let stop = feed.stop.clone();
    let events =
        futures::stream::unfold((receiver, first.into_iter()), move |(mut rx, mut first)| {
            let stop = stop.clone();
            async move {
                if let Some(data) = first.next() {
                    return Some((Ok(Event::default().data(data)), (rx, first)));
                }
                loop {
                    let next = tokio::select! {
                        _ = stop.cancelled() => return None,
                        n = rx.recv() => n,
                    };
                    let data = match next {
                        Ok(out) if only.is_none() || out.ticket.is_none() || out.ticket == only => {
                            out.data.clone()
                        }
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            json!({ "type": "refresh" }).to_string()
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    };
                    return Some((
                        Ok::<_, std::convert::Infallible>(Event::default().data(data)),
                        (rx, first),
                    ));
                }
            }
        });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// What an agent is doing on a ticket.
fn presence_state(s: &str) -> Result<&'static str, WebError> {
    match s.trim() {
        "viewing" => Ok("viewing"),
        "typing" => Ok("typing"),
        "left" => Ok("left"),
        other => Err(WebError::BadRequest(format!(
            "presence `{}` is not one of viewing, typing, left",
            other.chars().take(20).collect::<String>()
        ))),
    }
}

/// Tells every console that `me` is viewing, typing on or has left a ticket.
async fn announce(state: &AppState, me: &User, reference: &str, s: &str) -> Result<(), WebError> {
    let s = presence_state(s)?;
    let (ticket, _) = ticket_id(state, reference).await?;
    let name = if me.name.is_empty() {
        me.email.to_string()
    } else {
        me.name.clone()
    };
    state
        .store
        .announce(LiveEvent::Presence {
            ticket,
            user: me.id,
            name,
            state: s.to_string(),
        })
        .await?;
    Ok(())
}

/// The console's presence form (sent by its script).
#[derive(Debug, Deserialize)]
pub struct PresenceForm {
    csrf: String,
    state: String,
}

/// `POST /console/tickets/{ref}/presence`
pub async fn console_presence(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    Form(form): Form<PresenceForm>,
) -> Response {
    let me = match super::console::staff(&state, &headers).await {
        Ok(me) => me,
        Err(_) => return WebError::Unauthorized.into_response(),
    };
    if !super::auth::csrf_ok(&me.session, &form.csrf) {
        return WebError::Forbidden("the form expired; reload the page".into()).into_response();
    }
    match announce(&state, &me.user, &reference, &form.state).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// The API's presence body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceBody {
    state: String,
}

/// `POST /api/v1/tickets/{ref}/presence` `{"state"}`
pub async fn api_presence(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    body: Result<axum::Json<PresenceBody>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, WebError> {
    let me = viewer(&state, &headers).await?;
    let axum::Json(b) = body.map_err(|e| WebError::BadRequest(e.body_text()))?;
    announce(&state, &me, &reference, &b.state).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_is_noted_and_forgotten() {
        let feed = Feed::new(CancellationToken::new());
        feed.note_presence(1, 7, "Bea", "viewing");
        feed.note_presence(1, 8, "Alan", "typing");
        assert_eq!(feed.present(1, "TKT-1").len(), 2);
        feed.note_presence(1, 7, "Bea", "left");
        let left = feed.present(1, "TKT-1");
        assert_eq!(left.len(), 1);
        assert!(left[0].contains("\"typing\""));
        assert!(feed.present(2, "TKT-2").is_empty());
        assert!(presence_state("dancing").is_err());
        assert_eq!(presence_state(" typing ").unwrap(), "typing");
    }
}
