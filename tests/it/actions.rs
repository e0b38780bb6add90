//! The actions, each one transaction, on SQLite and on PostgreSQL.

use crate::helpers::{TestDb, actions_for, settings, staff};
use postdesk::actions::{ActionError, Change, OpenTicket, ReplyInput, ReplyOutcome};
use postdesk::domain::{Actor, Channel, MessageKind, Priority, Role, Status};
use postdesk::store::{AssigneeFilter, SortKey, TicketFilter};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_800_000_000_000;

fn mail(from: &str, subject: &str, body: &str) -> OpenTicket {
    OpenTicket::new(from.parse().unwrap(), subject, body, Channel::Email)
}

fn requester(id: i64) -> Actor {
    Actor::Requester { requester_id: id }
}

async fn statuses_follow_the_rules_through_a_conversation(db: TestDb) {
    let (store, actions) = actions_for(settings(&db)).await;
    let (_, agent) = staff(&store, "agent@example.test", Role::Agent).await;
    let opened = actions
        .open_ticket(
            None,
            mail("Jane@Example.org", "Printer on fire", "Help!"),
            T0,
        )
        .await
        .unwrap();
    assert_eq!(opened.reference.to_string(), "TKT-1");
    let id = opened.ticket_id;
    let jane = requester(opened.requester_id);
    let t = store.ticket(id).await.unwrap().unwrap();
    assert_eq!(
        (t.status, t.requester.email.as_str()),
        (Status::Open, "jane@example.org")
    );
    let outbox = store.outbox_for_ticket(id).await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(
        (outbox[0].notice.as_str(), outbox[0].recipient.as_str()),
        ("receipt", "jane@example.org")
    );

    // Agent reply on an open ticket → in_progress; the requester is told.
    let r = actions
        .reply(agent, id, ReplyInput::text("On it"), T0 + 1000)
        .await
        .unwrap();
    assert!(
        matches!(
            r,
            ReplyOutcome::Added {
                status: Status::InProgress,
                ..
            }
        ),
        "{r:?}"
    );
    let t = store.ticket(id).await.unwrap().unwrap();
    assert_eq!(t.first_response_at, Some(T0 + 1000));
    assert!(
        store
            .outbox_for_ticket(id)
            .await
            .unwrap()
            .iter()
            .any(|o| o.notice == "agent_reply")
    );

    // Agent reply choosing pending; requester answers → open.
    let pending = ReplyInput {
        status: Some(Status::Pending),
        ..ReplyInput::text("Which model?")
    };
    actions.reply(agent, id, pending, T0 + 2000).await.unwrap();
    assert_eq!(
        store.ticket(id).await.unwrap().unwrap().status,
        Status::Pending
    );
    actions
        .reply(jane, id, ReplyInput::text("Model X"), T0 + 3000)
        .await
        .unwrap();
    let t = store.ticket(id).await.unwrap().unwrap();
    assert_eq!(t.status, Status::Open);
    assert_eq!(
        t.pause.total_ms, 1000,
        "pending paused the SLA clock for one second"
    );

    // Agent resolves (requester told), requester answers → open, requester closes.
    assert!(
        actions
            .change(agent, id, Change::Status(Status::Resolved), T0 + 4000)
            .await
            .unwrap()
    );
    assert!(
        store
            .outbox_for_ticket(id)
            .await
            .unwrap()
            .iter()
            .any(|o| o.notice == "status_changed")
    );
    actions
        .reply(jane, id, ReplyInput::text("Still smoking"), T0 + 5000)
        .await
        .unwrap();
    assert_eq!(
        store.ticket(id).await.unwrap().unwrap().status,
        Status::Open
    );
    assert!(
        actions
            .change(jane, id, Change::Status(Status::Closed), T0 + 6000)
            .await
            .unwrap()
    );
    let t = store.ticket(id).await.unwrap().unwrap();
    assert_eq!((t.status, t.closed_at), (Status::Closed, Some(T0 + 6000)));

    let thread = store.messages(id, true).await.unwrap();
    let replies = thread
        .iter()
        .filter(|m| m.kind == MessageKind::Reply)
        .count();
    let systems: Vec<_> = thread
        .iter()
        .filter(|m| m.kind == MessageKind::System)
        .map(|m| m.body_text.as_str())
        .collect();
    assert_eq!(replies, 5);
    assert_eq!(systems.len(), 6, "{systems:?}");
    assert!(
        systems.last().unwrap().contains("closed by requester"),
        "{systems:?}"
    );
    assert!(
        systems[0].contains("from Open to In progress by agent@example.test (agent)"),
        "{systems:?}"
    );
    // The count is what people wrote: the system's notes are not counted.
    assert_eq!(
        t.message_count,
        thread
            .iter()
            .filter(|m| m.kind != MessageKind::System)
            .count() as i64
    );
    assert!(t.message_count < thread.len() as i64);
}

async fn requesters_may_only_reply_and_close(db: TestDb) {
    let (store, actions) = actions_for(settings(&db)).await;
    let (_, agent) = staff(&store, "agent@example.test", Role::Agent).await;
    let opened = actions
        .open_ticket(None, mail("jane@example.org", "Hi", "Hello"), T0)
        .await
        .unwrap();
    let (id, jane) = (opened.ticket_id, requester(opened.requester_id));
    for s in [
        Status::InProgress,
        Status::Pending,
        Status::OnHold,
        Status::Resolved,
    ] {
        let e = actions
            .change(jane, id, Change::Status(s), T0)
            .await
            .unwrap_err();
        assert!(matches!(e, ActionError::Forbidden(_)), "{s}: {e:?}");
    }
    for c in [
        Change::Priority(Priority::Urgent),
        Change::Category("Billing".into()),
        Change::Assignee(None),
        Change::Tags(vec!["x".into()]),
    ] {
        let e = actions.change(jane, id, c.clone(), T0).await.unwrap_err();
        assert!(matches!(e, ActionError::Forbidden(_)), "{c:?}: {e:?}");
    }
    assert!(matches!(
        actions.note(jane, id, "psst", T0).await,
        Err(ActionError::Forbidden(_))
    ));
    let choose = ReplyInput {
        status: Some(Status::Resolved),
        ..ReplyInput::text("done?")
    };
    assert!(matches!(
        actions.reply(jane, id, choose, T0).await,
        Err(ActionError::Forbidden(_))
    ));

    // Someone else's ticket does not exist for another requester.
    let other = actions
        .open_ticket(None, mail("bob@example.org", "Mine", "Private"), T0)
        .await
        .unwrap();
    let e = actions
        .reply(jane, other.ticket_id, ReplyInput::text("peek"), T0)
        .await
        .unwrap_err();
    assert!(matches!(e, ActionError::NotFound(_)), "{e:?}");
    let e = actions
        .change(jane, other.ticket_id, Change::Status(Status::Closed), T0)
        .await
        .unwrap_err();
    assert!(matches!(e, ActionError::NotFound(_)), "{e:?}");

    // Agents may not delete; admins may. Requesters close.
    assert!(matches!(
        actions.delete(agent, id).await,
        Err(ActionError::Forbidden(_))
    ));
    assert!(
        actions
            .change(jane, id, Change::Status(Status::Closed), T0 + 1)
            .await
            .unwrap()
    );
    assert_eq!(
        store.ticket(id).await.unwrap().unwrap().status,
        Status::Closed
    );
    // Nothing changed by the refused attempts.
    let t = store.ticket(id).await.unwrap().unwrap();
    assert_eq!(
        (t.priority, t.category.as_str(), t.tags.len()),
        (Priority::Normal, "General", 0)
    );
}

async fn closed_tickets_reopen_within_the_window_and_fork_after_it(db: TestDb) {
    let (store, actions) = actions_for(settings(&db)).await;
    let (_, agent) = staff(&store, "agent@example.test", Role::Agent).await;
    let opened = actions
        .open_ticket(None, mail("jane@example.org", "VPN", "Down"), T0)
        .await
        .unwrap();
    let (id, jane) = (opened.ticket_id, requester(opened.requester_id));
    actions
        .change(agent, id, Change::Status(Status::Closed), T0)
        .await
        .unwrap();
    actions
        .reply(jane, id, ReplyInput::text("Again"), T0 + 6 * DAY)
        .await
        .unwrap();
    let t = store.ticket(id).await.unwrap().unwrap();
    assert_eq!(t.status, Status::Open);
    assert!(
        store
            .messages(id, false)
            .await
            .unwrap()
            .iter()
            .any(|m| m.body_text.starts_with("Reopened by reply"))
    );

    actions
        .change(agent, id, Change::Status(Status::Closed), T0 + 7 * DAY)
        .await
        .unwrap();
    let r = actions
        .reply(jane, id, ReplyInput::text("Once more"), T0 + 15 * DAY)
        .await
        .unwrap();
    let ReplyOutcome::NewTicket {
        ticket_id,
        reference,
    } = r
    else {
        panic!("expected a new ticket, got {r:?}")
    };
    assert_eq!(reference.to_string(), "TKT-2");
    assert_eq!(
        store.ticket(id).await.unwrap().unwrap().status,
        Status::Closed
    );
    let new = store.ticket(ticket_id).await.unwrap().unwrap();
    assert_eq!(
        (new.status, new.linked_ticket_id, new.subject.as_str()),
        (Status::Open, Some(id), "VPN")
    );
    let first = &store.messages(ticket_id, false).await.unwrap()[0];
    assert_eq!(first.body_text, "Once more");
}

async fn references_never_repeat_and_merges_move_the_thread(db: TestDb) {
    let (store, actions) = actions_for(settings(&db)).await;
    let (_, admin) = staff(&store, "admin@example.test", Role::Admin).await;
    let mut first = mail("jane@example.org", "One", "first");
    first.mail_message_id = Some("<one@mail.example.org>".into());
    let a = actions.open_ticket(None, first, T0).await.unwrap();
    let b = actions
        .open_ticket(None, mail("bob@example.org", "Two", "second"), T0)
        .await
        .unwrap();
    actions.delete(admin, b.ticket_id).await.unwrap();
    assert!(store.ticket(b.ticket_id).await.unwrap().is_none());
    let c = actions
        .open_ticket(None, mail("bob@example.org", "Three", "third"), T0)
        .await
        .unwrap();
    assert_eq!(c.reference.to_string(), "TKT-3");

    actions
        .change(admin, a.ticket_id, Change::Tags(vec!["VIP".into()]), T0)
        .await
        .unwrap();
    actions
        .merge(admin, a.ticket_id, c.ticket_id, T0 + 1)
        .await
        .unwrap();
    let source = store.ticket(a.ticket_id).await.unwrap().unwrap();
    assert_eq!(
        (source.status, source.merged_into_id),
        (Status::Closed, Some(c.ticket_id))
    );
    let target = store.ticket(c.ticket_id).await.unwrap().unwrap();
    assert_eq!(target.tags, vec!["vip".to_string()]);
    let thread = store.messages(c.ticket_id, true).await.unwrap();
    assert!(thread.iter().any(|m| m.body_text == "first"
        && m.mail_message_id.as_deref() == Some("<one@mail.example.org>")));
    assert!(
        thread
            .iter()
            .any(|m| m.body_text.contains("TKT-1 (One) merged into this ticket"))
    );
    assert_eq!(
        target.message_count,
        thread
            .iter()
            .filter(|m| m.kind != MessageKind::System)
            .count() as i64
    );
    // Jane is now a participant of the merged ticket and can answer there.
    let r = actions
        .reply(
            requester(a.requester_id),
            c.ticket_id,
            ReplyInput::text("thanks"),
            T0 + 2,
        )
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert!(matches!(
        actions.merge(admin, a.ticket_id, c.ticket_id, T0).await,
        Err(ActionError::Invalid(_))
    ));
    assert!(matches!(
        actions.merge(admin, c.ticket_id, c.ticket_id, T0).await,
        Err(ActionError::Invalid(_))
    ));
}

async fn field_changes_write_system_messages_and_notify_assignees(db: TestDb) {
    let (store, actions) = actions_for(settings(&db)).await;
    let (_, agent) = staff(&store, "agent@example.test", Role::Agent).await;
    staff(&store, "bob@support.test", Role::Agent).await;
    let t = actions
        .open_ticket(None, mail("jane@example.org", "Refund", "please"), T0)
        .await
        .unwrap();
    let id = t.ticket_id;
    let changes = [
        Change::Priority(Priority::Urgent),
        Change::Category("billing".into()),
        Change::Assignee(Some("bob@support.test".parse().unwrap())),
        Change::Tags(vec!["Refund".into(), " refund ".into(), "Q4 2026".into()]),
        Change::DueDate(Some(T0 + DAY)),
        Change::Related(Some(("order".into(), "A-77".into()))),
    ];
    for c in changes.clone() {
        assert!(
            actions.change(agent, id, c.clone(), T0 + 10).await.unwrap(),
            "{c:?}"
        );
        assert!(
            !actions.change(agent, id, c.clone(), T0 + 20).await.unwrap(),
            "repeating {c:?} changes nothing"
        );
    }
    let t = store.ticket(id).await.unwrap().unwrap();
    assert_eq!(
        (t.priority, t.category.as_str()),
        (Priority::Urgent, "Billing")
    );
    assert_eq!(
        t.assignee.as_ref().unwrap().email.as_str(),
        "bob@support.test"
    );
    assert_eq!(t.tags, vec!["q4-2026".to_string(), "refund".to_string()]);
    assert_eq!(
        (t.due_at, t.related.clone()),
        (Some(T0 + DAY), Some(("order".into(), "A-77".into())))
    );
    let systems = store
        .messages(id, false)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == MessageKind::System)
        .count();
    assert_eq!(systems, changes.len());
    let notices = store.outbox_for_ticket(id).await.unwrap();
    assert!(
        notices
            .iter()
            .any(|o| o.notice == "assigned" && o.recipient == "bob@support.test")
    );
    let bad = actions
        .change(agent, id, Change::Category("Cooking".into()), T0)
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("Cooking"), "{bad}");
    let bad = actions
        .change(
            agent,
            id,
            Change::Assignee(Some("nobody@x.test".parse().unwrap())),
            T0,
        )
        .await;
    assert!(matches!(bad, Err(ActionError::Invalid(_))));
    // Notes are for staff eyes only.
    actions
        .note(agent, id, "customer is VIP", T0 + 30)
        .await
        .unwrap();
    assert!(
        !store
            .messages(id, false)
            .await
            .unwrap()
            .iter()
            .any(|m| m.kind == MessageKind::Note)
    );
    assert!(
        store
            .messages(id, true)
            .await
            .unwrap()
            .iter()
            .any(|m| m.kind == MessageKind::Note)
    );
}

async fn lists_filter_search_and_sort(db: TestDb) {
    let (store, actions) = actions_for(settings(&db)).await;
    let (agent_user, agent) = staff(&store, "agent@example.test", Role::Agent).await;
    let a = actions
        .open_ticket(
            None,
            mail("jane@example.org", "Printer jam", "paper stuck"),
            T0,
        )
        .await
        .unwrap();
    let b = actions
        .open_ticket(
            None,
            mail("bob@example.org", "Invoice 100%", "wrong amount"),
            T0 + 1,
        )
        .await
        .unwrap();
    let c = actions
        .open_ticket(
            None,
            mail("carl@example.org", "Login", "cannot sign in"),
            T0 + 2,
        )
        .await
        .unwrap();
    actions
        .change(
            agent,
            b.ticket_id,
            Change::Priority(Priority::Urgent),
            T0 + 3,
        )
        .await
        .unwrap();
    actions
        .change(
            agent,
            c.ticket_id,
            Change::Assignee(Some(agent_user.email.clone())),
            T0 + 4,
        )
        .await
        .unwrap();
    actions
        .change(agent, a.ticket_id, Change::Status(Status::Resolved), T0 + 5)
        .await
        .unwrap();

    let list = |f: TicketFilter, sort| {
        let store = store.clone();
        async move { store.list_tickets(&f, sort, 1, 50).await.unwrap() }
    };
    let by_updated = (SortKey::Updated, true);
    let (total, rows) = list(TicketFilter::default(), by_updated).await;
    assert_eq!(total, 3);
    assert_eq!(
        rows.iter()
            .map(|r| r.reference.number())
            .collect::<Vec<_>>(),
        vec![1, 3, 2]
    );
    let (n, rows) = list(
        TicketFilter {
            status: vec![Status::Open],
            ..Default::default()
        },
        by_updated,
    )
    .await;
    assert_eq!((n, rows.len()), (2, 2));
    let (n, rows) = list(
        TicketFilter {
            priority: vec![Priority::Urgent],
            ..Default::default()
        },
        by_updated,
    )
    .await;
    assert_eq!((n, rows[0].reference.number()), (1, 2));
    let (n, _) = list(
        TicketFilter {
            assignee: AssigneeFilter::Unassigned,
            ..Default::default()
        },
        by_updated,
    )
    .await;
    assert_eq!(n, 2);
    let (n, rows) = list(
        TicketFilter {
            assignee: AssigneeFilter::User(agent_user.id),
            ..Default::default()
        },
        by_updated,
    )
    .await;
    assert_eq!((n, rows[0].reference.number()), (1, 3));
    for (q, expect) in [("stuck", 1), ("BOB@", 2), ("tkt-3", 3), ("100%", 2)] {
        let (n, rows) = list(
            TicketFilter {
                q: Some(q.into()),
                ..Default::default()
            },
            by_updated,
        )
        .await;
        assert_eq!((n, rows[0].reference.number()), (1, expect), "q={q}");
    }
    let (n, _) = list(
        TicketFilter {
            q: Some("%".into()),
            ..Default::default()
        },
        by_updated,
    )
    .await;
    assert_eq!(n, 1, "a % in the query is literal");
    let (_, rows) = list(TicketFilter::default(), (SortKey::Subject, false)).await;
    assert_eq!(
        rows.iter().map(|r| r.subject.as_str()).collect::<Vec<_>>(),
        vec!["Invoice 100%", "Login", "Printer jam"]
    );
    let (_, rows) = list(TicketFilter::default(), (SortKey::Priority, true)).await;
    assert_eq!(rows[0].reference.number(), 2);
    let (total, page2) = store
        .list_tickets(&TicketFilter::default(), by_updated, 2, 2)
        .await
        .unwrap();
    assert_eq!((total, page2.len(), page2[0].reference.number()), (3, 1, 2));
}

async fn concurrent_opens_get_distinct_references(db: TestDb) {
    let (_, actions) = actions_for(settings(&db)).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let actions = actions.clone();
        tasks.push(tokio::spawn(async move {
            let m = mail(&format!("user{i}@example.org"), "Hello", "concurrent");
            actions
                .open_ticket(None, m, T0)
                .await
                .unwrap()
                .reference
                .number()
        }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, (1..=20).collect::<Vec<_>>());
}

async fn staff_open_tickets_on_behalf_with_assignee_and_cc(db: TestDb) {
    let (store, actions) = actions_for(settings(&db)).await;
    let (_, agent) = staff(&store, "agent@example.test", Role::Agent).await;
    staff(&store, "bob@support.test", Role::Agent).await;
    let mut phone = OpenTicket::new(
        "jane@example.org".parse().unwrap(),
        "Called about VPN",
        "notes",
        Channel::Phone,
    );
    phone.assignee = Some("bob@support.test".parse().unwrap());
    phone.cc = vec!["boss@example.org".parse().unwrap()];
    phone.related = Some(("order".into(), "A-1".into()));
    let opened = actions.open_ticket(Some(agent), phone, T0).await.unwrap();
    let t = store.ticket(opened.ticket_id).await.unwrap().unwrap();
    assert_eq!(
        (t.channel, t.assignee.unwrap().email.as_str()),
        (Channel::Phone, "bob@support.test")
    );
    let notices: Vec<_> = store
        .outbox_for_ticket(t.id)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.notice)
        .collect();
    assert_eq!(notices, vec!["receipt", "assigned"]);
    // The CC may answer on the ticket.
    let boss = actions
        .open_ticket(None, mail("boss@example.org", "x", "y"), T0)
        .await
        .unwrap();
    actions
        .reply(
            requester(boss.requester_id),
            t.id,
            ReplyInput::text("me too"),
            T0 + 1,
        )
        .await
        .unwrap();
    // Requesters open by mail or web only, and cannot assign.
    let by_phone = OpenTicket::new(
        "jane@example.org".parse().unwrap(),
        "x",
        "y",
        Channel::Phone,
    );
    assert!(matches!(
        actions.open_ticket(None, by_phone, T0).await,
        Err(ActionError::Forbidden(_))
    ));
    let mut assigning = mail("jane@example.org", "x", "y");
    assigning.assignee = Some("bob@support.test".parse().unwrap());
    assert!(matches!(
        actions.open_ticket(None, assigning, T0).await,
        Err(ActionError::Forbidden(_))
    ));
    let mut bad_kind = mail("jane@example.org", "x", "y");
    bad_kind.related = Some(("study".into(), "S-1".into()));
    assert!(matches!(
        actions.open_ticket(None, bad_kind, T0).await,
        Err(ActionError::Invalid(_))
    ));
}

async fn a_mailbox_default_assignee_is_applied_and_told(db: TestDb) {
    let (store, actions) = actions_for(settings(&db)).await;
    let (agent, _) = staff(&store, "triage@example.test", Role::Agent).await;
    let mut input = mail("jane@example.org", "Routed", "Hello");
    input.default_assignee = Some("triage@example.test".parse().unwrap());
    let opened = actions.open_ticket(None, input, T0).await.unwrap();
    let t = store.ticket(opened.ticket_id).await.unwrap().unwrap();
    assert_eq!(t.assignee.map(|a| a.id), Some(agent.id));
    let notices: Vec<(String, String)> = store
        .outbox_for_ticket(t.id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.notice, r.recipient))
        .collect();
    assert!(
        notices.contains(&("assigned".into(), "triage@example.test".into())),
        "{notices:?}"
    );
    // An address that is no agent leaves the ticket unassigned, and opens it all the same.
    let mut input = mail("jane@example.org", "Routed nowhere", "Hello");
    input.default_assignee = Some("nobody@example.test".parse().unwrap());
    let opened = actions.open_ticket(None, input, T0).await.unwrap();
    let t = store.ticket(opened.ticket_id).await.unwrap().unwrap();
    assert!(t.assignee.is_none());
}

/// Every message counts on its ticket and stamps its times when they
/// move (SQLite's trigger leaves unchanged times alone, to spare indexes).
async fn messages_count_and_stamp_their_ticket(db: TestDb) {
    let (store, actions) = actions_for(settings(&db)).await;
    let (_, agent) = staff(&store, "agent@example.test", Role::Agent).await;
    let opened = actions
        .open_ticket(None, mail("jane@example.org", "Scanner", "Jams"), T0)
        .await
        .unwrap();
    let id = opened.ticket_id;
    let stamps = |t: postdesk::store::Ticket| (t.message_count, t.last_message_at, t.updated_at);
    let ticket = store.ticket(id).await.unwrap().unwrap();
    assert_eq!(stamps(ticket), (1, T0, T0), "the first message");
    let jane = requester(opened.requester_id);
    actions
        .reply(jane, id, ReplyInput::text("Still jams"), T0 + 60_000)
        .await
        .unwrap();
    let ticket = store.ticket(id).await.unwrap().unwrap();
    assert_eq!(stamps(ticket), (2, T0 + 60_000, T0 + 60_000), "a reply");
    actions
        .note(agent, id, "Ordered a new roller", T0 + 120_000)
        .await
        .unwrap();
    actions
        .reply(jane, id, ReplyInput::text("Thanks"), T0 + 120_000)
        .await
        .unwrap();
    let ticket = store.ticket(id).await.unwrap().unwrap();
    assert_eq!(
        stamps(ticket),
        (4, T0 + 120_000, T0 + 120_000),
        "a note, then a reply at the same time"
    );
}

/// A search finds a ticket by any word of its subject, requester and
/// messages, whichever transaction wrote them (SQLite indexes them at each
/// commit, not per row): the words of a query may come from different
/// messages; system messages and other tickets' words do not count; a
/// merge brings the moved messages' words along; a deleted ticket is gone.
async fn search_finds_every_word_of_the_thread(db: TestDb) {
    let (store, actions) = actions_for(settings(&db)).await;
    let (_, agent) = staff(&store, "agent@example.test", Role::Agent).await;
    let mut opened = Vec::new();
    for (from, subject, body) in [
        ("jane@example.org", "Printer jam", "paper stuck"),
        ("bob@example.org", "Scanner", "glass cracked"),
    ] {
        let input = mail(from, subject, body);
        opened.push(actions.open_ticket(None, input, T0).await.unwrap());
    }
    let (a, b) = (&opened[0], &opened[1]);
    let jane = requester(a.requester_id);
    actions
        .reply(
            jane,
            a.ticket_id,
            ReplyInput::text("the roller squeaks"),
            T0 + 1,
        )
        .await
        .unwrap();
    actions
        .note(agent, a.ticket_id, "ordered toner", T0 + 2)
        .await
        .unwrap();
    actions
        .change(agent, a.ticket_id, Change::Priority(Priority::High), T0 + 3)
        .await
        .unwrap();
    let found = |q: &str| {
        let store = store.clone();
        let q = q.to_string();
        async move {
            let filter = TicketFilter {
                q: Some(q),
                ..Default::default()
            };
            let (_, rows) = store
                .list_tickets(&filter, (SortKey::Updated, true), 1, 50)
                .await
                .unwrap();
            let mut numbers: Vec<i64> = rows.iter().map(|r| r.reference.number()).collect();
            numbers.sort();
            numbers
        }
    };
    assert_eq!(found("roller").await, [1], "a later reply");
    assert_eq!(
        found("printer squeak toner").await,
        [1],
        "words of several messages"
    );
    assert_eq!(
        found("jane stuck").await,
        [1],
        "requester and first message"
    );
    assert_eq!(
        found("roller glass").await,
        Vec::<i64>::new(),
        "words of two tickets"
    );
    assert_eq!(
        found("priority").await,
        Vec::<i64>::new(),
        "system messages"
    );
    assert_eq!(found("cracked").await, [2]);
    actions
        .merge(agent, b.ticket_id, a.ticket_id, T0 + 4)
        .await
        .unwrap();
    assert_eq!(found("glass roller").await, [1], "moved by the merge");
    let (_, admin) = staff(&store, "admin@example.test", Role::Admin).await;
    actions.delete(admin, a.ticket_id).await.unwrap();
    assert_eq!(found("roller").await, Vec::<i64>::new(), "deleted");
}

crate::on_both_backends!(
    search_finds_every_word_of_the_thread,
    messages_count_and_stamp_their_ticket,
    a_mailbox_default_assignee_is_applied_and_told,
    statuses_follow_the_rules_through_a_conversation,
    requesters_may_only_reply_and_close,
    closed_tickets_reopen_within_the_window_and_fork_after_it,
    references_never_repeat_and_merges_move_the_thread,
    field_changes_write_system_messages_and_notify_assignees,
    lists_filter_search_and_sort,
    concurrent_opens_get_distinct_references,
    staff_open_tickets_on_behalf_with_assignee_and_cc,
);
