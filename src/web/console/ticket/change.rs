//! The ticket page's changes: the field controls (every field that differs
//! is one change, all in one transaction), merge and delete.

use super::*;

/// The field controls as sent; each field that differs from the ticket is
/// one change (and one system message).
#[derive(Debug, Deserialize)]
pub(super) struct FieldsForm {
    csrf: String,
    status: String,
    priority: String,
    category: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    due: String,
    related_kind: Option<String>,
    related_id: Option<String>,
}

/// The changes a fields form asks of a ticket (only what differs).
pub(super) fn field_changes(t: &Ticket, f: &FieldsForm) -> Result<Vec<Change>, WebError> {
    let bad = |e: crate::domain::ParseError| WebError::BadRequest(e.to_string());
    let mut out = Vec::new();
    let status: Status = f.status.parse().map_err(bad)?;
    if status != t.status {
        out.push(Change::Status(status));
    }
    let priority: Priority = f.priority.parse().map_err(bad)?;
    if priority != t.priority {
        out.push(Change::Priority(priority));
    }
    if f.category.trim() != t.category {
        out.push(Change::Category(f.category.trim().to_string()));
    }
    let assignee: Option<EmailAddress> = match f.assignee.trim() {
        "" => None,
        a => Some(a.parse().map_err(bad)?),
    };
    if assignee.as_ref() != t.assignee.as_ref().map(|u| &u.email) {
        out.push(Change::Assignee(assignee));
    }
    let mut tags: Vec<String> = f
        .tags
        .split(',')
        .filter_map(crate::domain::ticket::normalise_tag)
        .take(50)
        .collect();
    tags.sort();
    tags.dedup();
    if tags != t.tags {
        out.push(Change::Tags(tags));
    }
    let due = match f.due.trim() {
        "" => None,
        d => Some(parse_time(d).map_err(bad)?),
    };
    let same_day = |a: Option<i64>, b: Option<i64>| a.map(date_only) == b.map(date_only);
    if !same_day(due, t.due_at) {
        out.push(Change::DueDate(due));
    }
    if let (Some(kind), Some(id)) = (&f.related_kind, &f.related_id) {
        let related = match (kind.trim(), id.trim()) {
            ("", _) | (_, "") => None,
            (k, i) => Some((k.to_string(), i.to_string())),
        };
        if related != t.related {
            out.push(Change::Related(related));
        }
    }
    Ok(out)
}

pub(super) async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    Form(form): Form<FieldsForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        me.check(&form.csrf)?;
        let t = find(&state, &reference).await?;
        let now = now_millis();
        // The form's fields in one transaction: all of them or none.
        state
            .actions
            .change_all(me.actor(), t.id, field_changes(&t, &form)?, now)
            .await?;
        Ok(back_to(&state, &t))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(super) struct MergeForm {
    csrf: String,
    into: String,
    #[serde(default)]
    confirm: String,
}

pub(super) async fn merge(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    Form(form): Form<MergeForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        me.check(&form.csrf)?;
        if form.confirm != "yes" {
            return Err(WebError::BadRequest(
                "Tick the box to confirm the merge.".into(),
            ));
        }
        let from = find(&state, &reference).await?;
        let into = find(&state, &form.into).await?;
        state
            .actions
            .merge(me.actor(), from.id, into.id, now_millis())
            .await?;
        Ok(back_to(&state, &into))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(super) struct DeleteForm {
    csrf: String,
    #[serde(default)]
    confirm: String,
}

pub(super) async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        me.check(&form.csrf)?;
        if form.confirm != "yes" {
            return Err(WebError::BadRequest(
                "Tick the box to confirm the deletion.".into(),
            ));
        }
        let t = find(&state, &reference).await?;
        state.actions.delete(me.actor(), t.id).await?;
        state.badges.clear();
        Ok(message(
            &state,
            Some(me),
            StatusCode::OK,
            "Deleted",
            &format!("{} and its thread are gone.", t.reference),
            Some(("/console", "Back to the queue")),
        ))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_form_changes_only_what_differs() {
        let t = Ticket {
            id: 1,
            reference: crate::domain::TicketRef::new("TKT", 1),
            subject: "Printer".into(),
            status: Status::Open,
            priority: Priority::Normal,
            category: "General".into(),
            channel: crate::domain::Channel::Email,
            requester: crate::store::Requester {
                id: 1,
                email: "ann@example.org".parse().unwrap(),
                first_name: "Ann".into(),
                last_name: String::new(),
                undeliverable_at: None,
            },
            assignee: None,
            mailbox_id: None,
            due_at: None,
            related: None,
            linked_ticket_id: None,
            merged_into_id: None,
            message_count: 1,
            created_at: 0,
            updated_at: 0,
            last_message_at: 0,
            first_response_at: None,
            resolved_at: None,
            closed_at: None,
            pause: Default::default(),
            sla_state: crate::domain::SlaState::None,
            sla_due_at: None,
            tags: Vec::new(),
        };
        let form = |status: &str, tags: &str, due: &str| FieldsForm {
            csrf: String::new(),
            status: status.into(),
            priority: t.priority.as_str().into(),
            category: t.category.clone(),
            assignee: String::new(),
            tags: tags.into(),
            due: due.into(),
            related_kind: None,
            related_id: None,
        };
        assert!(field_changes(&t, &form("open", "", "")).unwrap().is_empty());
        assert_eq!(
            field_changes(&t, &form("pending", " VIP, vip ,billing", "2026-12-01")).unwrap(),
            vec![
                Change::Status(Status::Pending),
                Change::Tags(vec!["billing".into(), "vip".into()]),
                Change::DueDate(Some(parse_time("2026-12-01").unwrap())),
            ]
        );
        assert!(field_changes(&t, &form("sideways", "", "")).is_err());
        assert!(field_changes(&t, &form("open", "", "someday")).is_err());
    }
}
