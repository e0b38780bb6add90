//! The automatic status rules of SPEC §3: one pure function from (ticket
//! state, event, actor, settings, now) to a transition.

use super::people::{ActorKind, Capability, may};
use super::ticket::Status;
use super::{Millis, Span};

/// The settings the rules read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleSettings {
    /// How long after closing a requester's reply still reopens the ticket.
    /// Zero: never (a later reply always opens a new linked ticket).
    pub reopen_window: Span,
    /// How long a ticket stays resolved before the scheduler closes it. Zero: never.
    pub auto_close_after: Span,
}

impl Default for RuleSettings {
    fn default() -> Self {
        RuleSettings {
            reopen_window: Span::days(7),
            auto_close_after: Span::days(7),
        }
    }
}

/// What the rules need to know about a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketState {
    pub status: Status,
    /// When the ticket last became resolved (for auto-close).
    pub resolved_at: Option<Millis>,
    /// When the ticket was closed (for the reopen window).
    pub closed_at: Option<Millis>,
}

/// Something that happens to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A public reply, optionally with a status chosen alongside it.
    PublicReply { chosen: Option<Status> },
    /// An internal note.
    Note,
    /// An explicit status change (console, API, portal close button).
    SetStatus(Status),
    /// An auto-reply, bounce or other automated mail arrived for the ticket.
    AutomatedMail,
    /// The scheduler's periodic check for resolved tickets to close.
    AutoCloseDue,
}

/// Why a status changed; the system message is written from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// An agent answered an open ticket.
    AgentReply,
    /// An agent chose the status with their reply.
    ChosenWithReply,
    /// A requester answered a ticket that waited on them or was resolved.
    RequesterReply,
    /// A requester answered a closed ticket within the reopen window.
    ReopenedByReply,
    /// Staff set the status.
    SetByStaff,
    /// The requester closed their own ticket.
    ClosedByRequester,
    /// The scheduler closed a ticket resolved for longer than `auto_close_after`.
    AutoClosed,
}

impl Reason {
    /// The words of the system message that records the change.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::AgentReply => "status changed by agent reply",
            Reason::ChosenWithReply => "status chosen with reply",
            Reason::RequesterReply => "status changed by requester reply",
            Reason::ReopenedByReply => "reopened by reply",
            Reason::SetByStaff => "status changed",
            Reason::ClosedByRequester => "closed by requester",
            Reason::AutoClosed => "closed automatically after being resolved",
        }
    }
}

/// The outcome of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The status stays as it is.
    Unchanged,
    /// The status becomes `status`.
    To { status: Status, reason: Reason },
    /// The ticket stays closed; the reply opens a new ticket linked to it.
    NewLinkedTicket,
}

/// Why an event was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("a {actor} may not {what}")]
    NotPermitted {
        actor: &'static str,
        what: &'static str,
    },
    #[error("the ticket is closed: change its status first, then reply with a status")]
    ClosedTicket,
}

fn refuse(actor: ActorKind, what: &'static str) -> Refusal {
    let actor = match actor {
        ActorKind::Requester => "requester",
        ActorKind::Agent => "agent",
        ActorKind::Admin => "admin",
        ActorKind::System => "system task",
    };
    Refusal::NotPermitted { actor, what }
}

fn to(status: Status, reason: Reason) -> Transition {
    Transition::To { status, reason }
}

/// Applies the rules of SPEC §3. Never panics; every combination has an answer.
pub fn apply(
    state: &TicketState,
    event: Event,
    actor: ActorKind,
    settings: &RuleSettings,
    now: Millis,
) -> Result<Transition, Refusal> {
    use Status::*;
    let current = state.status;
    match event {
        Event::AutomatedMail => Ok(Transition::Unchanged),
        Event::Note if may(actor, Capability::Note) => Ok(Transition::Unchanged),
        Event::Note => Err(refuse(actor, "write internal notes")),
        Event::AutoCloseDue if actor != ActorKind::System => {
            Err(refuse(actor, "run the auto-close job"))
        }
        Event::AutoCloseDue => {
            let after = settings.auto_close_after;
            let due = state
                .resolved_at
                .is_some_and(|at| now.saturating_sub(at) >= after.as_millis());
            Ok(if current == Resolved && !after.is_zero() && due {
                to(Closed, Reason::AutoClosed)
            } else {
                Transition::Unchanged
            })
        }
        Event::SetStatus(wanted) if !may(actor, Capability::SetStatus(wanted)) => {
            Err(refuse(actor, "set this status (requesters may only close)"))
        }
        Event::SetStatus(wanted) if wanted == current => Ok(Transition::Unchanged),
        Event::SetStatus(wanted) => Ok(to(
            wanted,
            match actor {
                ActorKind::Requester => Reason::ClosedByRequester,
                ActorKind::System => Reason::AutoClosed,
                _ => Reason::SetByStaff,
            },
        )),
        Event::PublicReply { .. } if !may(actor, Capability::Reply) => {
            Err(refuse(actor, "write public replies"))
        }
        Event::PublicReply {
            chosen: Some(wanted),
        } if !may(actor, Capability::SetStatus(wanted)) => {
            Err(refuse(actor, "choose this status with a reply"))
        }
        Event::PublicReply {
            chosen: Some(wanted),
        } if wanted == current => Ok(Transition::Unchanged),
        Event::PublicReply { chosen: Some(_) } if current == Closed => Err(Refusal::ClosedTicket),
        Event::PublicReply {
            chosen: Some(wanted),
        } => Ok(to(
            wanted,
            if actor == ActorKind::Requester {
                Reason::ClosedByRequester
            } else {
                Reason::ChosenWithReply
            },
        )),
        Event::PublicReply { chosen: None } if actor.is_staff() => Ok(if current == Open {
            to(InProgress, Reason::AgentReply)
        } else {
            Transition::Unchanged
        }),
        Event::PublicReply { chosen: None } => Ok(match current {
            Pending | Resolved => to(Open, Reason::RequesterReply),
            Open | InProgress | OnHold => Transition::Unchanged,
            Closed => {
                let window = settings.reopen_window;
                let within = state
                    .closed_at
                    .is_some_and(|at| now.saturating_sub(at) <= window.as_millis());
                if !window.is_zero() && within {
                    to(Open, Reason::ReopenedByReply)
                } else {
                    Transition::NewLinkedTicket
                }
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ActorKind::*;
    use Status::*;

    const DAY: Millis = 86_400_000;
    const NOW: Millis = 100 * DAY;

    fn state(status: Status) -> TicketState {
        // Resolved and closed one day ago: inside both default windows.
        TicketState {
            status,
            resolved_at: Some(NOW - DAY),
            closed_at: Some(NOW - DAY),
        }
    }

    fn run(status: Status, event: Event, actor: ActorKind) -> Result<Transition, Refusal> {
        apply(&state(status), event, actor, &RuleSettings::default(), NOW)
    }

    /// Every event the table test walks through.
    fn all_events() -> Vec<Event> {
        let mut events = vec![
            Event::PublicReply { chosen: None },
            Event::Note,
            Event::AutomatedMail,
            Event::AutoCloseDue,
        ];
        for s in Status::ALL {
            events.push(Event::PublicReply { chosen: Some(*s) });
            events.push(Event::SetStatus(*s));
        }
        events
    }

    /// The expected outcome for every status × event × actor, written as a
    /// table of cases rather than as the code's own branches.
    fn expected(from: Status, event: Event, actor: ActorKind) -> &'static str {
        match (event, actor, from) {
            (Event::AutomatedMail, _, _) => "unchanged",
            (Event::Note, Agent | Admin, _) => "unchanged",
            (Event::Note, _, _) => "refused",
            (Event::AutoCloseDue, System, _) => "unchanged", // resolved only one day: not due
            (Event::AutoCloseDue, _, _) => "refused",
            (Event::SetStatus(Closed), Requester | System, Closed) => "unchanged",
            (Event::SetStatus(Closed), Requester | System, _) => "closed",
            (Event::SetStatus(_), Requester | System, _) => "refused",
            (Event::SetStatus(s), _, f) if s == f => "unchanged",
            (Event::SetStatus(s), _, _) => s.as_str(),
            (Event::PublicReply { .. }, System, _) => "refused",
            (
                Event::PublicReply {
                    chosen: Some(Closed),
                },
                Requester,
                Closed,
            ) => "unchanged",
            (
                Event::PublicReply {
                    chosen: Some(Closed),
                },
                Requester,
                _,
            ) => "closed",
            (Event::PublicReply { chosen: Some(_) }, Requester, _) => "refused",
            (Event::PublicReply { chosen: None }, Requester, Pending | Resolved) => "open",
            (Event::PublicReply { chosen: None }, Requester, Closed) => "open", // within the window
            (Event::PublicReply { chosen: None }, Requester, _) => "unchanged",
            (Event::PublicReply { chosen: Some(s) }, _, f) if s == f => "unchanged",
            (Event::PublicReply { chosen: Some(_) }, _, Closed) => "refused",
            (Event::PublicReply { chosen: Some(s) }, _, _) => s.as_str(),
            (Event::PublicReply { chosen: None }, _, Open) => "in_progress",
            (Event::PublicReply { chosen: None }, _, _) => "unchanged",
        }
    }

    fn outcome(r: Result<Transition, Refusal>) -> &'static str {
        match r {
            Err(_) => "refused",
            Ok(Transition::Unchanged) => "unchanged",
            Ok(Transition::NewLinkedTicket) => "new_linked_ticket",
            Ok(Transition::To { status, .. }) => status.as_str(),
        }
    }

    #[test]
    fn table_every_status_event_and_actor() {
        let mut checked = 0;
        for from in Status::ALL {
            for event in all_events() {
                for actor in ActorKind::ALL {
                    let got = outcome(run(*from, event, actor));
                    assert_eq!(
                        got,
                        expected(*from, event, actor),
                        "{from} × {event:?} × {actor:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 6 * 16 * 4);
    }

    #[test]
    fn closed_reply_after_the_window_opens_a_linked_ticket() {
        let s = TicketState {
            status: Closed,
            resolved_at: None,
            closed_at: Some(NOW - 8 * DAY),
        };
        let r = apply(
            &s,
            Event::PublicReply { chosen: None },
            Requester,
            &RuleSettings::default(),
            NOW,
        );
        assert_eq!(r, Ok(Transition::NewLinkedTicket));
        let edge = TicketState {
            closed_at: Some(NOW - 7 * DAY),
            ..s
        };
        let r = apply(
            &edge,
            Event::PublicReply { chosen: None },
            Requester,
            &RuleSettings::default(),
            NOW,
        );
        assert_eq!(r, Ok(to(Open, Reason::ReopenedByReply)));
        let never = RuleSettings {
            reopen_window: Span::default(),
            ..RuleSettings::default()
        };
        let r = apply(
            &state(Closed),
            Event::PublicReply { chosen: None },
            Requester,
            &never,
            NOW,
        );
        assert_eq!(r, Ok(Transition::NewLinkedTicket));
    }

    #[test]
    fn auto_close_only_when_due_and_enabled() {
        let due = TicketState {
            status: Resolved,
            resolved_at: Some(NOW - 7 * DAY),
            closed_at: None,
        };
        let settings = RuleSettings::default();
        assert_eq!(
            apply(&due, Event::AutoCloseDue, System, &settings, NOW),
            Ok(to(Closed, Reason::AutoClosed))
        );
        let early = TicketState {
            resolved_at: Some(NOW - 7 * DAY + 1),
            ..due
        };
        assert_eq!(
            apply(&early, Event::AutoCloseDue, System, &settings, NOW),
            Ok(Transition::Unchanged)
        );
        let never = RuleSettings {
            auto_close_after: Span::default(),
            ..settings
        };
        assert_eq!(
            apply(&due, Event::AutoCloseDue, System, &never, NOW),
            Ok(Transition::Unchanged)
        );
        let pending = TicketState {
            status: Pending,
            ..due
        };
        assert_eq!(
            apply(&pending, Event::AutoCloseDue, System, &settings, NOW),
            Ok(Transition::Unchanged)
        );
    }

    #[test]
    fn reasons_name_the_reopen() {
        assert_eq!(Reason::ReopenedByReply.describe(), "reopened by reply");
    }
}
