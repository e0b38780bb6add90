//! The notification templates: for each notice a text and an HTML template
//! (`templates/mail/<notice>.text.hbs`, `.html.hbs`), the text one's first
//! line being the subject, with shared partials. The defaults are compiled
//! into the binary; a folder set in `outbound.templates` overrides any of
//! them by file name. Strict mode: a misspelt variable is an error, not an
//! empty string in a customer's inbox.

use std::path::Path;

use handlebars::Handlebars;

use crate::domain::notify::{ALL_NOTICES, Notice};

/// The built-in templates, by file name.
const BUILTIN: &[(&str, &str)] = &[
    (
        "receipt.text.hbs",
        include_str!("../../templates/mail/receipt.text.hbs"),
    ),
    (
        "receipt.html.hbs",
        include_str!("../../templates/mail/receipt.html.hbs"),
    ),
    (
        "team_new_ticket.text.hbs",
        include_str!("../../templates/mail/team_new_ticket.text.hbs"),
    ),
    (
        "team_new_ticket.html.hbs",
        include_str!("../../templates/mail/team_new_ticket.html.hbs"),
    ),
    (
        "agent_reply.text.hbs",
        include_str!("../../templates/mail/agent_reply.text.hbs"),
    ),
    (
        "agent_reply.html.hbs",
        include_str!("../../templates/mail/agent_reply.html.hbs"),
    ),
    (
        "status_changed.text.hbs",
        include_str!("../../templates/mail/status_changed.text.hbs"),
    ),
    (
        "status_changed.html.hbs",
        include_str!("../../templates/mail/status_changed.html.hbs"),
    ),
    (
        "assigned.text.hbs",
        include_str!("../../templates/mail/assigned.text.hbs"),
    ),
    (
        "assigned.html.hbs",
        include_str!("../../templates/mail/assigned.html.hbs"),
    ),
    (
        "requester_reply.text.hbs",
        include_str!("../../templates/mail/requester_reply.text.hbs"),
    ),
    (
        "requester_reply.html.hbs",
        include_str!("../../templates/mail/requester_reply.html.hbs"),
    ),
    (
        "portal_link.text.hbs",
        include_str!("../../templates/mail/portal_link.text.hbs"),
    ),
    (
        "portal_link.html.hbs",
        include_str!("../../templates/mail/portal_link.html.hbs"),
    ),
    (
        "mentioned.text.hbs",
        include_str!("../../templates/mail/mentioned.text.hbs"),
    ),
    (
        "mentioned.html.hbs",
        include_str!("../../templates/mail/mentioned.html.hbs"),
    ),
    (
        "partials/footer.text.hbs",
        include_str!("../../templates/mail/partials/footer.text.hbs"),
    ),
    (
        "partials/footer.html.hbs",
        include_str!("../../templates/mail/partials/footer.html.hbs"),
    ),
    (
        "partials/header.html.hbs",
        include_str!("../../templates/mail/partials/header.html.hbs"),
    ),
    (
        "partials/conversation.text.hbs",
        include_str!("../../templates/mail/partials/conversation.text.hbs"),
    ),
    (
        "partials/conversation.html.hbs",
        include_str!("../../templates/mail/partials/conversation.html.hbs"),
    ),
];

/// A template that is missing, unreadable, does not compile or does not render.
#[derive(Debug, thiserror::Error)]
#[error("template {name}: {message}")]
pub struct TemplateError {
    pub name: String,
    pub message: String,
}

/// One rendered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The compiled templates: text ones without escaping, HTML ones escaped.
#[derive(Debug)]
pub struct Templates {
    text: Handlebars<'static>,
    html: Handlebars<'static>,
}

impl Templates {
    /// Compiles the built-in templates, each replaced by the file of the
    /// same name in `overrides` when there is one.
    pub fn load(overrides: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        for (file, builtin) in BUILTIN {
            let source = match overrides.map(|d| d.join(file)).filter(|p| p.is_file()) {
                Some(path) => std::fs::read_to_string(&path).map_err(|e| TemplateError {
                    name: path.display().to_string(),
                    message: e.to_string(),
                })?,
                None => (*builtin).to_string(),
            };
            let (stem, registry) = match file.strip_suffix(".text.hbs") {
                Some(stem) => (stem, &mut text),
                None => (file.trim_end_matches(".html.hbs"), &mut html),
            };
            let fail = |e: handlebars::TemplateError| TemplateError {
                name: (*file).to_string(),
                message: e.to_string(),
            };
            match stem.strip_prefix("partials/") {
                Some(partial) => registry.register_partial(partial, source).map_err(fail)?,
                None => registry
                    .register_template_string(stem, source)
                    .map_err(fail)?,
            }
        }
        Ok(Templates { text, html })
    }

    /// Renders a notice: the text template's first line is the subject.
    pub fn render(
        &self,
        notice: Notice,
        context: &serde_json::Value,
    ) -> Result<Rendered, TemplateError> {
        let name = notice.as_str();
        let fail = |kind: &str, e: handlebars::RenderError| TemplateError {
            name: format!("{name}.{kind}.hbs"),
            message: e.to_string(),
        };
        let text = self
            .text
            .render(name, context)
            .map_err(|e| fail("text", e))?;
        let html = self
            .html
            .render(name, context)
            .map_err(|e| fail("html", e))?;
        let text = text.trim_start();
        let (subject, body) = text.split_once('\n').unwrap_or((text, ""));
        Ok(Rendered {
            subject: subject.trim().to_string(),
            text: tidy(body),
            html,
        })
    }

    /// Whether every notice has both templates (checked at start-up).
    pub fn complete(&self) -> bool {
        ALL_NOTICES
            .iter()
            .all(|n| self.text.has_template(n.as_str()) && self.html.has_template(n.as_str()))
    }
}

/// Trims the body and folds runs of blank lines left by empty sections.
fn tidy(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut blank = 0;
    for line in body.trim().lines() {
        // "-- " is the signature delimiter: keep its space.
        let line = if line == "-- " { line } else { line.trim_end() };
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn context() -> serde_json::Value {
        serde_json::json!({
            "team": "Example Support",
            "for_staff": false,
            "link": "https://desk.example.org/portal/t/abc",
            "marker": "[ref:TKT-7-0123456789abcdef0123]",
            "recipient": { "name": "Ann", "email": "ann@example.com" },
            "ticket": {
                "ref": "TKT-7", "subject": "Printer <on> fire", "status": "open",
                "status_label": "Open", "status_word": "resolved", "priority": "high",
                "category": "general", "requester": "Ann <ann@example.com>", "assignee": null,
            },
            "message": { "author": "Bob", "text": "It <b>burns</b>.", "quoted": "> It burns." },
            "conversation": [ { "author": "Ann", "when": "2026-11-20 10:00 UTC", "text": "Help", "quoted": "> Help", "staff": false } ],
            "reopen_hint": true,
            "reopen_window": "7 days",
            "rating": { "good": "https://desk.example.org/rate/s-7-1-x/good", "bad": "https://desk.example.org/rate/s-7-1-x/bad" },
        })
    }

    #[test]
    fn the_resolved_notice_asks_how_we_did_when_it_can() {
        let t = Templates::load(None).unwrap();
        let r = t.render(Notice::StatusChanged, &context()).unwrap();
        assert!(r.text.contains("How did we do?"));
        assert!(
            r.text
                .contains("Good: https://desk.example.org/rate/s-7-1-x/good")
        );
        assert!(
            r.html
                .contains(r#"href="https://desk.example.org/rate/s-7-1-x/bad""#)
        );
        let mut without = context();
        without["rating"] = serde_json::Value::Null;
        let r = t.render(Notice::StatusChanged, &without).unwrap();
        assert!(!r.text.contains("How did we do?"));
    }

    #[test]
    fn every_notice_renders_with_subject_marker_and_link() {
        let t = Templates::load(None).unwrap();
        assert!(t.complete());
        for n in ALL_NOTICES {
            let r = t.render(n, &context()).unwrap();
            assert!(!r.subject.contains('\n'));
            assert!(r.text.contains("\n-- \n"), "{n:?}: the signature delimiter");
            if n == Notice::PortalLink {
                // About no ticket: no tag, no marker, no reply prompt.
                assert!(!r.subject.contains("TKT-7"), "{}", r.subject);
                assert!(!r.text.contains("[ref:") && !r.html.contains("[ref:"));
                assert!(!r.text.contains("Reply to this mail"), "{}", r.text);
                assert!(r.text.contains("https://desk.example.org/portal/t/abc"));
                continue;
            }
            assert!(r.subject.contains("TKT-7"), "{n:?}: {}", r.subject);
            assert!(r.text.contains("[ref:TKT-7-"), "{n:?}");
            assert!(
                r.text.contains("https://desk.example.org/portal/t/abc"),
                "{n:?}"
            );
            assert!(r.html.contains("[ref:TKT-7-"), "{n:?}");
            assert!(!r.text.contains("\n\n\n"), "{n:?}");
        }
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let t = Templates::load(None).unwrap();
        let r = t.render(Notice::AgentReply, &context()).unwrap();
        assert!(r.html.contains("It &lt;b&gt;burns&lt;/b&gt;."));
        assert!(!r.html.contains("<b>burns"));
        assert!(r.text.contains("It <b>burns</b>."));
        assert_eq!(r.subject, "Re: [TKT-7] Printer <on> fire");
    }

    #[test]
    fn strict_mode_refuses_a_missing_variable() {
        let t = Templates::load(None).unwrap();
        let mut c = context();
        c.as_object_mut().unwrap().remove("marker");
        let e = t.render(Notice::Receipt, &c).unwrap_err();
        assert!(e.name.starts_with("receipt."), "{e}");
    }

    #[test]
    fn a_folder_overrides_templates_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("receipt.text.hbs"),
            "Got it: {{ticket.ref}}\n\nThanks {{recipient.name}}\n{{marker}}\n",
        )
        .unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let r = t.render(Notice::Receipt, &context()).unwrap();
        assert_eq!(r.subject, "Got it: TKT-7");
        assert!(r.text.starts_with("Thanks Ann"));
        // The HTML one is still the built-in.
        assert!(r.html.contains("View your request"));
        std::fs::write(dir.path().join("assigned.html.hbs"), "{{#if}").unwrap();
        assert!(Templates::load(Some(dir.path())).is_err());
    }
}
