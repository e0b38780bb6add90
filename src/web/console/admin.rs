//! Administration pages (admins only): mailboxes (add, edit, test the
//! connection, pause, resume, remove; the same store and checks as
//! `postdesk mailbox`), and users with their roles (add, edit, deactivate,
//! new password), and the outbox. Each in its own file under `admin/`;
//! here the routes and what they share. Settings: `console/settings.rs`.

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

mod mailboxes;
mod outbox;
mod users;

use super::{CsrfForm, Staff, WebError, base, options, page};
use crate::config::{Account, AfterAction, MailboxSettings, Secret, StartMode, TlsMode};
use crate::domain::{EmailAddress, Priority, Role};
use crate::secrets;
use crate::store::mailboxes::MailboxRow;
use crate::store::{NewUser, now_millis};
use crate::web::AppState;
use crate::web::files::{percent_encode, when};

/// The admin pages' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console/admin/mailboxes",
            get(mailboxes::mailboxes).post(mailboxes::save_mailbox),
        )
        .route(
            "/console/admin/mailboxes/{name}",
            get(mailboxes::edit_mailbox),
        )
        .route(
            "/console/admin/mailboxes/{name}/{op}",
            post(mailboxes::mailbox_op),
        )
        .route(
            "/console/admin/users",
            get(users::users).post(users::add_user),
        )
        .route("/console/admin/outbox", get(outbox::outbox))
        .route(
            "/console/admin/outbox/{id}/retry",
            post(outbox::outbox_retry),
        )
        .route("/console/admin/users/{id}", post(users::update_user))
        .route(
            "/console/admin/users/{id}/password",
            post(users::new_password),
        )
}

/// Refuses anyone but an admin.
pub(crate) fn admin_only(me: &Staff) -> Result<(), WebError> {
    if me.is_admin() {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "Only admins may change the configuration.".into(),
        ))
    }
}

// ---------------------------------------------------------------- mailboxes

/// What an IMAP or SMTP error means for the admin, and what to do; the
/// server's own words follow in brackets.
pub(crate) fn explain_mail_error(raw: &str) -> String {
    let e = raw.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| e.contains(w));
    let what = if has(&[
        "authenticationfailed",
        "authentication failed",
        "invalid credentials",
        "login failed",
        "authenticate failed",
        "535",
    ]) {
        "The server refused the user name or password: check them (or the app password your provider asks for)."
    } else if has(&["certificate", "unknownissuer", "invalid peer"]) {
        "The server's TLS certificate is not trusted: check the host name, or name its CA file."
    } else if has(&[
        "failed to lookup address",
        "name or service not known",
        "no such host",
        "dns error",
    ]) {
        "The host name does not resolve: check the IMAP host."
    } else if has(&["connection refused"]) {
        "Nothing answers on that host and port: check the port and the TLS mode (993 implicit, 143 STARTTLS)."
    } else if has(&["timed out", "timeout"]) {
        "The server did not answer in time: check the host, the port and any firewall between."
    } else if has(&[
        "nonexistent",
        "doesn't exist",
        "does not exist",
        "no such mailbox",
        "unknown mailbox",
    ]) {
        "The folder does not exist on the server: check the folder name (INBOX is the usual one)."
    } else if has(&["overquota", "over quota", "quota"]) {
        "The mailbox is over its quota on the server: make room there."
    } else if has(&["tls", "handshake", "starttls"]) {
        "The TLS handshake failed: check the TLS mode for this port."
    } else {
        "The mail server answered with an error."
    };
    let raw: String = raw.chars().take(300).collect();
    format!("{what} (The server said: {raw})")
}

/// How a mailbox is doing, in words.
pub(crate) fn mailbox_state(m: &MailboxRow) -> String {
    if m.paused {
        "paused".into()
    } else if let Some(e) = &m.last_error {
        format!(
            "error since {}: {}",
            m.last_error_at.map(when).unwrap_or_default(),
            explain_mail_error(e)
        )
    } else if let Some(ok) = m.last_ok_at {
        format!("ok at {}", when(ok))
    } else {
        "not polled yet".into()
    }
}

#[cfg(test)]
mod tests {
    use super::explain_mail_error;

    #[test]
    fn mail_server_errors_say_what_to_do() {
        let auth = explain_mail_error(
            r#"no response: code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#,
        );
        assert!(
            auth.starts_with("The server refused the user name or password"),
            "{auth}"
        );
        assert!(
            auth.contains("[AUTHENTICATIONFAILED]"),
            "the server's words are kept"
        );
        let refused = explain_mail_error("io error: Connection refused (os error 111)");
        assert!(refused.contains("check the port"), "{refused}");
        let dns =
            explain_mail_error("failed to lookup address information: Name or service not known");
        assert!(dns.contains("does not resolve"), "{dns}");
        let folder =
            explain_mail_error("no response: [NONEXISTENT] Mailbox doesn't exist: Tickets");
        assert!(folder.contains("folder does not exist"), "{folder}");
        let cert = explain_mail_error("invalid peer certificate: UnknownIssuer");
        assert!(cert.contains("certificate"), "{cert}");
        let other = explain_mail_error("bye");
        assert!(
            other.starts_with("The mail server answered with an error"),
            "{other}"
        );
        assert!(
            explain_mail_error(&"x".repeat(10_000)).len() < 500,
            "bounded"
        );
    }
}
