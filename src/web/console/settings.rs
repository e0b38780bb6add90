//! The settings page (admins): notification address, auto-close, reopen
//! window, default assignee, SLA targets, categories, related-reference
//! kinds and the external support URL. Saved in the database, put in force
//! at once on this daemon and within seconds on the others
//! (`app::watch_settings`); the ticket prefix is shown, not edited (it is in
//! every reference already mailed out).

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::admin::admin_only;
use super::{ConsoleError, Staff, base, options, page};
use crate::config::{Editable, SlaSettings};
use crate::domain::{EmailAddress, Priority, SlaTargets, Span};
use crate::store::now_millis;
use crate::web::AppState;

/// Where the console's settings are kept (JSON of [`Editable`]).
pub const SETTINGS_KEY: &str = "console_settings";

/// The settings page's route.
pub fn router() -> Router<AppState> {
    Router::new().route("/console/admin/settings", get(show).post(save))
}

fn span_text(s: Option<Span>) -> String {
    s.map(|s| s.to_string()).unwrap_or_default()
}

async fn settings_page(
    state: &AppState,
    me: &Staff,
    status: StatusCode,
    notice: Option<String>,
) -> Result<Response, ConsoleError> {
    let s = state.settings();
    let users = state.store.users().await?;
    let current = s
        .tickets
        .default_assignee
        .as_ref()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut agents = vec![("", "Nobody (unassigned)")];
    agents.extend(
        users
            .iter()
            .filter(|u| u.active)
            .map(|u| (u.email.as_str(), u.email.as_str())),
    );
    let sla: Vec<Value> = Priority::ALL
        .iter()
        .map(|p| {
            let t = match p {
                Priority::Low => s.sla.low,
                Priority::Normal => s.sla.normal,
                Priority::High => s.sla.high,
                Priority::Urgent => s.sla.urgent,
            };
            json!({
                "priority": p.as_str(),
                "first_response": span_text(t.first_response),
                "resolution": span_text(t.resolution),
            })
        })
        .collect();
    let mut c = base(state, "Settings", Some(me));
    c.insert(
        "s".into(),
        json!({
            "notification_address": s.tickets.notification_address.as_ref().map(|a| a.to_string()).unwrap_or_default(),
            "auto_close_after": s.tickets.auto_close_after.to_string(),
            "reopen_window": s.tickets.reopen_window.to_string(),
            "sla_enabled": s.sla.enabled,
            "categories": s.tickets.categories.join("\n"),
            "related_kinds": s.tickets.related_kinds.join(", "),
            "support_url": s.http.support_url.clone().unwrap_or_default(),
            "prefix": s.tickets.prefix,
        }),
    );
    c.insert("sla".into(), json!(sla));
    c.insert("agents".into(), json!(options(agents, &current)));
    c.insert("notice".into(), json!(notice));
    Ok(state
        .pages
        .render(status, "console_settings", &Value::Object(c)))
}

async fn show(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state, &headers, async |me: &Staff| {
        admin_only(me)?;
        settings_page(&state, me, StatusCode::OK, None).await
    })
    .await
}

/// The settings form as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SettingsForm {
    csrf: String,
    notification_address: String,
    auto_close_after: String,
    reopen_window: String,
    default_assignee: String,
    sla_enabled: Option<String>,
    low_first_response: String,
    low_resolution: String,
    normal_first_response: String,
    normal_resolution: String,
    high_first_response: String,
    high_resolution: String,
    urgent_first_response: String,
    urgent_resolution: String,
    categories: String,
    related_kinds: String,
    support_url: String,
}

fn bad(what: &str, e: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::BadForm(format!("{what}: {e}"))
}

fn address(what: &str, raw: &str) -> Result<Option<EmailAddress>, ConsoleError> {
    match raw.trim() {
        "" => Ok(None),
        a => a.parse().map(Some).map_err(|e| bad(what, e)),
    }
}

fn span(what: &str, raw: &str) -> Result<Span, ConsoleError> {
    raw.trim().parse().map_err(|e| bad(what, e))
}

/// A target: blank (or 0) means none.
fn target(what: &str, raw: &str) -> Result<Option<Span>, ConsoleError> {
    match raw.trim() {
        "" => Ok(None),
        t => Ok(Some(span(what, t)?).filter(|s| !s.is_zero())),
    }
}

fn targets(p: &str, first: &str, resolution: &str) -> Result<SlaTargets, ConsoleError> {
    Ok(SlaTargets {
        first_response: target(&format!("{p} first response"), first)?,
        resolution: target(&format!("{p} resolution"), resolution)?,
    })
}

/// Items of a list typed one per line or separated by commas, trimmed,
/// without blanks or repeats.
fn items(raw: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in raw
        .split(['\n', ','])
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(item)) {
            out.push(item.chars().take(60).collect());
        }
    }
    out.truncate(100);
    out
}

impl SettingsForm {
    fn edits(&self) -> Result<Editable, ConsoleError> {
        let categories = items(&self.categories);
        if categories.is_empty() {
            return Err(ConsoleError::BadForm(
                "Keep at least one category (the first is the default).".into(),
            ));
        }
        let support_url = match self.support_url.trim() {
            "" => None,
            u if u.starts_with("https://") || u.starts_with("http://") => Some(u.to_string()),
            u => {
                return Err(bad(
                    "Support URL",
                    format!("`{u}` is not an http(s) address"),
                ));
            }
        };
        Ok(Editable {
            notification_address: address("Notification address", &self.notification_address)?,
            auto_close_after: span("Auto-close", &self.auto_close_after)?,
            reopen_window: span("Reopen window", &self.reopen_window)?,
            default_assignee: address("Default assignee", &self.default_assignee)?,
            sla: SlaSettings {
                enabled: self.sla_enabled.is_some(),
                low: targets("Low", &self.low_first_response, &self.low_resolution)?,
                normal: targets(
                    "Normal",
                    &self.normal_first_response,
                    &self.normal_resolution,
                )?,
                high: targets("High", &self.high_first_response, &self.high_resolution)?,
                urgent: targets(
                    "Urgent",
                    &self.urgent_first_response,
                    &self.urgent_resolution,
                )?,
            },
            categories,
            related_kinds: items(&self.related_kinds),
            support_url,
        })
    }
}

async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SettingsForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        admin_only(me)?;
        me.check(&form.csrf)?;
        let edits = form.edits()?;
        if let Some(a) = &edits.default_assignee
            && state.store.user_by_email(a).await?.is_none_or(|u| !u.active)
        {
            return Err(ConsoleError::BadForm(format!(
                "Default assignee: {a} is no active agent."
            )));
        }
        let json = serde_json::to_string(&edits).map_err(|_| ConsoleError::Internal)?;
        let changed = state
            .live
            .apply(&edits)
            .map_err(|e| bad("These settings", e))?;
        state.store.put_setting(SETTINGS_KEY, &json).await?;
        tracing::info!(by = %me.user.email, changed, "console: settings saved");
        if changed {
            // Open tickets' SLA states follow new targets.
            let scheduler = crate::scheduler::Scheduler::new(state.actions.clone());
            tokio::spawn(async move {
                if let Err(e) = scheduler.refresh_all_if_settings_changed(now_millis()).await {
                    tracing::warn!(error = %e, "could not refresh SLA states after a settings change");
                }
            });
        }
        settings_page(
            &state,
            me,
            StatusCode::OK,
            Some("Settings saved; they are in force now.".into()),
        )
        .await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_targets_parse_forgivingly_but_not_silently() {
        assert_eq!(
            items("General\n billing, General ,\n\nBug Report"),
            ["General", "billing", "Bug Report"]
        );
        assert_eq!(target("x", "").unwrap(), None);
        assert_eq!(target("x", "0").unwrap(), None);
        assert_eq!(target("x", "4h").unwrap(), Some(Span::secs(4 * 3600)));
        assert!(target("x", "soon").is_err());
        let form = SettingsForm {
            auto_close_after: "3d".into(),
            reopen_window: "1w".into(),
            categories: "General".into(),
            support_url: "javascript:alert(1)".into(),
            ..Default::default()
        };
        assert!(form.edits().is_err(), "only http(s) support links");
    }
}
