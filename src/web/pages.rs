//! Server-rendered pages: the handlebars templates of `templates/web/`,
//! compiled into the binary, HTML-escaped, strict; and the stylesheet.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use handlebars::Handlebars;
use serde_json::Value;

const TEMPLATES: &[(&str, &str)] = &[
    ("layout", include_str!("../../templates/web/layout.hbs")),
    (
        "console_layout",
        include_str!("../../templates/web/console_layout.hbs"),
    ),
    (
        "console_login",
        include_str!("../../templates/web/console_login.hbs"),
    ),
    (
        "console_message",
        include_str!("../../templates/web/console_message.hbs"),
    ),
    (
        "console_queue",
        include_str!("../../templates/web/console_queue.hbs"),
    ),
    (
        "console_ticket",
        include_str!("../../templates/web/console_ticket.hbs"),
    ),
    (
        "console_mailboxes",
        include_str!("../../templates/web/console_mailboxes.hbs"),
    ),
    (
        "console_users",
        include_str!("../../templates/web/console_users.hbs"),
    ),
    (
        "console_outbox",
        include_str!("../../templates/web/console_outbox.hbs"),
    ),
    (
        "console_settings",
        include_str!("../../templates/web/console_settings.hbs"),
    ),
    (
        "console_views",
        include_str!("../../templates/web/console_views.hbs"),
    ),
    (
        "console_reports",
        include_str!("../../templates/web/console_reports.hbs"),
    ),
    (
        "portal_rating",
        include_str!("../../templates/web/portal_rating.hbs"),
    ),
    (
        "console_mentions",
        include_str!("../../templates/web/console_mentions.hbs"),
    ),
    (
        "console_canned",
        include_str!("../../templates/web/console_canned.hbs"),
    ),
    (
        "console_profile",
        include_str!("../../templates/web/console_profile.hbs"),
    ),
    (
        "portal_tickets",
        include_str!("../../templates/web/portal_tickets.hbs"),
    ),
    (
        "portal_ticket",
        include_str!("../../templates/web/portal_ticket.hbs"),
    ),
    (
        "portal_new",
        include_str!("../../templates/web/portal_new.hbs"),
    ),
    (
        "portal_help",
        include_str!("../../templates/web/portal_help.hbs"),
    ),
    (
        "portal_profile",
        include_str!("../../templates/web/portal_profile.hbs"),
    ),
    (
        "portal_conversation",
        include_str!("../../templates/web/portal_conversation.hbs"),
    ),
    (
        "portal_message",
        include_str!("../../templates/web/portal_message.hbs"),
    ),
];

/// `{{time ms}}`: the moment `ms` (milliseconds since 1970) as a `<time>`
/// element ([`crate::web::files::time_html`]).
fn time_helper(
    h: &handlebars::Helper,
    _: &Handlebars,
    _: &handlebars::Context,
    _: &mut handlebars::RenderContext,
    out: &mut dyn handlebars::Output,
) -> handlebars::HelperResult {
    let ms = h.param(0).and_then(|v| v.value().as_i64()).ok_or(
        handlebars::RenderErrorReason::ParamNotFoundForIndex("time", 0),
    )?;
    out.write(&crate::web::files::time_html(ms))?;
    Ok(())
}

/// The pages' one script: dates in the viewer's own format and time zone.
pub const LOCAL_TIME_JS: &str = include_str!("../../templates/web/local-time.js");

/// A script of the pages, cached for an hour.
fn script(source: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        source,
    )
        .into_response()
}

/// `GET /static/local-time.js`
pub async fn local_time_script() -> Response {
    script(LOCAL_TIME_JS)
}

/// The console's small behaviours (canned-reply picker; keys).
pub const CONSOLE_JS: &str = include_str!("../../templates/web/console.js");

/// `GET /static/console.js`
pub async fn console_script() -> Response {
    script(CONSOLE_JS)
}

/// The portal's stylesheet.
pub const PORTAL_CSS: &str = include_str!("../../templates/web/portal.css");

/// The compiled page templates.
#[derive(Debug)]
pub struct Pages(Handlebars<'static>);

impl Pages {
    /// Compiles the built-in templates (a broken one is a build mistake:
    /// the unit test below catches it).
    pub fn new() -> Result<Pages, handlebars::TemplateError> {
        let mut h = Handlebars::new();
        h.set_strict_mode(true);
        h.register_helper("time", Box::new(time_helper));
        for (name, source) in TEMPLATES {
            if name.ends_with("layout") {
                h.register_partial(name, *source)?;
            } else {
                h.register_template_string(name, *source)?;
            }
        }
        Ok(Pages(h))
    }

    /// A piece of a page (HTML-escaped like a page), to be cached and put
    /// into one with a triple-stash.
    pub fn fragment(&self, name: &str, context: &Value) -> Result<String, handlebars::RenderError> {
        self.0.render(name, context)
    }

    /// A page with a status; a rendering failure is logged and answered 500.
    pub fn render(&self, status: StatusCode, name: &str, context: &Value) -> Response {
        match self.0.render(name, context) {
            Ok(html) => {
                let mut r = (status, Html(html)).into_response();
                let h = r.headers_mut();
                h.insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(
                        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                    ),
                );
                h.insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
                h.insert(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                );
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            Err(e) => {
                tracing::error!(template = name, error = %e, "a page did not render");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }
}

/// `GET /static/portal.css`
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        PORTAL_CSS,
    )
        .into_response()
}

/// The site's icon: a small SVG (browsers ask `/favicon.ico` on every
/// page; a 404 there is a console error in each of them).
const FAVICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\"><rect width=\"32\" height=\"32\" rx=\"6\" fill=\"#2f5d8a\"/><path d=\"M7 10h18v12H7z\" fill=\"none\" stroke=\"#fff\" stroke-width=\"2\"/><path d=\"M7 10l9 7 9-7\" fill=\"none\" stroke=\"#fff\" stroke-width=\"2\"/></svg>";

/// `GET /favicon.ico`
pub async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_compiles_and_escapes() {
        let p = Pages::new().unwrap();
        let r = p.render(
            StatusCode::OK,
            "portal_message",
            &serde_json::json!({
                "title": "t", "team": "<b>Team</b>", "signed_in": false, "support_url": null,
                "heading": "<script>alert(1)</script>", "text": "x", "offer_link": true,
            }),
        );
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
    }
}
