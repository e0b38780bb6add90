//! Signing in to the console (throttled, CSRF-checked, the same answer for
//! unknown and wrong) and signing out.

use super::*;

#[derive(Debug, Deserialize, Default)]
pub(super) struct LoginQuery {
    #[serde(default)]
    next: String,
}

/// Only a console path may follow sign-in (never another site).
pub(super) fn safe_next(next: &str) -> &str {
    if next.starts_with("/console") && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/console"
    }
}

pub(super) fn login_page(
    state: &AppState,
    status: StatusCode,
    email: &str,
    next: &str,
    error: Option<&str>,
) -> Response {
    let mut c = base(state, "Sign in", None);
    c.insert("email".into(), json!(email));
    c.insert("next".into(), json!(next));
    c.insert("error".into(), json!(error));
    state
        .pages
        .render(status, "console_login", &Value::Object(c))
}

pub(super) async fn login_form(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Response {
    login_page(&state, StatusCode::OK, "", safe_next(&q.next), None)
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// A hash to verify against when the account does not exist, so that an
/// unknown address takes as long as a wrong password.
pub(super) fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| secrets::hash_password("decoy password").unwrap_or_default())
}

/// One sign-in attempt (SPEC §7): refused when the form came from another
/// site; counted per client and per account and client before the
/// password is checked (parallel guesses cannot all be checked); checked
/// at most one per core at a time (429 with Retry-After past a short wait).
/// An unknown address, a wrong password and a throttled attempt get the
/// same answer after about the same time; the account is never locked for
/// everyone, so its owner signing in from elsewhere still gets in.
///
/// Long because the sign-in's steps (throttle, bounded hashing, the same answer for every
/// failure, the session) must read in their order.
pub(super) async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(&form.next).to_string();
    let wrong = "Wrong email or password. After several failed attempts from one place, sign-in waits a little longer each time.";
    let refused = |status: StatusCode| login_page(&state, status, &form.email, &next, Some(wrong));
    if !same_origin(&headers, &state.settings().http.public_url) {
        let said = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .chars()
                .take(200)
                .collect::<String>()
        };
        tracing::warn!(
            client = %client,
            origin = %said("origin"),
            sec_fetch_site = %said("sec-fetch-site"),
            host = %said("host"),
            "console: sign-in form from another site refused"
        );
        return login_page(
            &state,
            StatusCode::FORBIDDEN,
            "",
            "/console",
            Some(
                "This sign-in form was sent from another site. Open the sign-in page and try again.",
            ),
        );
    }
    let go = async {
        let now = now_millis();
        if state.signin.admit(&form.email, &client, now) == Admission::Throttled {
            tracing::warn!(client = %client, "console: sign-in throttled");
            tokio::time::sleep(state.signin.typical().unwrap_or_default()).await;
            return Ok(refused(StatusCode::UNAUTHORIZED));
        }
        let email: Option<EmailAddress> = form.email.parse().ok();
        let account = match &email {
            Some(e) => state.store.staff_login(e).await?,
            None => None,
        };
        // An unknown address waits as long as a check takes but spends no
        // CPU, memory or turn on it: a flood of made-up addresses costs the
        // daemon nothing, never delays a real user's check, and answers as
        // a wrong password does. Until a check has been timed, it is
        // checked against a decoy hash (which times it).
        let known = account.as_ref().and_then(|a| a.password_hash.clone());
        let ok = match (known, state.signin.typical()) {
            (None, Some(typical)) => {
                tokio::time::sleep(typical).await;
                false
            }
            (known, _) => {
                let hash = known.unwrap_or_else(|| decoy_hash().to_string());
                let wait = std::time::Duration::from_secs(2);
                let Some(ok) = state.signin.verify(&form.password, hash, wait).await else {
                    // Busy, not refused: this attempt does not count.
                    state.signin.not_checked(&form.email, &client);
                    let mut r = login_page(
                        &state,
                        StatusCode::TOO_MANY_REQUESTS,
                        &form.email,
                        &next,
                        Some("Too many sign-ins at once: try again in a moment."),
                    );
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
                    return Ok(r);
                };
                ok
            }
        };
        let account = account.filter(|a| a.user.active && a.password_hash.is_some());
        let account = match account {
            Some(a) if ok => a,
            other => {
                let user = other.map(|a| a.user.id);
                let failed = match user {
                    Some(id) => Some(state.store.count_failed_login(id).await?),
                    None => None,
                };
                tracing::warn!(client = %client, user, failed, "console: failed sign-in");
                return Ok(refused(StatusCode::UNAUTHORIZED));
            }
        };
        state.signin.succeeded(&form.email, &client);
        state
            .store
            .record_login(account.user.id, true, None)
            .await?;
        let secure = state.settings().http.public_url.starts_with("https://");
        let cookie =
            auth::start_session(&state.store, SessionOf::Staff(account.user.id), secure, now)
                .await?;
        let mut r = Redirect::to(&next).into_response();
        r.headers_mut().insert(header::SET_COOKIE, cookie);
        Ok(r)
    };
    go.await
        .unwrap_or_else(|e: WebError| e.console_page(&state, None))
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    pub csrf: String,
}

pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        me.check(&form.csrf)?;
        if let Some(digest) = auth::cookie_digest(&headers) {
            state.store.delete_session(&digest).await?;
        }
        let mut r = Redirect::to("/console/login").into_response();
        r.headers_mut().insert(
            header::SET_COOKIE,
            header::HeaderValue::from_static(
                "pd_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
            ),
        );
        Ok(r)
    })
    .await
}

// ---------------------------------------------------------------- the queue

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_only_ever_continues_inside_the_console() {
        assert_eq!(
            safe_next("/console/tickets/TKT-1"),
            "/console/tickets/TKT-1"
        );
        assert_eq!(safe_next("https://evil.test/console"), "/console");
        assert_eq!(safe_next("//evil.test"), "/console");
        assert_eq!(safe_next("/console\\@evil"), "/console");
        assert_eq!(safe_next(""), "/console");
    }
}
