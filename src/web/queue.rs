//! The queue's query parameters, shared by the console, its exports and the
//! JSON API: all text as sent, parsed once into a `TicketFilter` with errors
//! a person can act on; and the URL of a filter, to keep it in links.

use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::WebError;
use crate::domain::{Channel, EmailAddress, Priority, SlaState, Status, parse_time};
use crate::store::{AssigneeFilter, SortKey, TicketFilter, User};

/// Query parameters of a ticket list (`?status=open,pending&q=printer…`).
/// Several values of one filter are separated by commas.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueParams {
    #[serde(skip_serializing_if = "blank")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub priority: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub channel: Option<String>,
    /// `me`, `none`, `any` or an agent's address.
    #[serde(skip_serializing_if = "blank")]
    pub assignee: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub sla: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub q: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub sort: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_page: Option<u32>,
    #[serde(skip_serializing_if = "blank")]
    pub created_from: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub created_to: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub updated_from: Option<String>,
    #[serde(skip_serializing_if = "blank")]
    pub updated_to: Option<String>,
}

fn blank(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(|s| s.trim().is_empty())
}

fn bad(e: impl std::fmt::Display) -> WebError {
    WebError::BadRequest(e.to_string())
}

fn list_of<T>(
    raw: &Option<String>,
    parse: impl Fn(&str) -> Result<T, WebError>,
) -> Result<Vec<T>, WebError> {
    raw.as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(16)
        .map(parse)
        .collect()
}

fn time_param(raw: &Option<String>) -> Result<Option<i64>, WebError> {
    raw.as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(parse_time)
        .transpose()
        .map_err(bad)
}

/// The most tickets one page shows.
pub const MAX_PER_PAGE: u32 = 200;

impl QueueParams {
    /// The filter these parameters describe, as `me` sees it (`assignee=me`).
    pub async fn filter(&self, state: &AppState, me: &User) -> Result<TicketFilter, WebError> {
        let assignee = match self.assignee.as_deref().map(str::trim) {
            None | Some("") | Some("any") => AssigneeFilter::Anyone,
            Some("none") => AssigneeFilter::Unassigned,
            Some("me") => AssigneeFilter::User(me.id),
            Some(email) => {
                let email: EmailAddress = email.parse().map_err(bad)?;
                let user = state.store.user_by_email(&email).await?;
                AssigneeFilter::User(user.map(|u| u.id).unwrap_or(-1))
            }
        };
        Ok(TicketFilter {
            status: list_of(&self.status, |s| s.parse::<Status>().map_err(bad))?,
            priority: list_of(&self.priority, |s| s.parse::<Priority>().map_err(bad))?,
            sla: list_of(&self.sla, |s| {
                SlaState::parse(s)
                    .ok_or_else(|| bad(format!("sla `{s}` is not none, ok, warning or breached")))
            })?,
            category: list_of(&self.category, |c| Ok(c.to_string()))?,
            channel: list_of(&self.channel, |c| c.parse::<Channel>().map_err(bad))?,
            assignee,
            tag: list_of(&self.tag, |t| {
                crate::domain::ticket::normalise_tag(t)
                    .ok_or_else(|| bad(format!("tag `{t}` is not a tag")))
            })?,
            requester_id: None,
            q: self
                .q
                .clone()
                .filter(|q| !q.trim().is_empty())
                .map(|q| q.chars().take(200).collect()),
            created_from: time_param(&self.created_from)?,
            created_to: time_param(&self.created_to)?,
            updated_from: time_param(&self.updated_from)?,
            updated_to: time_param(&self.updated_to)?,
        })
    }

    /// The sort order asked for (default: last updated first).
    pub fn sort(&self) -> Result<(SortKey, bool), WebError> {
        match self.sort.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => SortKey::parse(s).ok_or_else(|| {
                bad(format!(
                    "sort `{s}` is not one of updated, created, subject, status, priority, message_count, sla (prefix - for descending)"
                ))
            }),
            None => Ok((SortKey::Updated, true)),
        }
    }

    /// (page, per page), both at least 1, per page at most `MAX_PER_PAGE`.
    pub fn page(&self) -> (u32, u32) {
        (
            self.page.unwrap_or(1).max(1),
            self.per_page.unwrap_or(25).clamp(1, MAX_PER_PAGE),
        )
    }

    /// These parameters as a query string (without `?`), blanks left out.
    pub fn to_query(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }

    /// Parses a query string as sent (used for "all matching" in bulk forms).
    pub fn from_query(query: &str) -> Result<QueueParams, WebError> {
        serde_urlencoded::from_str(query).map_err(|e| bad(format!("filter: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_survives_its_query_string_and_blanks_drop_out() {
        let p = QueueParams::from_query(
            "status=open%2Cpending&q=printer+fire&assignee=&page=3&sort=-created",
        )
        .unwrap();
        assert_eq!(p.status.as_deref(), Some("open,pending"));
        assert_eq!(p.q.as_deref(), Some("printer fire"));
        let q = p.to_query();
        assert!(!q.contains("assignee"), "{q}");
        let again = QueueParams::from_query(&q).unwrap();
        assert_eq!(again.to_query(), q);
        assert_eq!(again.page(), (3, 25));
        assert_eq!(again.sort().unwrap(), (SortKey::Created, true));
        assert!(QueueParams::from_query("bogus=1").is_err());
        let p = QueueParams {
            sort: Some("colour".into()),
            per_page: Some(100_000),
            page: Some(0),
            ..Default::default()
        };
        assert!(p.sort().is_err());
        assert_eq!(p.page(), (1, MAX_PER_PAGE));
    }
}
