//! The queue page (search, filters, sort, presets, pagination, unread
//! marks) and bulk changes of the tickets ticked on it.

use super::*;

/// "1 ticket", "3 tickets".
pub(super) fn tickets(n: usize) -> String {
    if n == 1 {
        "1 ticket".into()
    } else {
        format!("{n} tickets")
    }
}

/// The queue's query string with one parameter replaced (or removed).
pub(super) fn with(params: &QueueParams, change: impl FnOnce(&mut QueueParams)) -> String {
    let mut p = params.clone();
    change(&mut p);
    let q = p.to_query();
    if q.is_empty() {
        "/console".into()
    } else {
        format!("/console?{q}")
    }
}

/// Long because it fills the queue page's context (filters, counts, rows, pages) in one
/// place.
pub(super) async fn queue(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        let params = QueueParams::from_query(raw.as_deref().unwrap_or(""))?;
        let filter = params.filter(&state, &me.user).await?;
        let sort = params.sort()?;
        let (page, per_page) = params.page();
        let (total, rows) = state
            .store
            .queue_page(&filter, sort, page, per_page, Some(&me.viewer()))
            .await?;
        let counts = state.badges.get(&state.store).await?;
        let agents = state.store.users().await?;
        let pages = ((total + i64::from(per_page) - 1) / i64::from(per_page)).max(1);
        let current_status = params.status.clone().unwrap_or_default();
        let mut badges = vec![json!({
            "label": "All", "status": "all", "count": counts.iter().map(|c| c.1).sum::<i64>(),
            "href": with(&params, |p| { p.status = None; p.page = None; }),
            "active": current_status.is_empty(),
        })];
        badges.extend(counts.iter().map(|(s, n)| {
            json!({
                "label": status_label(*s), "status": s.as_str(), "count": n,
                "href": with(&params, |p| { p.status = Some(s.as_str().into()); p.page = None; }),
                "active": current_status == s.as_str(),
            })
        }));
        let settings = state.settings();
        let Choices { statuses, priorities, categories, agents: agent_items } = choices(&settings, &agents, "");
        let mut status_items = vec![("", "Any status"), ("open,in_progress,pending,on_hold", "Not resolved or closed")];
        status_items.extend(statuses.iter().copied());
        let mut priority_items = vec![("", "Any priority")];
        priority_items.extend(priorities.iter().copied());
        let mut category_items = vec![("", "Any category")];
        category_items.extend(categories.iter().copied());
        let mut channel_items = vec![("", "Any channel")];
        channel_items.extend(Channel::ALL.iter().map(|c| (c.as_str(), c.as_str())));
        let mut assignee_items = vec![("", "Anyone"), ("me", "Me"), ("none", "Unassigned")];
        assignee_items.extend(agent_items.iter().copied());
        let mut sla_items = vec![("", "Any SLA state"), ("warning,breached", "Warning or breached")];
        sla_items.extend(SlaState::ALL.iter().map(|s| (s.as_str(), s.as_str())));
        let (sort_key, desc) = sort;
        let columns: Vec<Value> = [
            ("Reference", None),
            ("Subject", Some("subject")),
            ("Requester", None),
            ("Status", Some("status")),
            ("Priority", Some("priority")),
            ("Category", None),
            ("Assignee", None),
            ("SLA", Some("sla")),
            ("Messages", Some("message_count")),
            ("Updated", Some("updated")),
        ]
        .into_iter()
        .map(|(label, key)| {
            let active = key.and_then(crate::store::SortKey::parse).is_some_and(|(k, _)| k == sort_key);
            let href = key.map(|k| {
                // A second click on the active column turns the order round.
                let next = if active { if desc { format!("+{k}") } else { format!("-{k}") } } else { k.to_string() };
                with(&params, |p| { p.sort = Some(next); p.page = None; })
            });
            json!({ "label": label, "href": href, "active": active, "desc": desc })
        })
        .collect();
        let rows: Vec<Value> = rows
            .iter()
            .map(|t| {
                json!({
                    "id": t.id, "ref": t.reference.to_string(), "subject": t.subject,
                    "requester": if t.requester_name.is_empty() { &t.requester_email } else { &t.requester_name },
                    "requester_email": t.requester_email,
                    "status": t.status.as_str(), "status_label": status_label(t.status),
                    "priority": t.priority.as_str(), "category": t.category,
                    "assignee": t.assignee_email.clone().unwrap_or_default(),
                    "sla": t.sla_state.as_str(), "messages": t.message_count,
                    "updated": t.updated_at, "unread": t.unread,
                })
            })
            .collect();
        let text = |v: &Option<String>| json!(v.clone().unwrap_or_default());
        let mut c = base(&state, "Queue", Some(me));
        c.insert("total".into(), json!(total));
        // Saved views with their counts; the one this page shows marked.
        let here = with(&params, |p| p.page = None);
        let here = here.trim_start_matches("/console").trim_start_matches('?');
        let views: Vec<Value> = crate::web::views::listed(&state, &me.user)
            .await?
            .into_iter()
            .map(|mut v| {
                let active = v["query"].as_str() == Some(here);
                v["active"] = json!(active);
                v
            })
            .collect();
        c.insert("views".into(), json!(views));
        c.insert("can_save_view".into(), json!(!here.is_empty()));
        c.insert("badges".into(), json!(badges));
        c.insert(
            "params".into(),
            json!({
                "q": text(&params.q), "tag": text(&params.tag), "sort": text(&params.sort),
                "created_from": text(&params.created_from), "created_to": text(&params.created_to),
                "updated_from": text(&params.updated_from), "updated_to": text(&params.updated_to),
            }),
        );
        c.insert("status_options".into(), json!(options(status_items, &current_status)));
        c.insert("priority_options".into(), json!(options(priority_items, params.priority.as_deref().unwrap_or(""))));
        c.insert("category_options".into(), json!(options(category_items, params.category.as_deref().unwrap_or(""))));
        c.insert("channel_options".into(), json!(options(channel_items, params.channel.as_deref().unwrap_or(""))));
        c.insert("assignee_options".into(), json!(options(assignee_items, params.assignee.as_deref().unwrap_or(""))));
        c.insert("sla_options".into(), json!(options(sla_items, params.sla.as_deref().unwrap_or(""))));
        c.insert("columns".into(), json!(columns));
        c.insert("rows".into(), json!(rows));
        c.insert("page".into(), json!(page));
        c.insert("pages".into(), json!(pages));
        c.insert(
            "prev".into(),
            json!((page > 1).then(|| with(&params, |p| p.page = Some(page - 1)))),
        );
        c.insert(
            "next".into(),
            json!((i64::from(page) < pages).then(|| with(&params, |p| p.page = Some(page + 1)))),
        );
        c.insert("query".into(), json!(with(&params, |p| p.page = None).trim_start_matches("/console").trim_start_matches('?')));
        c.insert("bulk_statuses".into(), json!(options(statuses.iter().copied(), "")));
        c.insert("bulk_priorities".into(), json!(options(priorities.iter().copied(), "")));
        c.insert("bulk_categories".into(), json!(options(categories.iter().copied(), "")));
        c.insert("bulk_agents".into(), json!(options(agent_items.iter().copied(), "")));
        Ok(state.pages.render(StatusCode::OK, "console_queue", &Value::Object(c)))
    })
    .await
}

// ---------------------------------------------------------------- bulk

/// A bulk form as sent: ids may repeat, so it is read by hand.
#[derive(Debug, Default)]
pub(super) struct BulkForm {
    csrf: String,
    ids: Vec<i64>,
    all: bool,
    filter: String,
    action: String,
    confirm: bool,
    status: String,
    priority: String,
    category: String,
    assignee: String,
}

impl BulkForm {
    fn parse(body: &[u8]) -> BulkForm {
        let mut f = BulkForm::default();
        for (k, v) in form_urlencoded::parse(body).take(BULK_LIMIT as usize + 64) {
            let v = v.into_owned();
            match &*k {
                "csrf" => f.csrf = v,
                "ids" => f.ids.extend(v.parse::<i64>().ok()),
                "all" => f.all = v == "1",
                "filter" => f.filter = v,
                "action" => f.action = v,
                "confirm" => f.confirm = v == "yes",
                "status" => f.status = v,
                "priority" => f.priority = v,
                "category" => f.category = v,
                "assignee" => f.assignee = v,
                _ => {}
            }
        }
        f
    }

    /// The changes asked for, each to apply to every ticket.
    fn changes(&self) -> Result<Vec<Change>, WebError> {
        let bad = |e: crate::domain::ParseError| WebError::BadRequest(e.to_string());
        let mut out = Vec::new();
        if !self.status.is_empty() {
            out.push(Change::Status(self.status.parse().map_err(bad)?));
        }
        if !self.priority.is_empty() {
            out.push(Change::Priority(self.priority.parse().map_err(bad)?));
        }
        if !self.category.is_empty() {
            out.push(Change::Category(self.category.clone()));
        }
        match self.assignee.as_str() {
            "" => {}
            "none" => out.push(Change::Assignee(None)),
            a => out.push(Change::Assignee(Some(a.parse().map_err(bad)?))),
        }
        Ok(out)
    }
}

pub(super) async fn bulk(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.badges.clear();
    page(&state, &headers, async |me: &Staff| {
        let form = BulkForm::parse(&body);
        let back = if form.filter.is_empty() {
            "/console".to_string()
        } else {
            format!("/console?{}", form.filter)
        };
        me.check(&form.csrf)?;
        let run = async {
            let ids = if form.all {
                let params = QueueParams::from_query(&form.filter)?;
                let filter = params.filter(&state, &me.user).await?;
                state.store.ticket_ids_matching(&filter, BULK_LIMIT).await?
            } else {
                form.ids.iter().copied().take(BULK_LIMIT as usize).collect()
            };
            if ids.is_empty() {
                return Err(WebError::BadRequest(
                    "Tick at least one ticket, or \"all matching\".".into(),
                ));
            }
            let now = now_millis();
            let (mut done, mut failed) = (0usize, Vec::new());
            if form.action == "delete" {
                if !form.confirm {
                    return Err(WebError::BadRequest(
                        "Tick \"Yes, delete them for good\" to delete.".into(),
                    ));
                }
                for id in &ids {
                    match state.actions.delete(me.actor(), *id).await {
                        Ok(()) => done += 1,
                        Err(ActionError::Forbidden(m)) => return Err(WebError::Forbidden(m)),
                        Err(e) => failed.push(format!("{id}: {e}")),
                    }
                }
                return Ok((format!("Deleted {}.", tickets(done)), failed));
            }
            let changes = form.changes()?;
            if changes.is_empty() {
                return Err(WebError::BadRequest("Choose what to change.".into()));
            }
            for id in &ids {
                // Each ticket's changes in one transaction: all or none.
                match state
                    .actions
                    .change_all(me.actor(), *id, changes.clone(), now)
                    .await
                {
                    Ok(_) => done += 1,
                    Err(ActionError::Forbidden(m)) => return Err(WebError::Forbidden(m)),
                    Err(e) => failed.push(format!("ticket {id}: {e}")),
                }
            }
            Ok((format!("Updated {done} of {}.", tickets(ids.len())), failed))
        };
        match run.await {
            Ok((text, failed)) => {
                let text = if failed.is_empty() {
                    text
                } else {
                    format!(
                        "{text} Not changed: {}",
                        failed.into_iter().take(20).collect::<Vec<_>>().join("; ")
                    )
                };
                Ok(message(
                    &state,
                    Some(me),
                    StatusCode::OK,
                    "Bulk update",
                    &text,
                    Some((&back, "Back to the queue")),
                ))
            }
            Err(e) => Err(e),
        }
    })
    .await
}

// ---------------------------------------------------------------- profile and tokens

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_forms_keep_every_ticked_id_and_parse_their_changes() {
        let f = BulkForm::parse(
            b"csrf=x&ids=3&ids=5&ids=junk&status=resolved&assignee=none&priority=&action=update",
        );
        assert_eq!(f.ids, vec![3, 5]);
        assert_eq!(
            f.changes().ok().unwrap(),
            vec![Change::Status(Status::Resolved), Change::Assignee(None)]
        );
        assert!(BulkForm::parse(b"status=sideways").changes().is_err());
    }
}
