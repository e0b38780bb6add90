//! SLA arithmetic of SPEC §4: targets per priority, clocks that pause while
//! a ticket is pending or on hold, and the ok / warning / breached state.
//! Wall time only for now; a business-hours calendar is a later addition.

use serde::{Deserialize, Serialize};

use super::ticket::{Priority, Status};
use super::{Millis, Span};

/// Targets for one priority. `None` means no target for that clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SlaTargets {
    /// Time from creation to the first public agent reply.
    pub first_response: Option<Span>,
    /// Time from creation to resolution.
    pub resolution: Option<Span>,
}

/// The state a ticket shows; ordered from harmless to urgent so a list can
/// sort by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    /// No target applies (SLA off, or no target for this priority).
    None,
    Ok,
    /// Within 20% of a target.
    Warning,
    Breached,
}

impl SlaState {
    /// Every state, for filters.
    pub const ALL: [SlaState; 4] = [
        SlaState::None,
        SlaState::Ok,
        SlaState::Warning,
        SlaState::Breached,
    ];
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            SlaState::None => "none",
            SlaState::Ok => "ok",
            SlaState::Warning => "warning",
            SlaState::Breached => "breached",
        }
    }
    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        SlaState::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The share of a target left when the state turns to warning.
const WARNING_SHARE: (i64, i64) = (8, 10);

/// Pause bookkeeping kept on each ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pause {
    /// Paused time already finished, in ms.
    pub total_ms: i64,
    /// Start of the pause under way, if the ticket is paused now.
    pub since: Option<Millis>,
    /// Paused time counted when the first agent reply went out: the
    /// first-response clock stopped there, so later pauses are not its own.
    /// `None` until then.
    pub at_first_response: Option<i64>,
}

impl Pause {
    /// The pause bookkeeping once the ticket has entered status `to` at `now`.
    pub fn on_status_change(self, to: Status, now: Millis) -> Pause {
        match (to.pauses_sla(), self.since) {
            (true, None) => Pause {
                since: Some(now),
                ..self
            },
            (false, Some(since)) => Pause {
                total_ms: self
                    .total_ms
                    .saturating_add(now.saturating_sub(since).max(0)),
                since: None,
                ..self
            },
            _ => self,
        }
    }
    /// The pause bookkeeping once the first agent reply went out at `now`
    /// (a later reply changes nothing).
    pub fn on_first_response(self, now: Millis) -> Pause {
        Pause {
            at_first_response: self.at_first_response.or(Some(self.paused_until(now))),
            ..self
        }
    }
    /// Paused time up to `at`.
    pub fn paused_until(self, at: Millis) -> i64 {
        self.total_ms
            .saturating_add(self.since.map_or(0, |s| at.saturating_sub(s).max(0)))
    }
}

/// What the SLA clocks need of a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaClock {
    pub created_at: Millis,
    pub status: Status,
    /// First public agent reply, which stops the first-response clock.
    pub first_response_at: Option<Millis>,
    /// When the ticket was resolved (or closed), which stops the resolution clock.
    pub resolved_at: Option<Millis>,
    pub pause: Pause,
}

/// One clock's reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub state: SlaState,
    /// Counted (unpaused) time so far, ms.
    pub elapsed_ms: i64,
    /// The target, ms.
    pub target_ms: i64,
    /// Whether the clock has stopped (target met or missed for good).
    pub stopped: bool,
}

/// Both clocks and the ticket's overall state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub first_response: Option<Reading>,
    pub resolution: Option<Reading>,
    /// The worse of the two, `None` when no target applies.
    pub state: SlaState,
    /// When the state will next change if nothing happens (for the scheduler).
    pub next_change_at: Option<Millis>,
}

/// Counted (unpaused) time from a ticket's creation to `end`, given the time
/// paused in between.
pub fn counted_ms(created_at: Millis, end: Millis, paused_ms: i64) -> i64 {
    end.max(created_at)
        .saturating_sub(created_at)
        .saturating_sub(paused_ms)
        .max(0)
}

fn read(
    clock: &SlaClock,
    target: Span,
    stop: Option<Millis>,
    paused_at_stop: Option<i64>,
    now: Millis,
) -> (Reading, Option<Millis>) {
    let end = stop.unwrap_or(now).max(clock.created_at);
    let paused = paused_at_stop.unwrap_or_else(|| clock.pause.paused_until(end));
    let elapsed_ms = counted_ms(clock.created_at, end, paused);
    let target_ms = target.as_millis();
    let warn_ms = target_ms.saturating_mul(WARNING_SHARE.0) / WARNING_SHARE.1;
    let stopped = stop.is_some();
    let state = if elapsed_ms >= target_ms {
        SlaState::Breached
    } else if elapsed_ms >= warn_ms && !stopped {
        SlaState::Warning
    } else {
        SlaState::Ok
    };
    // A running, unpaused clock changes state when it reaches the next threshold.
    let next = if stopped || clock.pause.since.is_some() || state == SlaState::Breached {
        None
    } else {
        let threshold = if state == SlaState::Ok {
            warn_ms
        } else {
            target_ms
        };
        Some(now.saturating_add(threshold - elapsed_ms))
    };
    (
        Reading {
            state,
            elapsed_ms,
            target_ms,
            stopped,
        },
        next,
    )
}

/// Reads both clocks of a ticket at `now`.
pub fn evaluate(clock: &SlaClock, targets: &SlaTargets, now: Millis) -> Report {
    let resolution_stop = match clock.status {
        Status::Resolved | Status::Closed => Some(clock.resolved_at.unwrap_or(now)),
        _ => None,
    };
    // A ticket resolved without any reply no longer waits for a first response.
    let response_stop = clock.first_response_at.or(resolution_stop);
    // Stopped by the reply, the first-response clock counts only the pauses
    // before it.
    let response_paused = clock.first_response_at.and(clock.pause.at_first_response);
    let first = targets
        .first_response
        .map(|t| read(clock, t, response_stop, response_paused, now));
    let resolution = targets
        .resolution
        .map(|t| read(clock, t, resolution_stop, None, now));
    let readings = [first, resolution];
    let state = readings
        .iter()
        .flatten()
        .map(|(r, _)| r.state)
        .max()
        .unwrap_or(SlaState::None);
    let next_change_at = readings.iter().flatten().filter_map(|(_, n)| *n).min();
    Report {
        first_response: first.map(|r| r.0),
        resolution: resolution.map(|r| r.0),
        state,
        next_change_at,
    }
}

/// The default targets when SLA is switched on without targets of its own.
pub fn default_targets(priority: Priority) -> SlaTargets {
    let (first, resolve) = match priority {
        Priority::Urgent => (Span::secs(3_600), Span::secs(4 * 3_600)),
        Priority::High => (Span::secs(4 * 3_600), Span::days(1)),
        Priority::Normal => (Span::secs(8 * 3_600), Span::days(3)),
        Priority::Low => (Span::days(1), Span::days(7)),
    };
    SlaTargets {
        first_response: Some(first),
        resolution: Some(resolve),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Millis = 3_600_000;

    fn targets() -> SlaTargets {
        SlaTargets {
            first_response: Some(Span::secs(10 * 3600)),
            resolution: Some(Span::secs(100 * 3600)),
        }
    }

    fn clock(status: Status) -> SlaClock {
        SlaClock {
            created_at: 0,
            status,
            first_response_at: None,
            resolved_at: None,
            pause: Pause::default(),
        }
    }

    #[test]
    fn ok_then_warning_at_80_percent_then_breached() {
        let c = clock(Status::Open);
        assert_eq!(evaluate(&c, &targets(), 7 * H).state, SlaState::Ok);
        assert_eq!(evaluate(&c, &targets(), 7 * H).next_change_at, Some(8 * H));
        assert_eq!(evaluate(&c, &targets(), 8 * H).state, SlaState::Warning);
        assert_eq!(evaluate(&c, &targets(), 8 * H).next_change_at, Some(10 * H));
        assert_eq!(evaluate(&c, &targets(), 10 * H).state, SlaState::Breached);
    }

    #[test]
    fn pending_and_on_hold_pause_the_clock() {
        let mut c = clock(Status::Open);
        c.pause = c.pause.on_status_change(Status::Pending, 2 * H);
        c.status = Status::Pending;
        // 20 hours later the clock still reads 2 hours and has no next change.
        let r = evaluate(&c, &targets(), 22 * H);
        assert_eq!(r.first_response.unwrap().elapsed_ms, 2 * H);
        assert_eq!(r.state, SlaState::Ok);
        assert_eq!(r.next_change_at, None);
        c.pause = c.pause.on_status_change(Status::OnHold, 22 * H);
        c.pause = c.pause.on_status_change(Status::Open, 30 * H);
        c.status = Status::Open;
        assert_eq!(
            c.pause,
            Pause {
                total_ms: 28 * H,
                since: None,
                at_first_response: None,
            }
        );
        assert_eq!(
            evaluate(&c, &targets(), 31 * H)
                .first_response
                .unwrap()
                .elapsed_ms,
            3 * H
        );
    }

    #[test]
    fn a_met_target_stays_ok_and_a_missed_one_breached() {
        let mut c = clock(Status::InProgress);
        c.first_response_at = Some(9 * H);
        let r = evaluate(&c, &targets(), 50 * H);
        assert_eq!(r.first_response.unwrap().state, SlaState::Ok);
        assert!(r.first_response.unwrap().stopped);
        c.first_response_at = Some(11 * H);
        assert_eq!(evaluate(&c, &targets(), 50 * H).state, SlaState::Breached);
        let mut resolved = clock(Status::Resolved);
        resolved.first_response_at = Some(H);
        resolved.resolved_at = Some(90 * H);
        let r = evaluate(&resolved, &targets(), 500 * H);
        assert_eq!(r.state, SlaState::Ok);
        assert_eq!(r.next_change_at, None);
    }

    #[test]
    fn a_pause_after_the_first_reply_does_not_shorten_its_time() {
        // Created at 0, paused 1-3 h, first reply at 12 h (10 h counted:
        // missed), then pending for 30 h.
        let mut c = clock(Status::Open);
        c.pause = c.pause.on_status_change(Status::OnHold, H);
        c.pause = c.pause.on_status_change(Status::Open, 3 * H);
        c.first_response_at = Some(12 * H);
        c.pause = c.pause.on_first_response(12 * H);
        assert_eq!(c.pause.at_first_response, Some(2 * H));
        c.pause = c.pause.on_status_change(Status::Pending, 12 * H);
        c.status = Status::Pending;
        let r = evaluate(&c, &targets(), 42 * H);
        assert_eq!(r.first_response.unwrap().elapsed_ms, 10 * H);
        assert_eq!(r.first_response.unwrap().state, SlaState::Breached);
        // The resolution clock still stands still while pending.
        assert_eq!(r.resolution.unwrap().elapsed_ms, 10 * H);
        // Back to open at 42 h: the 30 paused hours are the resolution
        // clock's, not the first response's.
        c.pause = c.pause.on_status_change(Status::Open, 42 * H);
        c.status = Status::Open;
        let r = evaluate(&c, &targets(), 43 * H);
        assert_eq!(r.first_response.unwrap().elapsed_ms, 10 * H);
        assert_eq!(r.resolution.unwrap().elapsed_ms, 11 * H);
        // A second reply changes nothing.
        assert_eq!(
            c.pause.on_first_response(50 * H).at_first_response,
            Some(2 * H)
        );
        // Without the snapshot every pause would count: the reply, 12 h in,
        // would read as on time.
        c.pause.at_first_response = None;
        assert_eq!(
            evaluate(&c, &targets(), 43 * H)
                .first_response
                .unwrap()
                .elapsed_ms,
            0
        );
    }

    #[test]
    fn no_targets_means_none() {
        let r = evaluate(&clock(Status::Open), &SlaTargets::default(), 1_000 * H);
        assert_eq!(r.state, SlaState::None);
        assert!(SlaState::Breached > SlaState::Warning && SlaState::Warning > SlaState::Ok);
    }

    #[test]
    fn default_targets_tighten_with_priority() {
        let urgent = default_targets(Priority::Urgent).resolution.unwrap();
        let low = default_targets(Priority::Low).resolution.unwrap();
        assert!(urgent < low);
    }
}
