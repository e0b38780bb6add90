//! The customer at a glance: a requester's details beside their ticket
//! (phone, organisation, when they first wrote, an agent-only note), their
//! other tickets, and the tickets of their organisation (a set name, or the
//! domain of their address: `domain::customer`).

use sqlx::any::AnyRow;

use super::{Result, Store, col, parsed};
use crate::domain::customer::Organisation;
use crate::domain::{EmailAddress, Status, TicketRef};

/// A requester as agents see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: i64,
    pub email: EmailAddress,
    pub first_name: String,
    pub last_name: String,
    pub phone: String,
    pub organisation: String,
    /// Agents only: never shown to the requester.
    pub agent_note: String,
    /// When they first wrote (their record was made).
    pub first_wrote: i64,
    /// How many tickets they opened.
    pub tickets: i64,
}

/// A ticket in a customer's or an organisation's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerTicket {
    pub reference: TicketRef,
    pub subject: String,
    pub status: Status,
    pub updated_at: i64,
    /// Its requester's address.
    pub requester: String,
}

/// The columns of a [`CustomerTicket`], open tickets first, then the most
/// recently changed; merged tickets left out.
const TICKET_LIST: &str = "SELECT t.number, t.subject, t.status, t.updated_at, r.email \
     FROM tickets t JOIN requesters r ON r.id = t.requester_id";
const OPEN_FIRST: &str = "ORDER BY (CASE WHEN t.status IN ('resolved', 'closed') THEN 1 ELSE 0 END), \
     t.updated_at DESC, t.id DESC";

impl Store {
    fn customer_ticket(&self, r: &AnyRow) -> Result<CustomerTicket> {
        Ok(CustomerTicket {
            reference: TicketRef::new(&self.prefix, col(r, "number")?),
            subject: col(r, "subject")?,
            status: parsed(r, "status")?,
            updated_at: col(r, "updated_at")?,
            requester: col(r, "email")?,
        })
    }

    /// A requester's details and how many tickets they opened.
    pub async fn customer(&self, requester_id: i64) -> Result<Option<Customer>> {
        let row = sqlx::query(
            "SELECT r.id, r.email, r.first_name, r.last_name, r.phone, r.organisation, \
             r.agent_note, r.created_at, (SELECT COUNT(*) FROM tickets t WHERE t.requester_id = r.id) AS n \
             FROM requesters r WHERE r.id = $1",
        )
        .bind(requester_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Customer {
                id: col(&r, "id")?,
                email: parsed(&r, "email")?,
                first_name: col(&r, "first_name")?,
                last_name: col(&r, "last_name")?,
                phone: col(&r, "phone")?,
                organisation: col(&r, "organisation")?,
                agent_note: col(&r, "agent_note")?,
                first_wrote: col(&r, "created_at")?,
                tickets: col(&r, "n")?,
            })
        })
        .transpose()
    }

    /// A requester's tickets, open first, at most `limit`.
    pub async fn customer_tickets(
        &self,
        requester_id: i64,
        limit: i64,
    ) -> Result<Vec<CustomerTicket>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{TICKET_LIST} WHERE t.requester_id = $1 AND t.merged_into_id IS NULL {OPEN_FIRST} LIMIT $2"
        )))
        .bind(requester_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.customer_ticket(r)).collect()
    }

    /// An organisation's tickets (every requester in it), open first, at
    /// most `limit`, and how many there are.
    pub async fn organisation_tickets(
        &self,
        org: &Organisation,
        limit: i64,
    ) -> Result<(i64, Vec<CustomerTicket>)> {
        let (filter, key) = match org {
            Organisation::Named(n) => (
                "r.organisation <> '' AND lower(r.organisation) = lower($1)",
                n.as_str(),
            ),
            Organisation::Domain(d) => ("r.domain = $1", d.as_str()),
        };
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM tickets t JOIN requesters r ON r.id = t.requester_id \
             WHERE {filter} AND t.merged_into_id IS NULL"
        )))
        .bind(key)
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{TICKET_LIST} WHERE {filter} AND t.merged_into_id IS NULL {OPEN_FIRST} LIMIT $2"
        )))
        .bind(key)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let list = rows
            .iter()
            .map(|r| self.customer_ticket(r))
            .collect::<Result<_>>()?;
        Ok((count, list))
    }

    /// Saves what agents keep about a requester: their note, organisation
    /// and phone. False when there is no such requester.
    pub async fn set_customer(
        &self,
        requester_id: i64,
        agent_note: &str,
        organisation: &str,
        phone: &str,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE requesters SET agent_note = $2, organisation = $3, phone = $4 WHERE id = $1",
        )
        .bind(requester_id)
        .bind(agent_note)
        .bind(organisation)
        .bind(phone)
        .execute(&mut *tx.conn)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }
}
