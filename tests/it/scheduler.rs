//! The scheduler's passes: auto-close and SLA refresh, with time passed in.

use crate::helpers::{TestDb, actions_for, settings, staff};
use postdesk::actions::{Change, OpenTicket};
use postdesk::domain::{Channel, MessageKind, Priority, Role, SlaState, Span, Status};
use postdesk::scheduler::Scheduler;

const H: i64 = 3_600_000;
const T0: i64 = 1_800_000_000_000;

async fn resolved_tickets_close_after_the_configured_time(db: TestDb) {
    let (store, actions) = actions_for(settings(&db)).await;
    let (_, agent) = staff(&store, "agent@example.test", Role::Agent).await;
    let open = |s: &str| {
        OpenTicket::new(
            "jane@example.org".parse().unwrap(),
            s,
            "body",
            Channel::Email,
        )
    };
    let a = actions
        .open_ticket(None, open("a"), T0)
        .await
        .unwrap()
        .ticket_id;
    let b = actions
        .open_ticket(None, open("b"), T0)
        .await
        .unwrap()
        .ticket_id;
    actions
        .change(agent, a, Change::Status(Status::Resolved), T0)
        .await
        .unwrap();
    actions
        .change(agent, b, Change::Status(Status::Resolved), T0 + 24 * H)
        .await
        .unwrap();
    let scheduler = Scheduler::new(actions.clone());

    let early = scheduler.run_once(T0 + 7 * 24 * H - 1).await.unwrap();
    assert_eq!(early.closed, 0);
    assert_eq!(early.next_due, Some(T0 + 7 * 24 * H));
    let due = scheduler.run_once(T0 + 7 * 24 * H).await.unwrap();
    assert_eq!(due.closed, 1);
    assert_eq!(due.next_due, Some(T0 + 8 * 24 * H));
    // A second daemon running the same pass finds nothing more to do.
    let again = Scheduler::new(actions.clone())
        .run_once(T0 + 7 * 24 * H)
        .await
        .unwrap();
    assert_eq!(again.closed, 0);
    let t = store.ticket(a).await.unwrap().unwrap();
    assert_eq!(t.status, Status::Closed);
    let last = store.messages(a, false).await.unwrap().pop().unwrap();
    assert_eq!(last.kind, MessageKind::System);
    assert!(
        last.body_text.contains("closed automatically"),
        "{}",
        last.body_text
    );
    assert_eq!(
        store.ticket(b).await.unwrap().unwrap().status,
        Status::Resolved
    );

    // auto_close_after = 0 means never.
    let mut never = settings(&db);
    never.tickets.auto_close_after = Span::default();
    let (_, never_actions) = actions_for(never).await;
    let o = Scheduler::new(never_actions)
        .run_once(T0 + 100 * 24 * H)
        .await
        .unwrap();
    assert_eq!((o.closed, o.next_due), (0, None));
}

async fn sla_states_turn_to_warning_and_breached_on_time(db: TestDb) {
    let mut s = settings(&db);
    s.sla.enabled = true;
    s.sla.urgent.first_response = Some(Span::secs(3_600));
    s.sla.urgent.resolution = Some(Span::secs(10 * 3_600));
    let (store, actions) = actions_for(s).await;
    let mut input = OpenTicket::new(
        "jane@example.org".parse().unwrap(),
        "Down",
        "all down",
        Channel::Email,
    );
    input.priority = Some(Priority::Urgent);
    let id = actions
        .open_ticket(None, input, T0)
        .await
        .unwrap()
        .ticket_id;
    let t = store.ticket(id).await.unwrap().unwrap();
    assert_eq!(
        (t.sla_state, t.sla_due_at),
        (SlaState::Ok, Some(T0 + 48 * 60_000))
    );
    let scheduler = Scheduler::new(actions.clone());
    let o = scheduler.run_once(T0 + 48 * 60_000).await.unwrap();
    assert_eq!(o.sla_refreshed, 1);
    let t = store.ticket(id).await.unwrap().unwrap();
    assert_eq!(
        (t.sla_state, t.updated_at),
        (SlaState::Warning, T0),
        "a refresh is not an update"
    );
    scheduler.run_once(T0 + H).await.unwrap();
    assert_eq!(
        store.ticket(id).await.unwrap().unwrap().sla_state,
        SlaState::Breached
    );
    let filter = postdesk::store::TicketFilter {
        sla: vec![SlaState::Breached],
        ..Default::default()
    };
    let (n, _) = store
        .list_tickets(&filter, (postdesk::store::SortKey::Sla, true), 1, 10)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

crate::on_both_backends!(
    resolved_tickets_close_after_the_configured_time,
    sla_states_turn_to_warning_and_breached_on_time
);
