//! The outbox: notifications written in the same transaction as the change
//! that caused them, delivered later by the outbox worker.

use sqlx::AnyConnection;

use super::{Result, Store};

/// Kinds of notice (SPEC §6 "who is told").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Receipt to the requester of a new ticket.
    Receipt,
    /// New-ticket alert to the team's notification address.
    TeamNewTicket,
    /// An agent's public reply, to the requester and CCs.
    AgentReply,
    /// Status changed to resolved or closed by an agent.
    StatusChanged,
    /// The ticket was assigned to the recipient.
    Assigned,
    /// A requester replied; to the assignee or the team.
    RequesterReply,
}

impl Notice {
    /// The stable name, also the template's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Notice::Receipt => "receipt",
            Notice::TeamNewTicket => "team_new_ticket",
            Notice::AgentReply => "agent_reply",
            Notice::StatusChanged => "status_changed",
            Notice::Assigned => "assigned",
            Notice::RequesterReply => "requester_reply",
        }
    }
}

/// A queued notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub ticket_id: i64,
    pub notice: Notice,
    pub recipient: String,
    /// The message the notice is about, if any (its text goes into the mail).
    pub message_id: Option<i64>,
    pub now: i64,
}

pub(super) async fn insert(conn: &mut AnyConnection, n: &Notification) -> Result<()> {
    let payload = serde_json::json!({ "message_id": n.message_id }).to_string();
    sqlx::query(
        "INSERT INTO outbox (ticket_id, notice, recipient, payload, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(n.ticket_id)
    .bind(n.notice.as_str())
    .bind(n.recipient.as_str())
    .bind(payload)
    .bind(n.now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One queued row, as `outbox list` and tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub ticket_id: Option<i64>,
    pub notice: String,
    pub recipient: String,
    pub state: String,
}

impl Store {
    /// Outbox rows for a ticket, oldest first.
    pub async fn outbox_for_ticket(&self, ticket_id: i64) -> Result<Vec<OutboxRow>> {
        let rows: Vec<(i64, Option<i64>, String, String, String)> = sqlx::query_as(
            "SELECT id, ticket_id, notice, recipient, state FROM outbox WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, ticket_id, notice, recipient, state)| OutboxRow {
                id,
                ticket_id,
                notice,
                recipient,
                state,
            })
            .collect())
    }
}
