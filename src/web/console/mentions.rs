//! The agent's mentions: the internal notes that @named them, newest not
//! yet seen first (opening the ticket marks its mentions seen).

use super::*;

/// The most mentions listed.
const SHOWN: i64 = 100;

/// `GET /console/mentions`
pub(super) async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state, &headers, async |me: &Staff| {
        let mentions = state.store.mentions_of(me.user.id, SHOWN).await?;
        let mut c = base(&state, "Mentions", Some(me));
        c.insert(
            "mentions".into(),
            json!(
                mentions
                    .iter()
                    .map(|m| json!({
                        "ref": m.ticket.to_string(),
                        "subject": m.subject,
                        "by": m.by,
                        "text": m.text.chars().take(300).collect::<String>(),
                        "at": m.at,
                        "new": !m.seen,
                    }))
                    .collect::<Vec<_>>()
            ),
        );
        Ok(state
            .pages
            .render(StatusCode::OK, "console_mentions", &Value::Object(c)))
    })
    .await
}
