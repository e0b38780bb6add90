//! Who acts on tickets: email addresses, roles, actors, and the permission
//! rules of SPEC §1.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use super::ParseError;
use super::ticket::Status;

/// An email address, normalised once: trimmed, at most 254 bytes, exactly one
/// `@`, domain lower case. The local part is kept as written but compared
/// case-insensitively (SPEC §1), so it is lower-cased too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The part after `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl FromStr for EmailAddress {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseError::new("email address", s, "an address like name@example.org");
        let s = s.trim();
        if s.is_empty() || s.len() > 254 {
            return Err(err());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(err)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && local
                .chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && !"<>()[],;:\\\"".contains(c));
        let domain_ok = !domain.is_empty()
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        if !local_ok || !domain_ok {
            return Err(err());
        }
        Ok(EmailAddress(s.to_lowercase()))
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> String {
        e.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The role of a staff account. Requesters have no account and no role row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Support staff: everything on every ticket.
    Agent,
    /// An agent who also configures mailboxes, users and settings.
    Admin,
}

impl Role {
    /// The stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "agent" => Ok(Role::Agent),
            "admin" => Ok(Role::Admin),
            _ => Err(ParseError::new("role", s, "agent or admin")),
        }
    }
}

/// Who is doing something. Requesters are identified by their requester row,
/// staff by their user row; the scheduler and the gateway act as `System`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A requester or a CC participant (no password; signed in by link or mail).
    Requester { requester_id: i64 },
    /// A staff member.
    Staff { user_id: i64, role: Role },
    /// postdesk itself (scheduler, gateway bookkeeping).
    System,
}

/// The kind of actor, for rules that care about the kind and not the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    Requester,
    Agent,
    Admin,
    System,
}

impl Actor {
    /// The kind of this actor.
    pub fn kind(self) -> ActorKind {
        match self {
            Actor::Requester { .. } => ActorKind::Requester,
            Actor::Staff {
                role: Role::Agent, ..
            } => ActorKind::Agent,
            Actor::Staff {
                role: Role::Admin, ..
            } => ActorKind::Admin,
            Actor::System => ActorKind::System,
        }
    }
    /// Whether this actor is staff (agent or admin).
    pub fn is_staff(self) -> bool {
        matches!(self, Actor::Staff { .. })
    }
}

impl ActorKind {
    /// Every kind, for table tests.
    pub const ALL: [ActorKind; 4] = [
        ActorKind::Requester,
        ActorKind::Agent,
        ActorKind::Admin,
        ActorKind::System,
    ];
    /// Whether the kind is staff.
    pub fn is_staff(self) -> bool {
        matches!(self, ActorKind::Agent | ActorKind::Admin)
    }
}

/// Something an actor may want to do. The ticket-level ones assume the actor
/// can see the ticket (for a requester: is its requester or a CC participant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Post a public reply.
    Reply,
    /// Write an internal note (never shown to requesters).
    Note,
    /// See internal notes.
    SeeNotes,
    /// Set the status to the given one.
    SetStatus(Status),
    SetPriority,
    SetCategory,
    SetAssignee,
    SetTags,
    SetDueDate,
    SetRelated,
    Merge,
    /// Delete a ticket for good.
    Delete,
    /// Configure mailboxes, users, settings.
    Administer,
}

/// The permission rules of SPEC §1 as one function.
pub fn may(actor: ActorKind, what: Capability) -> bool {
    use Capability::*;
    match actor {
        ActorKind::Admin => true,
        ActorKind::Agent => !matches!(what, Delete | Administer),
        ActorKind::Requester => matches!(what, Reply | SetStatus(Status::Closed)),
        // The scheduler closes resolved tickets and the gateway records
        // automated mail; it never writes replies or notes in anyone's name.
        ActorKind::System => matches!(what, SetStatus(Status::Closed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Capability::*;

    #[test]
    fn addresses_normalise_and_reject_junk() {
        let a: EmailAddress = "  Jane.Doe@Example.ORG ".parse().unwrap();
        assert_eq!(a.as_str(), "jane.doe@example.org");
        assert_eq!(a.domain(), "example.org");
        for bad in [
            "",
            "jane",
            "@x.org",
            "jane@",
            "ja ne@x.org",
            "a@b@c",
            "jane@x..org",
            "jane@.x",
            "<j@x.org>",
        ] {
            assert!(bad.parse::<EmailAddress>().is_err(), "{bad}");
        }
        assert!(
            format!("{}@x.org", "a".repeat(300))
                .parse::<EmailAddress>()
                .is_err()
        );
    }

    #[test]
    fn requester_may_only_reply_and_close() {
        for s in Status::ALL {
            assert_eq!(
                may(ActorKind::Requester, SetStatus(*s)),
                *s == Status::Closed,
                "{s}"
            );
        }
        for c in [
            Note,
            SeeNotes,
            SetPriority,
            SetCategory,
            SetAssignee,
            SetTags,
            SetDueDate,
            SetRelated,
            Merge,
            Delete,
            Administer,
        ] {
            assert!(!may(ActorKind::Requester, c), "{c:?}");
        }
        assert!(may(ActorKind::Requester, Reply));
    }

    #[test]
    fn agents_do_everything_on_tickets_but_delete_and_admins_everything() {
        for c in [
            Reply,
            Note,
            SeeNotes,
            SetPriority,
            SetCategory,
            SetAssignee,
            SetTags,
            SetDueDate,
            SetRelated,
            Merge,
        ] {
            assert!(may(ActorKind::Agent, c), "{c:?}");
            assert!(may(ActorKind::Admin, c), "{c:?}");
        }
        for s in Status::ALL {
            assert!(may(ActorKind::Agent, SetStatus(*s)));
        }
        assert!(!may(ActorKind::Agent, Delete) && !may(ActorKind::Agent, Administer));
        assert!(may(ActorKind::Admin, Delete) && may(ActorKind::Admin, Administer));
        assert!(!may(ActorKind::System, Reply) && !may(ActorKind::System, SetStatus(Status::Open)));
    }
}
