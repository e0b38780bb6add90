//! How the API writes tickets, messages and ratings as JSON.

use super::*;

pub(super) fn summary_json(t: &TicketSummary) -> Value {
    json!({
        "reference": t.reference.to_string(),
        "subject": t.subject,
        "status": t.status,
        "priority": t.priority,
        "category": t.category,
        "channel": t.channel,
        "requester": { "email": t.requester_email, "name": t.requester_name },
        "assignee": t.assignee_email,
        "message_count": t.message_count,
        "created_at": rfc3339(t.created_at),
        "updated_at": rfc3339(t.updated_at),
        "sla": t.sla_state,
    })
}

pub(super) fn message_json(
    m: &StoredMessage,
    files: &[crate::store::sessions::AttachmentInfo],
) -> Value {
    let role = match (m.author_role, m.author_kind) {
        (Some(r), _) => r.as_str(),
        (None, crate::domain::AuthorKind::Requester) => "requester",
        _ => "system",
    };
    json!({
        "id": m.id,
        "kind": m.kind,
        "author": { "email": m.author_email, "name": m.author_name, "role": role },
        "message_id": m.mail_message_id,
        "body_text": m.body_text,
        "verification": m.verification_json(),
        "notice": m.notice,
        "created_at": rfc3339(m.created_at),
        "attachments": files.iter().map(|f| json!({
            "id": f.id,
            "filename": f.filename,
            "content_type": f.content_type,
            "size": f.size,
            "url": format!("/api/v1/attachments/{}", f.id),
        })).collect::<Vec<_>>(),
    })
}

/// A rating as the API shows it.
pub(super) fn rating_json(r: &crate::store::ratings::Rating) -> Value {
    json!({
        "rating": if r.good { "good" } else { "bad" },
        "comment": r.comment,
        "created_at": rfc3339(r.created_at),
    })
}

pub(super) fn ticket_json(
    t: &Ticket,
    messages: &[StoredMessage],
    files: &std::collections::HashMap<i64, Vec<crate::store::sessions::AttachmentInfo>>,
    ratings: &[crate::store::ratings::Rating],
) -> Value {
    json!({
        "satisfaction": ratings.first().map(rating_json),
        "ratings": ratings.iter().map(rating_json).collect::<Vec<_>>(),
        "reference": t.reference.to_string(),
        "subject": t.subject,
        "status": t.status,
        "priority": t.priority,
        "category": t.category,
        "channel": t.channel,
        "requester": { "email": t.requester.email, "name": t.requester.display_name() },
        "assignee": t.assignee.as_ref().map(|u| u.email.to_string()),
        "tags": t.tags,
        "due_at": t.due_at.map(rfc3339),
        "related": t.related.as_ref().map(|(kind, id)| json!({ "kind": kind, "id": id })),
        "message_count": t.message_count,
        "created_at": rfc3339(t.created_at),
        "updated_at": rfc3339(t.updated_at),
        "sla": t.sla_state,
        "last_message_id": messages.last().map(|m| m.id),
        "messages": messages
            .iter()
            .map(|m| message_json(m, files.get(&m.id).map_or(&[], Vec::as_slice)))
            .collect::<Vec<_>>(),
    })
}
