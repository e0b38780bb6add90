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
use super::{Staff, WebError, base, options, page};
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

/// A value the settings form refused: the field's name and what to do.
#[derive(Debug)]
struct FieldError {
    field: &'static str,
    message: String,
}

impl FieldError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field,
            message: message.into(),
        }
    }
}

/// The settings page: the settings in force, or, after a refused save,
/// the values as typed with the error next to its field.
async fn settings_page(
    state: &AppState,
    me: &Staff,
    status: StatusCode,
    notice: Option<String>,
    typed: Option<(&SettingsForm, &FieldError)>,
) -> Result<Response, WebError> {
    let s = state.settings();
    let users = state.store.users().await?;
    let current = match typed {
        Some((form, _)) => form.default_assignee.trim().to_string(),
        None => s
            .tickets
            .default_assignee
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default(),
    };
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
            let (first, resolution) = match typed {
                Some((form, _)) => {
                    let (f, r) = form.targets_of(*p);
                    (f.to_string(), r.to_string())
                }
                None => {
                    let t = match p {
                        Priority::Low => s.sla.low,
                        Priority::Normal => s.sla.normal,
                        Priority::High => s.sla.high,
                        Priority::Urgent => s.sla.urgent,
                    };
                    (span_text(t.first_response), span_text(t.resolution))
                }
            };
            let (first_field, resolution_field) = target_fields(*p);
            let error_of = |field: &str| {
                typed
                    .filter(|(_, e)| e.field == field)
                    .map(|(_, e)| e.message.clone())
            };
            json!({
                "priority": p.as_str(),
                "first_response": first,
                "resolution": resolution,
                "first_error": error_of(first_field),
                "resolution_error": error_of(resolution_field),
            })
        })
        .collect();
    let mut c = base(state, "Settings", Some(me));
    let values = match typed {
        Some((form, _)) => json!({
            "notification_address": form.notification_address,
            "auto_close_after": form.auto_close_after,
            "reopen_window": form.reopen_window,
            "sla_enabled": form.sla_enabled.is_some(),
            "categories": form.categories,
            "related_kinds": form.related_kinds,
            "support_url": form.support_url,
            "prefix": s.tickets.prefix,
        }),
        None => json!({
            "notification_address": s.tickets.notification_address.as_ref().map(|a| a.to_string()).unwrap_or_default(),
            "auto_close_after": s.tickets.auto_close_after.to_string(),
            "reopen_window": s.tickets.reopen_window.to_string(),
            "sla_enabled": s.sla.enabled,
            "categories": s.tickets.categories.join("\n"),
            "related_kinds": s.tickets.related_kinds.join(", "),
            "support_url": s.http.support_url.clone().unwrap_or_default(),
            "prefix": s.tickets.prefix,
        }),
    };
    c.insert("s".into(), values);
    if let Some((_, error)) = typed {
        let mut errors = serde_json::Map::new();
        errors.insert(error.field.into(), json!(error.message));
        c.insert("errors".into(), Value::Object(errors));
        c.insert(
            "error".into(),
            json!(format!("Nothing was saved: {}", error.message)),
        );
    }
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
        settings_page(&state, me, StatusCode::OK, None, None).await
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

/// `field` (the form's name for it) refused: "What: why".
fn bad(field: &'static str, what: &str, e: impl std::fmt::Display) -> FieldError {
    FieldError::new(field, format!("{what}: {e}"))
}

fn address(field: &'static str, what: &str, raw: &str) -> Result<Option<EmailAddress>, FieldError> {
    match raw.trim() {
        "" => Ok(None),
        a => a.parse().map(Some).map_err(|e| bad(field, what, e)),
    }
}

fn span(field: &'static str, what: &str, raw: &str) -> Result<Span, FieldError> {
    raw.trim().parse().map_err(|e| bad(field, what, e))
}

/// A target: blank (or 0) means none.
fn target(field: &'static str, what: &str, raw: &str) -> Result<Option<Span>, FieldError> {
    match raw.trim() {
        "" => Ok(None),
        t => Ok(Some(span(field, what, t)?).filter(|s| !s.is_zero())),
    }
}

/// The form's field names of a priority's two targets.
fn target_fields(p: Priority) -> (&'static str, &'static str) {
    match p {
        Priority::Low => ("low_first_response", "low_resolution"),
        Priority::Normal => ("normal_first_response", "normal_resolution"),
        Priority::High => ("high_first_response", "high_resolution"),
        Priority::Urgent => ("urgent_first_response", "urgent_resolution"),
    }
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
    /// A priority's two targets as typed (first response, resolution).
    fn targets_of(&self, p: Priority) -> (&str, &str) {
        match p {
            Priority::Low => (&self.low_first_response, &self.low_resolution),
            Priority::Normal => (&self.normal_first_response, &self.normal_resolution),
            Priority::High => (&self.high_first_response, &self.high_resolution),
            Priority::Urgent => (&self.urgent_first_response, &self.urgent_resolution),
        }
    }

    fn targets(&self, p: Priority) -> Result<SlaTargets, FieldError> {
        let (first, resolution) = self.targets_of(p);
        let (first_field, resolution_field) = target_fields(p);
        let name = match p {
            Priority::Low => "Low",
            Priority::Normal => "Normal",
            Priority::High => "High",
            Priority::Urgent => "Urgent",
        };
        Ok(SlaTargets {
            first_response: target(first_field, &format!("{name} first response"), first)?,
            resolution: target(resolution_field, &format!("{name} resolution"), resolution)?,
        })
    }

    fn edits(&self) -> Result<Editable, FieldError> {
        let categories = items(&self.categories);
        if categories.is_empty() {
            return Err(FieldError::new(
                "categories",
                "Keep at least one category (the first is the default).",
            ));
        }
        let support_url = match self.support_url.trim() {
            "" => None,
            u if u.starts_with("https://") || u.starts_with("http://") => Some(u.to_string()),
            u => {
                return Err(bad(
                    "support_url",
                    "Support URL",
                    format!("`{u}` is not an http(s) address"),
                ));
            }
        };
        Ok(Editable {
            notification_address: address(
                "notification_address",
                "Notification address",
                &self.notification_address,
            )?,
            auto_close_after: span("auto_close_after", "Auto-close", &self.auto_close_after)?,
            reopen_window: span("reopen_window", "Reopen window", &self.reopen_window)?,
            default_assignee: address(
                "default_assignee",
                "Default assignee",
                &self.default_assignee,
            )?,
            sla: SlaSettings {
                enabled: self.sla_enabled.is_some(),
                low: self.targets(Priority::Low)?,
                normal: self.targets(Priority::Normal)?,
                high: self.targets(Priority::High)?,
                urgent: self.targets(Priority::Urgent)?,
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
        let refused = |error: FieldError| {
            let (state, form) = (&state, &form);
            async move {
                settings_page(
                    state,
                    me,
                    StatusCode::BAD_REQUEST,
                    None,
                    Some((form, &error)),
                )
                .await
            }
        };
        let edits = match form.edits() {
            Ok(edits) => edits,
            Err(error) => return refused(error).await,
        };
        if let Some(a) = &edits.default_assignee
            && state.store.user_by_email(a).await?.is_none_or(|u| !u.active)
        {
            return refused(FieldError::new(
                "default_assignee",
                format!("Default assignee: {a} is no active agent."),
            ))
            .await;
        }
        let json = serde_json::to_string(&edits).map_err(|_| WebError::Internal)?;
        let changed = match state.live.apply(&edits) {
            Ok(changed) => changed,
            Err(e) => {
                return refused(FieldError::new("form", format!("These settings: {e}"))).await;
            }
        };
        state.store.put_setting(SETTINGS_KEY, &json).await?;
        tracing::info!(by = %me.user.email, changed, "console: settings saved");
        if changed {
            // Open tickets' SLA states follow new targets.
            let scheduler = crate::scheduler::Scheduler::new(state.actions.clone());
            // On the daemon's task tracker: a shutdown waits for it.
            state.tasks.spawn(async move {
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
            None,
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
        assert_eq!(target("f", "x", "").unwrap(), None);
        assert_eq!(target("f", "x", "0").unwrap(), None);
        assert_eq!(target("f", "x", "4h").unwrap(), Some(Span::secs(4 * 3600)));
        assert_eq!(target("f", "x", "soon").unwrap_err().field, "f");
        let form = SettingsForm {
            auto_close_after: "3d".into(),
            reopen_window: "1w".into(),
            categories: "General".into(),
            support_url: "javascript:alert(1)".into(),
            ..Default::default()
        };
        assert_eq!(
            form.edits().unwrap_err().field,
            "support_url",
            "only http(s) support links"
        );
    }
}
