//! The outbox page: notification mail queued, sent, failed or held back,
//! and retrying one.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct OutboxQuery {
    #[serde(default)]
    state: String,
}

/// `GET /console/admin/outbox?state=failed`: notifications by state, with
/// the server's answer and a retry button (admins).
pub(super) async fn outbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<OutboxQuery>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        admin_only(me)?;
        let counts = state.store.outbox_counts().await?;
        let wanted = if q.state.is_empty() {
            "failed"
        } else {
            q.state.as_str()
        };
        let states: Vec<Value> = ["failed", "held", "suppressed", "queued", "sent"]
            .into_iter()
            .map(|s| {
                json!({
                    "value": s, "label": s, "active": s == wanted,
                    "count": counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n),
                })
            })
            .collect();
        let rows = state.store.outbox_list(Some(wanted), 200).await?;
        let mut list = Vec::with_capacity(rows.len());
        for o in &rows {
            let mut row = crate::web::console::ticket::delivery_json(o);
            let reference = match o.ticket_id {
                Some(id) => state
                    .store
                    .ticket(id)
                    .await?
                    .map(|t| t.reference.to_string()),
                None => None,
            };
            row["ticket"] = json!(reference);
            list.push(row);
        }
        let mut c = base(&state, "Outbox", Some(me));
        c.insert("states".into(), json!(states));
        c.insert("rows".into(), json!(list));
        c.insert("notice".into(), Value::Null);
        Ok(state
            .pages
            .render(StatusCode::OK, "console_outbox", &Value::Object(c)))
    })
    .await
}

/// `POST /console/admin/outbox/{id}/retry` (admins).
pub(super) async fn outbox_retry(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        admin_only(me)?;
        me.check(&form.csrf)?;
        state.store.outbox_retry(Some(id), now_millis()).await?;
        Ok(Redirect::to("/console/admin/outbox").into_response())
    })
    .await
}
