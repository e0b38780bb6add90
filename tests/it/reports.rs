//! Reports (issue 34, item 6): a team's three days, written through the
//! actions at chosen times, read back through `GET /api/v1/reports` (JSON
//! and CSV) and the console's page — by day, by agent, in another time
//! zone — with first-response and resolution times that leave out the SLA
//! clock's pauses, SLA met, the backlog by age and satisfaction.

use crate::console::{Agent, account};
use crate::helpers::{TestApp, TestDb, actions_for, settings, spawn_app_with};
use postdesk::actions::{Change, OpenTicket, ReplyInput};
use postdesk::domain::{Actor, Channel, Role, Status};
use postdesk::store::NewUser;
use serde_json::Value;

const H: i64 = 3_600_000;
const DAY: i64 = 24 * H;
/// 2026-11-01T00:00:00Z.
const NOV1: i64 = 1_793_491_200_000;

fn sla_on(s: &mut postdesk::config::Settings) {
    s.sla.enabled = true;
}

async fn agent(store: &postdesk::store::Store, email: &str, name: &str) -> Actor {
    let u = store
        .insert_user(
            &NewUser {
                email: email.parse().unwrap(),
                name: name.into(),
                role: Role::Agent,
                password_hash: "x".into(),
            },
            1,
        )
        .await
        .unwrap();
    Actor::Staff {
        user_id: u.id,
        role: Role::Agent,
    }
}

/// Three days of work (times in UTC), with the figures they must give:
/// - TKT-2, Alan's: opened 1 Nov 01:00, pending 02:00–04:00, answered 06:00
///   (3 h counted), pending again until 2 Nov 06:00, resolved 07:00 (4 h
///   counted), within its SLA, rated good on 2 Nov;
/// - TKT-3, Beth's, Billing: opened 1 Nov 10:00, answered 2 Nov 06:00 (20 h:
///   the 8 h first-response target missed), resolved 3 Nov 10:00 (48 h),
///   rated bad on 3 Nov;
/// - TKT-4, nobody's: opened 3 Nov 12:00, never answered;
/// - TKT-1, nobody's: opened 20 Oct, still open.
async fn a_teams_three_days(db: &TestDb) {
    let mut s = settings(db);
    sla_on(&mut s);
    let (store, actions) = actions_for(s).await;
    let alan = agent(&store, "alan@example.test", "Alan Agent").await;
    let beth = agent(&store, "beth@example.test", "Beth Agent").await;
    let open = |from: &str, subject: &str, category: Option<&str>, assignee: Option<&str>| {
        let mut t = OpenTicket::new(
            from.parse().unwrap(),
            subject,
            "Help, please.",
            Channel::Email,
        );
        t.category = category.map(str::to_string);
        // As a mailbox's default assignee would.
        t.default_assignee = assignee.map(|a| a.parse().unwrap());
        t
    };
    let t4 = actions
        .open_ticket(
            None,
            open("old@example.org", "Old", None, None),
            NOV1 - 12 * DAY,
        )
        .await
        .unwrap();
    let t1 = actions
        .open_ticket(
            None,
            open(
                "jane@example.org",
                "Printer",
                None,
                Some("alan@example.test"),
            ),
            NOV1 + H,
        )
        .await
        .unwrap();
    let t2 = actions
        .open_ticket(
            None,
            open(
                "kim@example.org",
                "Invoice",
                Some("Billing"),
                Some("beth@example.test"),
            ),
            NOV1 + 10 * H,
        )
        .await
        .unwrap();
    assert_eq!(t1.reference.to_string(), "TKT-2");
    let id1 = t1.ticket_id;
    let status = |id: i64, to: Status, by: Actor, at: i64| {
        let actions = actions.clone();
        async move {
            actions
                .change(by, id, Change::Status(to), at)
                .await
                .unwrap();
        }
    };
    status(id1, Status::Pending, alan, NOV1 + 2 * H).await;
    status(id1, Status::Open, alan, NOV1 + 4 * H).await;
    actions
        .reply(alan, id1, ReplyInput::text("On it."), NOV1 + 6 * H)
        .await
        .unwrap();
    actions
        .note(alan, id1, "A note is not a reply.", NOV1 + 6 * H)
        .await
        .unwrap();
    status(id1, Status::Pending, alan, NOV1 + 6 * H).await;
    let jane = Actor::Requester {
        requester_id: t1.requester_id,
    };
    actions
        .reply(jane, id1, ReplyInput::text("Thanks!"), NOV1 + 30 * H)
        .await
        .unwrap();
    status(id1, Status::Resolved, alan, NOV1 + 31 * H).await;
    store
        .rate(id1, t1.requester_id, true, NOV1 + 31 * H, NOV1 + 36 * H)
        .await
        .unwrap();
    let id2 = t2.ticket_id;
    actions
        .reply(beth, id2, ReplyInput::text("Looking."), NOV1 + 30 * H)
        .await
        .unwrap();
    status(id2, Status::Resolved, beth, NOV1 + 58 * H).await;
    store
        .rate(id2, t2.requester_id, false, NOV1 + 58 * H, NOV1 + 60 * H)
        .await
        .unwrap();
    actions
        .open_ticket(
            None,
            open("lee@example.org", "Login", None, None),
            NOV1 + 60 * H,
        )
        .await
        .unwrap();
    assert!(store.ticket(t4.ticket_id).await.unwrap().unwrap().status == Status::Open);
    store.close().await;
}

async fn report(app: &TestApp, query: &str) -> (u16, Value) {
    crate::helpers::call_api(
        app,
        &app.token,
        "GET",
        &format!("/api/v1/reports?{query}"),
        Value::Null,
    )
    .await
}

async fn reports_count_a_teams_days(db: TestDb) {
    a_teams_three_days(&db).await;
    let app = spawn_app_with(db, sla_on).await;
    let (code, r) = report(&app, "from=2026-11-01&to=2026-11-03&group=day").await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(
        (r["from"].as_str(), r["to"].as_str(), r["tz"].as_str()),
        (Some("2026-11-01"), Some("2026-11-03"), Some("+00:00"))
    );
    let rows = r["rows"].as_array().unwrap();
    let days: Vec<&str> = rows.iter().map(|d| d["key"].as_str().unwrap()).collect();
    assert_eq!(days, ["2026-11-01", "2026-11-02", "2026-11-03"]);
    let figures = |row: &Value| {
        (
            row["opened"].as_i64().unwrap(),
            row["closed"].as_i64().unwrap(),
            row["replies"].as_i64().unwrap(),
        )
    };
    assert_eq!(figures(&rows[0]), (2, 0, 1), "{}", rows[0]);
    assert_eq!(figures(&rows[1]), (0, 1, 1), "{}", rows[1]);
    assert_eq!(figures(&rows[2]), (1, 1, 0), "{}", rows[2]);
    // First response: 3 h for TKT-2 (2 h pending before the reply left
    // out, the 24 h after it not), 20 h for TKT-3.
    assert_eq!(rows[0]["first_response"]["median_ms"], 3 * H);
    assert_eq!(rows[1]["first_response"]["median_ms"], 20 * H);
    // Resolution: 30 h open less 26 h paused; 48 h.
    assert_eq!(rows[1]["resolution"]["median_ms"], 4 * H);
    assert_eq!(rows[2]["resolution"]["median_ms"], 48 * H);
    assert_eq!(rows[1]["sla"]["met_pct"], 100.0);
    assert_eq!(rows[2]["sla"]["met_pct"], 0.0);
    assert_eq!(rows[1]["satisfaction"]["good"], 1);
    assert_eq!(rows[2]["satisfaction"]["bad"], 1);
    let total = &r["total"];
    assert_eq!(figures(total), (3, 2, 2));
    assert_eq!(total["first_response"]["count"], 2);
    assert_eq!(total["first_response"]["median_ms"], 3 * H);
    assert_eq!(total["first_response"]["p90_ms"], 20 * H);
    assert_eq!(total["resolution"]["p90_ms"], 48 * H);
    assert_eq!(total["sla"]["measured"], 2);
    assert_eq!(total["sla"]["met_pct"], 50.0);
    assert_eq!(total["satisfaction"]["good_pct"], 50.0);
    // The backlog when the period ended (4 Nov 00:00): TKT-4 (12 h old)
    // and TKT-1 (15 days old).
    assert_eq!(r["backlog"]["at"], "2026-11-04T00:00:00Z");
    let backlog = r["backlog"]["rows"].as_array().unwrap();
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0]["counts"], serde_json::json!([1, 0, 0, 1, 0]));
    assert_eq!(backlog[0]["total"], 2);

    // By agent: each agent's tickets and replies; nobody's last.
    let (code, r) = report(&app, "from=2026-11-01&to=2026-11-03&group=agent").await;
    assert_eq!(code, 200, "{r}");
    let rows = r["rows"].as_array().unwrap();
    let labels: Vec<&str> = rows.iter().map(|d| d["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["Alan Agent", "Beth Agent", "Unassigned"]);
    assert_eq!(rows[0]["key"], "alan@example.test");
    assert_eq!(figures(&rows[0]), (1, 1, 1));
    assert_eq!(figures(&rows[1]), (1, 1, 1));
    assert_eq!(figures(&rows[2]), (1, 0, 0));
    assert_eq!(rows[2]["key"], Value::Null);
    assert_eq!(r["backlog"]["rows"][0]["label"], "Unassigned");
    assert_eq!(r["backlog"]["rows"][0]["total"], 2);

    // By category.
    let (_, r) = report(&app, "from=2026-11-01&to=2026-11-03&group=category").await;
    let labels: Vec<&str> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["label"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&"Billing"), "{labels:?}");

    // Twelve hours west, the period starts at 1 Nov 12:00 UTC: only the
    // tickets opened after that are the period's.
    let (code, r) = report(&app, "from=2026-11-01&to=2026-11-03&tz=-12:00").await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["tz"], "-12:00");
    assert_eq!(r["total"]["opened"], 1);

    // One CSV per table.
    let csv = app
        .http
        .get(app.url("/api/v1/reports?from=2026-11-01&to=2026-11-03&format=csv"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status().as_u16(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), 1 + 3 + 1, "{text}");
    assert!(
        lines[0]
            .trim_start_matches('\u{feff}')
            .starts_with("day,opened,closed,replies,")
    );
    assert!(
        lines[2].starts_with("2026-11-02,0,1,1,1,1200.0,1200.0,1,240.0,240.0,1,1,100.0,1,0,100.0"),
        "{}",
        lines[2]
    );
    assert!(lines[4].starts_with("Total,3,2,2,"), "{}", lines[4]);
    for bad in [
        "from=2026-13-01",
        "from=2026-11-05&to=2026-11-01",
        "from=2020-01-01&to=2026-11-01",
        "group=week",
        "tz=Mars",
        "format=xml",
        "format=csv&table=everything",
    ] {
        let (code, body) = report(&app, bad).await;
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(body["error"]["message"].as_str().is_some(), "{bad}: {body}");
    }
    // Staff only.
    let r = app
        .http
        .get(app.url("/api/v1/reports"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // The console's page: tables, charts, CSV links; a bad date is said.
    account(&app, "lead@example.test", Role::Agent, "a long password 1").await;
    let (console, _) = Agent::sign_in(&app, "lead@example.test", "a long password 1").await;
    let page = console
        .get("/console/reports?from=2026-11-01&to=2026-11-03&group=agent&tz=%2B00:00")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    for shown in [
        "Alan Agent",
        "Beth Agent",
        "Unassigned",
        "3 h 00 min",
        "Backlog by age",
        "<svg",
        "Tickets opened and closed",
        "/console/reports.csv?",
    ] {
        assert!(page.body.contains(shown), "{shown} missing");
    }
    let (code, kind, body) = console
        .bytes("/console/reports.csv?from=2026-11-01&to=2026-11-03&group=agent&table=backlog")
        .await;
    assert_eq!(code, 200);
    assert!(kind.starts_with("text/csv"), "{kind}");
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("agent,Under 1 day,1–3 days"), "{body}");
    assert!(body.contains("Unassigned,1,0,0,1,0,2"), "{body}");
    let page = console.get("/console/reports?from=2026-02-30").await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("YYYY-MM-DD"), "{}", page.body);
    // Without dates: the last 30 days, which hold none of this.
    let page = console.get("/console/reports").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("No data"));
}

crate::on_both_backends!(reports_count_a_teams_days);
