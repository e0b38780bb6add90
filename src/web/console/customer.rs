//! The customer at a glance on the ticket page: what agents keep about a
//! requester (an agent-only note, organisation, phone), saved from there.

use super::*;
use crate::web::customer::{Kept, keep};

#[derive(Debug, Deserialize)]
pub(super) struct KeptForm {
    csrf: String,
    #[serde(default)]
    agent_note: String,
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    phone: String,
    /// The ticket page to go back to.
    back: String,
}

/// `POST /console/requesters/{id}`: saves, then back to the ticket.
pub(super) async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<KeptForm>,
) -> Response {
    page(&state, &headers, async |me: &Staff| {
        me.check(&form.csrf)?;
        let kept = Kept {
            agent_note: form.agent_note.clone(),
            organisation: form.organisation.clone(),
            phone: form.phone.clone(),
        };
        keep(&state, id, &kept).await?;
        let back = ticket::find(&state, &form.back).await?;
        Ok(Redirect::to(&format!("/console/tickets/{}#customer", back.reference)).into_response())
    })
    .await
}
