//! The customer at a glance, as the console's ticket page and the API
//! show it: the requester's details, their other tickets (open first), and
//! their organisation's; and the agent-only details agents keep about them.

use serde_json::{Value, json};

use super::AppState;
use super::error::WebError;
use crate::domain::customer::{Organisation, organisation_of};
use crate::domain::rfc3339;
use crate::store::customers::CustomerTicket;

/// The most tickets listed for a requester, and for an organisation.
pub const LISTED: i64 = 10;

/// The longest agent note, organisation and phone number kept.
const NOTE_MAX: usize = 5_000;
const ORGANISATION_MAX: usize = 200;
const PHONE_MAX: usize = 50;

fn ticket_json(t: &CustomerTicket) -> Value {
    json!({
        "reference": t.reference.to_string(),
        "subject": t.subject,
        "status": t.status,
        "status_label": t.status.label(),
        "updated_at": t.updated_at,
        "updated": rfc3339(t.updated_at),
        "requester": t.requester,
    })
}

/// Everything about requester `id` an agent sees beside a ticket (`except`:
/// that ticket, left out of the lists); `None` if there is no such requester.
pub async fn glance(
    state: &AppState,
    id: i64,
    except: Option<&str>,
) -> Result<Option<Value>, WebError> {
    let Some(c) = state.store.customer(id).await? else {
        return Ok(None);
    };
    let keep = |t: &&CustomerTicket| except.is_none_or(|r| t.reference.to_string() != r);
    let tickets = state.store.customer_tickets(id, LISTED + 1).await?;
    let org = organisation_of(c.email.as_str(), &c.organisation);
    let org_json = match &org {
        Some(o) => {
            let (count, list) = state.store.organisation_tickets(o, LISTED + 1).await?;
            let email = c.email.as_str();
            json!({
                "name": o.label(),
                "by_domain": matches!(o, Organisation::Domain(_)),
                "tickets_total": count,
                // The organisation's other people's tickets.
                "tickets": list.iter().filter(keep).filter(|t| t.requester != email)
                    .take(LISTED as usize).map(ticket_json).collect::<Vec<_>>(),
            })
        }
        None => Value::Null,
    };
    let name = format!("{} {}", c.first_name, c.last_name)
        .trim()
        .to_string();
    Ok(Some(json!({
        "id": c.id,
        "email": c.email.as_str(),
        "name": name,
        "phone": c.phone,
        "organisation": c.organisation,
        "agent_note": c.agent_note,
        "first_wrote_at": c.first_wrote,
        "first_wrote": rfc3339(c.first_wrote),
        "tickets_total": c.tickets,
        "tickets": tickets.iter().filter(keep).take(LISTED as usize).map(ticket_json).collect::<Vec<_>>(),
        "organisation_tickets": org_json,
    })))
}

/// What agents keep about a requester, as sent.
#[derive(Debug, Clone, Default)]
pub struct Kept {
    pub agent_note: String,
    pub organisation: String,
    pub phone: String,
}

/// Checks and saves `kept` for requester `id`.
pub async fn keep(state: &AppState, id: i64, kept: &Kept) -> Result<(), WebError> {
    let too_long = |what: &str, max: usize| {
        WebError::BadRequest(format!("The {what} is longer than {max} characters."))
    };
    if kept.agent_note.chars().count() > NOTE_MAX {
        return Err(too_long("note", NOTE_MAX));
    }
    if kept.organisation.trim().chars().count() > ORGANISATION_MAX {
        return Err(too_long("organisation", ORGANISATION_MAX));
    }
    if kept.phone.trim().chars().count() > PHONE_MAX {
        return Err(too_long("phone number", PHONE_MAX));
    }
    let found = state
        .store
        .set_customer(
            id,
            kept.agent_note.trim(),
            kept.organisation.trim(),
            kept.phone.trim(),
        )
        .await?;
    if found {
        Ok(())
    } else {
        Err(WebError::NotFound(format!("requester {id}")))
    }
}
