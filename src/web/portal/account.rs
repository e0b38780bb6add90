//! Signing in by a magic link, the requester's profile (name and which
//! mails they get), signing out, and a fresh link by mail.

use super::thread::CsrfForm;
use super::*;

pub(super) async fn magic_link(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    let now = now_millis();
    let grant = match state.key.verify_portal_token(&token, now / 1000) {
        Ok(g) => g,
        Err(Some(_)) => {
            return message_page(
                &state,
                StatusCode::GONE,
                "This link has expired",
                "Links in our mails stay valid for a while, then expire. Enter your address and we will mail you a fresh one.",
                true,
                false,
            );
        }
        Err(None) => {
            return message_page(
                &state,
                StatusCode::NOT_FOUND,
                "This link is not valid",
                "Please open the link exactly as it is in the mail, or ask for a fresh one.",
                true,
                false,
            );
        }
    };
    let go = async {
        let secure = state.settings().http.public_url.starts_with("https://");
        if grant.ticket_number == 0 {
            // The address-wide link asked for on the portal: every request.
            state
                .store
                .requester(grant.requester_id)
                .await?
                .ok_or(WebError::NotFound("request".into()))?;
            let cookie =
                auth::start_requester_session(&state.store, grant.requester_id, None, secure, now)
                    .await?;
            let mut response = Redirect::to("/portal").into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response.headers_mut().insert(
                header::REFERRER_POLICY,
                header::HeaderValue::from_static("no-referrer"),
            );
            return Ok(response);
        }
        let r = TicketRef::new(&state.settings().tickets.prefix, grant.ticket_number);
        let ticket = state
            .store
            .ticket_by_ref(&r)
            .await?
            .ok_or(WebError::NotFound("request".into()))?;
        if !state
            .store
            .requester_on_ticket(grant.requester_id, ticket.id)
            .await?
        {
            return Err(WebError::NotFound("request".into()));
        }
        let cookie = auth::start_requester_session(
            &state.store,
            grant.requester_id,
            Some(ticket.id),
            secure,
            now,
        )
        .await?;
        let mut response = Redirect::to(&format!("/portal/tickets/{r}")).into_response();
        response.headers_mut().insert(header::SET_COOKIE, cookie);
        response.headers_mut().insert(
            header::REFERRER_POLICY,
            header::HeaderValue::from_static("no-referrer"),
        );
        Ok(response)
    };
    go.await.unwrap_or_else(|e: WebError| e.portal_page(&state))
}

/// The notices a requester can switch off, with how the profile names them.
pub(super) const REQUESTER_TOGGLES: [(Notice, &str); 3] = [
    (Notice::Receipt, "I open a request (a receipt)"),
    (Notice::AgentReply, "the team replies"),
    (Notice::StatusChanged, "a request is resolved or closed"),
];

pub(super) fn profile_page(
    state: &AppState,
    session: &WebSession,
    p: &Profile,
    saved: bool,
) -> Response {
    let toggles: Vec<Value> = REQUESTER_TOGGLES
        .iter()
        .map(|(n, label)| {
            json!({
                "name": n.as_str(),
                "label": label,
                "on": !p.switched_off.iter().any(|s| s == n.as_str()),
            })
        })
        .collect();
    let mut c = base(state, "Your profile", true);
    c.insert("csrf".into(), json!(session.csrf));
    c.insert(
        "profile".into(),
        json!({
            "email": p.email,
            "first_name": p.first_name,
            "last_name": p.last_name,
            "phone": p.phone,
            "organisation": p.organisation,
        }),
    );
    c.insert("toggles".into(), json!(toggles));
    c.insert("saved".into(), json!(saved));
    state
        .pages
        .render(StatusCode::OK, "portal_profile", &Value::Object(c))
}

pub(super) async fn profile(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let go = async {
        let (me, session) = requester(&state, &headers).await?;
        address_wide(&session)?;
        let p = state
            .store
            .requester_profile(me)
            .await?
            .ok_or(WebError::Unauthorized)?;
        Ok(profile_page(&state, &session, &p, false))
    };
    go.await.unwrap_or_else(|e: WebError| e.portal_page(&state))
}

pub(super) async fn save_profile(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let go = async {
        let (me, session) = requester(&state, &headers).await?;
        address_wide(&session)?;
        form_from_this_session(&session, form.get("csrf").map_or("", String::as_str))?;
        let mut p = state
            .store
            .requester_profile(me)
            .await?
            .ok_or(WebError::Unauthorized)?;
        let field = |name: &str, max: usize| -> String {
            form.get(name)
                .map(|v| {
                    v.trim()
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(max)
                        .collect()
                })
                .unwrap_or_default()
        };
        p.first_name = field("first_name", 100);
        p.last_name = field("last_name", 100);
        p.phone = field("phone", 50);
        p.organisation = field("organisation", 200);
        // Unchecked boxes are absent from the form: those notices are off.
        p.switched_off
            .retain(|n| !REQUESTER_TOGGLES.iter().any(|(t, _)| t.as_str() == n));
        for (n, _) in REQUESTER_TOGGLES {
            if form
                .get(&format!("notify_{}", n.as_str()))
                .map(String::as_str)
                != Some("on")
            {
                p.switched_off.push(n.as_str().to_string());
            }
        }
        state.store.save_requester_profile(me, &p).await?;
        Ok(profile_page(&state, &session, &p, true))
    };
    go.await.unwrap_or_else(|e: WebError| e.portal_page(&state))
}

pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let go = async {
        let (_, session) = requester(&state, &headers).await?;
        form_from_this_session(&session, &form.csrf)?;
        if let Some(digest) = auth::cookie_digest(&headers) {
            state.store.delete_session(&digest).await?;
            state.memory.forget_session(&digest);
        }
        let mut r = message_page(
            &state,
            StatusCode::OK,
            "Signed out",
            "The link in any of our mails signs you in again.",
            false,
            false,
        );
        r.headers_mut().insert(
            header::SET_COOKIE,
            header::HeaderValue::from_static(
                "pd_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
            ),
        );
        Ok(r)
    };
    go.await.unwrap_or_else(|e: WebError| e.portal_page(&state))
}

#[derive(Debug, Deserialize)]
pub(super) struct LinkForm {
    email: String,
}

pub(super) async fn request_link(
    State(state): State<AppState>,
    Form(form): Form<LinkForm>,
) -> Response {
    let now = now_millis();
    let answer = || {
        message_page(
            &state,
            StatusCode::OK,
            "Check your mail",
            "If we have requests from this address, a fresh link is on its way.",
            false,
            false,
        )
    };
    let Ok(email) = form.email.parse::<EmailAddress>() else {
        return answer();
    };
    if !state.link_limiter.allow(email.as_str(), now) {
        // The same answer: the page must not tell who is known, nor how often asked.
        return answer();
    }
    // The answer goes at once; the lookup and the mail follow it, so that
    // a known address answers no slower than an unknown one.
    let actions = state.actions.clone();
    state.tasks.spawn(async move {
        if let Err(e) = actions.send_portal_link(&email, now).await {
            tracing::warn!(error = %e, "portal: queueing a sign-in link failed");
        }
    });
    answer()
}
