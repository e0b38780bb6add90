//! The agent console over real HTTP against a running daemon, on both
//! backends: sign-in and lockout, the queue's search, filters, sort and
//! unread dots, the ticket page's reply, note and field controls, CSRF,
//! bulk update and delete, CSV and PDF export, API tokens from the profile.
//! (The same flows in a real browser: tests/it/browser.rs.)

use crate::helpers::{TestApp, TestDb, spawn_app};
use postdesk::domain::{EmailAddress, MessageKind, Role, Status, TicketRef};
use postdesk::secrets;
use postdesk::store::NewUser;
use serde_json::json;

/// A browser of sorts: one session cookie, no redirects followed.
pub struct Agent {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

pub struct Page {
    pub status: u16,
    pub location: String,
    pub body: String,
}

impl Page {
    /// The CSRF token of the first form on the page.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token");
        self.body[at + 19..at + 51].to_string()
    }

    /// Ticket references on the page, in order of first appearance.
    pub fn refs(&self) -> Vec<String> {
        let re = regex::Regex::new(r#"href="/console/tickets/(TKT-\d+)""#).unwrap();
        let mut out: Vec<String> = Vec::new();
        for c in re.captures_iter(&self.body) {
            if !out.contains(&c[1].to_string()) {
                out.push(c[1].to_string());
            }
        }
        out
    }

    /// References of rows carrying an unread dot.
    pub fn unread(&self) -> Vec<String> {
        let re = regex::Regex::new(r#"<tr class="unread">\s*<td><input type="checkbox" name="ids" value="\d+" aria-label="Select (TKT-\d+)""#).unwrap();
        re.captures_iter(&self.body)
            .map(|c| c[1].to_string())
            .collect()
    }
}

impl Agent {
    pub async fn sign_in(app: &TestApp, email: &str, password: &str) -> (Agent, u16) {
        Agent::sign_in_with(app, email, password, &[]).await
    }

    /// Signs in sending `headers` too (a forwarded client address, a
    /// browser's Origin).
    pub async fn sign_in_with(
        app: &TestApp,
        email: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> (Agent, u16) {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut request = http.post(app.url("/console/login")).form(&[
            ("email", email),
            ("password", password),
            ("next", "/console"),
        ]);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let cookie = r
            .headers()
            .get("set-cookie")
            .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string())
            .unwrap_or_default();
        (
            Agent {
                http,
                base: app.url(""),
                cookie,
            },
            status,
        )
    }

    async fn page(r: reqwest::Response) -> Page {
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        Page {
            status,
            location,
            body: r.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        Agent::page(r).await
    }

    pub async fn bytes(&self, path: &str) -> (u16, String, Vec<u8>) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        let ct = r
            .headers()
            .get("content-type")
            .map(|c| c.to_str().unwrap().to_string())
            .unwrap_or_default();
        (r.status().as_u16(), ct, r.bytes().await.unwrap().to_vec())
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap();
        Agent::page(r).await
    }

    pub async fn post_multipart(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.post_files(path, fields, &[]).await
    }

    /// Posts a multipart form with files: (file name, content type, bytes).
    pub async fn post_files(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &str, Vec<u8>)],
    ) -> Page {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        for (name, mime, data) in files {
            form = form.part(
                "files",
                reqwest::multipart::Part::bytes(data.clone())
                    .file_name(name.to_string())
                    .mime_str(mime)
                    .unwrap(),
            );
        }
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .multipart(form)
            .send()
            .await
            .unwrap();
        Agent::page(r).await
    }
}

/// A staff account with a real password.
pub async fn account(app: &TestApp, email: &str, role: Role, password: &str) {
    app.store
        .insert_user(
            &NewUser {
                email: email.parse().unwrap(),
                name: format!("{role:?} {email}"),
                role,
                password_hash: secrets::hash_password(password).unwrap(),
            },
            1,
        )
        .await
        .unwrap();
}

async fn status_of(app: &TestApp, reference: &str) -> Status {
    let r: TicketRef = reference.parse().unwrap();
    app.store.ticket_by_ref(&r).await.unwrap().unwrap().status
}

/// A console with an admin and a second agent, and three tickets opened
/// over the API: TKT-1 (Ann, normal, Technical), TKT-2 (Bob, high,
/// Billing), TKT-3 (Carol, low, Account).
async fn console_with_tickets(db: TestDb) -> TestApp {
    let app = spawn_app(db).await;
    account(&app, "admin@example.test", Role::Admin, "admin-password-1").await;
    account(&app, "second@example.test", Role::Agent, "agent-password-2").await;
    for (who, subject, body, priority, category) in [
        (
            "ann@example.org",
            "Printer on fire",
            "It smokes badly.",
            "normal",
            "Technical",
        ),
        (
            "bob@example.org",
            "Invoice wrong",
            "Charged twice.",
            "high",
            "Billing",
        ),
        (
            "carol@example.org",
            "Password reset",
            "Locked out.",
            "low",
            "Account",
        ),
    ] {
        let r = app
            .http
            .post(app.url("/api/v1/tickets"))
            .bearer_auth(&app.token)
            .json(
                &json!({ "requester": { "email": who }, "subject": subject, "body": body,
                           "priority": priority, "category": category, "channel": "email" }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }

    app
}

/// Signing in: strangers are sent to the sign-in page; a wrong password is
/// refused without saying which half was wrong; five wrong passwords from
/// one place hold that place back; signing out ends the session.
async fn signing_in_and_out(db: TestDb) {
    let app = console_with_tickets(db).await;
    // Signing in: the console sends strangers to the sign-in page; a wrong
    // password is refused without saying which half was wrong.
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = anonymous.get(app.url("/console")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/console/login");
    let (_, status) = Agent::sign_in(&app, "admin@example.test", "nope").await;
    assert_eq!(status, 401);
    let (_, status) = Agent::sign_in(&app, "nobody@example.test", "admin-password-1").await;
    assert_eq!(status, 401);
    let (admin, status) = Agent::sign_in(&app, "admin@example.test", "admin-password-1").await;
    assert_eq!(status, 303);

    // Five wrong passwords from one place hold that place back, even
    // against the right one (the same answer as a wrong password).
    for _ in 0..5 {
        assert_eq!(
            Agent::sign_in(&app, "second@example.test", "guess").await.1,
            401
        );
    }
    assert_eq!(
        Agent::sign_in(&app, "second@example.test", "agent-password-2")
            .await
            .1,
        401
    );
    let p = admin.get("/console/profile").await;
    // Signing out ends the session.
    let out = admin.post("/console/logout", &[("csrf", &p.csrf())]).await;
    assert_eq!(out.status, 303);
    assert_eq!(admin.get("/console").await.status, 303);
    app.stop().await;
}

/// The queue: everything, newest first, with status badges and unread
/// dots; search and filters combine; a bad filter is named.
async fn the_queue_searches_and_filters(db: TestDb) {
    let app = console_with_tickets(db).await;
    let (admin, _) = Agent::sign_in(&app, "admin@example.test", "admin-password-1").await;
    // The queue: everything, newest first, with status badges and unread dots.
    let q = admin.get("/console").await;
    assert_eq!(q.status, 200, "{}", q.body);
    assert_eq!(q.refs(), ["TKT-3", "TKT-2", "TKT-1"]);
    assert!(
        q.body
            .contains(r#"status-open" href="/console?status&#x3D;open">Open <b>3</b>"#),
        "badges"
    );
    assert_eq!(q.unread(), ["TKT-3", "TKT-2", "TKT-1"]);
    // Search by subject, message text, requester address and reference;
    // filters combine; sorting by subject.
    for (query, want) in [
        ("/console?q=invoice", vec!["TKT-2"]),
        ("/console?q=smokes", vec!["TKT-1"]),
        ("/console?q=carol%40example", vec!["TKT-3"]),
        ("/console?q=TKT-2", vec!["TKT-2"]),
        (
            "/console?priority=high%2Clow&category=Billing",
            vec!["TKT-2"],
        ),
        (
            "/console?status=open&assignee=none&sort=subject",
            vec!["TKT-2", "TKT-3", "TKT-1"],
        ),
        ("/console?status=closed", vec![]),
    ] {
        let p = admin.get(query).await;
        assert_eq!(p.status, 200, "{query}");
        assert_eq!(p.refs(), want, "{query}");
    }
    let bad = admin.get("/console?status=sideways").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("sideways"),
        "the error names the bad value"
    );

    app.stop().await;
}

/// The ticket page: reading it clears the dot for this agent only; a reply
/// with a chosen status, an internal note, the fields form; a forged form
/// changes nothing; "my open tickets" for the assignee.
async fn the_ticket_page_works_a_ticket(db: TestDb) {
    let app = console_with_tickets(db).await;
    let (admin, _) = Agent::sign_in(&app, "admin@example.test", "admin-password-1").await;
    // The ticket page: reading it clears the dot for this agent only.
    let t = admin.get("/console/tickets/TKT-1").await;
    assert_eq!(t.status, 200);
    assert!(t.body.contains("It smokes badly."));
    assert_eq!(admin.get("/console").await.unread(), ["TKT-3", "TKT-2"]);
    let (second, _) = Agent::sign_in(&app, "second@example.test", "agent-password-2").await;
    assert_eq!(
        second.get("/console").await.unread(),
        ["TKT-3", "TKT-2", "TKT-1"]
    );

    // Reply with a chosen status; an internal note; the fields form.
    let csrf = t.csrf();
    let r = admin
        .post_multipart(
            "/console/tickets/TKT-1/reply",
            &[
                ("csrf", &csrf),
                ("body", "We are on it."),
                ("status", "pending"),
            ],
        )
        .await;
    assert_eq!(
        (r.status, r.location.as_str()),
        (303, "/console/tickets/TKT-1")
    );
    assert_eq!(status_of(&app, "TKT-1").await, Status::Pending);
    let r = admin
        .post_multipart(
            "/console/tickets/TKT-1/note",
            &[("csrf", &csrf), ("body", "Ann is a VIP; keep her posted.")],
        )
        .await;
    assert_eq!(r.status, 303);
    let id = app
        .store
        .ticket_by_ref(&"TKT-1".parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let public = app.store.messages(id, false).await.unwrap();
    assert!(
        public
            .iter()
            .all(|m| m.kind != MessageKind::Note && !m.body_text.contains("VIP"))
    );
    assert!(public.iter().any(|m| m.body_text == "We are on it."));
    let page = admin.get("/console/tickets/TKT-1").await;
    assert!(page.body.contains("msg msg-note") && page.body.contains("Ann is a VIP"));
    let fields = [
        ("csrf", csrf.as_str()),
        ("status", "on_hold"),
        ("priority", "urgent"),
        ("category", "Technical"),
        ("assignee", "second@example.test"),
        ("tags", "VIP, printer"),
        ("due", "2026-12-24"),
        ("related_kind", "order"),
        ("related_id", "A-77"),
    ];
    assert_eq!(
        admin
            .post("/console/tickets/TKT-1/update", &fields)
            .await
            .status,
        303
    );
    let t1 = app
        .store
        .ticket_by_ref(&"TKT-1".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t1.status, Status::OnHold);
    assert_eq!(
        t1.assignee.map(|u| u.email),
        Some("second@example.test".parse::<EmailAddress>().unwrap())
    );
    assert_eq!(t1.tags, ["printer", "vip"]);
    assert_eq!(t1.related, Some(("order".into(), "A-77".into())));
    // A form with another session's token changes nothing.
    let forged = [
        ("csrf", "0".repeat(32)),
        ("status", "closed".into()),
        ("priority", "low".into()),
        ("category", "Technical".into()),
    ];
    let forged: Vec<(&str, &str)> = forged.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        admin
            .post("/console/tickets/TKT-1/update", &forged)
            .await
            .status,
        400
    );
    assert_eq!(status_of(&app, "TKT-1").await, Status::OnHold);
    // "My open tickets" for the assignee.
    let mine = second
        .get("/console?assignee=me&status=open%2Cin_progress%2Cpending%2Con_hold")
        .await;
    assert_eq!(mine.refs(), ["TKT-1"]);

    app.stop().await;
}

/// Bulk changes of ticked tickets and of all matching a filter; deleting
/// (agents may not, admins confirm); exports of what is left.
async fn bulk_changes_deletes_and_exports(db: TestDb) {
    let app = console_with_tickets(db).await;
    let (admin, _) = Agent::sign_in(&app, "admin@example.test", "admin-password-1").await;
    let (second, _) = Agent::sign_in(&app, "second@example.test", "agent-password-2").await;
    let q = admin.get("/console").await;
    // Bulk: ticked tickets, then all matching a filter.
    let ids: Vec<String> = ["TKT-1", "TKT-2"]
        .iter()
        .map(|r| {
            let re = regex::Regex::new(&format!(
                r#"name="ids" value="(\d+)" aria-label="Select {r}""#
            ))
            .unwrap();
            re.captures(&q.body).unwrap()[1].to_string()
        })
        .collect();
    let qcsrf = q.csrf();
    let r = admin
        .post(
            "/console/bulk",
            &[
                ("csrf", &qcsrf),
                ("ids", &ids[0]),
                ("ids", &ids[1]),
                ("status", "resolved"),
                ("assignee", "none"),
                ("action", "update"),
                ("filter", ""),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Updated 2 of 2 tickets."));
    assert_eq!(status_of(&app, "TKT-1").await, Status::Resolved);
    assert_eq!(status_of(&app, "TKT-2").await, Status::Resolved);
    let r = admin
        .post(
            "/console/bulk",
            &[
                ("csrf", &qcsrf),
                ("all", "1"),
                ("filter", "q=password"),
                ("priority", "urgent"),
                ("action", "update"),
            ],
        )
        .await;
    assert!(r.body.contains("Updated 1 of 1 ticket."), "{}", r.body);
    assert_eq!(
        admin
            .get("/console?priority=urgent&status=open")
            .await
            .refs(),
        ["TKT-3"]
    );
    // Deleting: agents may not; admins must confirm.
    let scsrf = second.get("/console").await.csrf();
    let r = second
        .post(
            "/console/bulk",
            &[
                ("csrf", &scsrf),
                ("ids", &ids[1]),
                ("action", "delete"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    let r = admin
        .post(
            "/console/bulk",
            &[("csrf", &qcsrf), ("ids", &ids[1]), ("action", "delete")],
        )
        .await;
    assert_eq!(r.status, 400);
    let r = admin
        .post(
            "/console/bulk",
            &[
                ("csrf", &qcsrf),
                ("ids", &ids[1]),
                ("action", "delete"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert!(r.body.contains("Deleted 1 ticket."), "{}", r.body);
    assert!(
        app.store
            .ticket_by_ref(&"TKT-2".parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );

    // Exports of the filtered list.
    let (status, ct, csv) = admin
        .bytes("/console/export.csv?sort=subject&status=resolved%2Copen")
        .await;
    assert_eq!((status, ct.as_str()), (200, "text/csv; charset=utf-8"));
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        lines[0],
        "reference,subject,status,priority,category,channel,requester_email,requester_name,assignee,message_count,sla,created_at,updated_at"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].starts_with("TKT-3,Password reset,open,urgent,Account,email,carol@example.org"),
        "{csv}"
    );
    assert!(
        lines[2].starts_with("TKT-1,Printer on fire,resolved,normal,Technical"),
        "{csv}"
    );
    let (status, ct, pdf) = admin.bytes("/console/export.pdf?status=resolved").await;
    assert_eq!((status, ct.as_str()), (200, "application/pdf"));
    assert!(pdf.starts_with(b"%PDF-1.7") && pdf.ends_with(b"%%EOF\n"));
    let pdf = String::from_utf8_lossy(&pdf);
    assert!(pdf.contains("/Count 1"), "one page");
    assert!(pdf.contains("+DejaVuSans"), "its font embedded");

    app.stop().await;
}

/// API tokens from the profile: shown once, usable, revocable.
async fn api_tokens_from_the_profile(db: TestDb) {
    let app = console_with_tickets(db).await;
    let (admin, _) = Agent::sign_in(&app, "admin@example.test", "admin-password-1").await;
    // API tokens from the profile: shown once, usable, revocable.
    let p = admin.get("/console/profile").await;
    let made = admin
        .post(
            "/console/profile/tokens",
            &[("csrf", &p.csrf()), ("label", "reports")],
        )
        .await;
    let token = regex::Regex::new(r"pd_[0-9a-f]+")
        .unwrap()
        .find(&made.body)
        .unwrap()
        .as_str()
        .to_string();
    let api = |t: String| api_status(&app, t);
    assert_eq!(api(token.clone()).await, 200);
    let id = regex::Regex::new(r"/console/profile/tokens/(\d+)/revoke")
        .unwrap()
        .captures(&made.body)
        .unwrap()[1]
        .to_string();
    let r = admin
        .post(
            &format!("/console/profile/tokens/{id}/revoke"),
            &[("csrf", &p.csrf())],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(api(token).await, 401);

    app.stop().await;
}

/// Admin pages: agents are refused; a mailbox added through the form is
/// stored with the same checks as the CLI, paused, tested; users are
/// added, demoted and given a new password that works.
/// A console with an admin and an agent (agent2) signed in; the admin's
/// CSRF token.
async fn admin_and_agent(db: TestDb) -> (TestApp, Agent, Agent, String) {
    let app = spawn_app(db).await;
    account(&app, "admin@example.test", Role::Admin, "admin-password-1").await;
    account(&app, "agent2@example.test", Role::Agent, "agent-password-2").await;
    let (admin, _) = Agent::sign_in(&app, "admin@example.test", "admin-password-1").await;
    let (agent, _) = Agent::sign_in(&app, "agent2@example.test", "agent-password-2").await;
    let csrf = admin.get("/console/admin/settings").await.csrf();
    (app, admin, agent, csrf)
}

/// Mailboxes: only admins see them; added, edited (a blank password keeps
/// the stored one) and removed after confirmation.
async fn administration_of_mailboxes(db: TestDb) {
    let (app, admin, agent, _) = admin_and_agent(db).await;
    for path in ["/console/admin/mailboxes", "/console/admin/users"] {
        assert_eq!(agent.get(path).await.status, 403, "{path}");
    }
    let page = admin.get("/console/admin/mailboxes").await;
    assert_eq!(page.status, 200);
    let csrf = page.csrf();
    let form = |name: &'static str, address: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("original", String::new()),
            ("name", name.into()),
            ("address", address.into()),
            ("imap_host", "127.0.0.1".into()),
            ("imap_port", "1".into()),
            ("tls", "none".into()),
            ("username", "billing".into()),
            ("password", "pw-123456".into()),
            ("folder", "INBOX".into()),
            ("after", "move:Done".into()),
            ("start", "now".into()),
            ("idle", "1".into()),
            ("poll_interval", "45s".into()),
            ("smtp_host", String::new()),
            ("smtp_port", "587".into()),
            ("smtp_tls", "starttls".into()),
            ("default_priority", "high".into()),
        ]
    };
    let pairs = |f: &Vec<(&'static str, String)>| {
        f.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>()
    };
    let f = pairs(&form("billing", "not-an-address"));
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = admin.post("/console/admin/mailboxes", &f).await;
    assert_eq!(r.status, 400, "a bad address is refused");
    let f = pairs(&form("billing", "billing@example.test"));
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = admin.post("/console/admin/mailboxes", &f).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Mailbox billing saved"));
    let m = app.store.mailbox_by_name("billing").await.unwrap().unwrap();
    assert_eq!(m.settings.address.as_str(), "billing@example.test");
    assert_eq!(m.settings.after.to_string(), "move:Done");
    assert_eq!(m.settings.poll_interval.to_string(), "45s");
    assert!(m.settings.imap.password.is_some());
    let r = admin
        .post("/console/admin/mailboxes/billing/pause", &[("csrf", &csrf)])
        .await;
    assert!(r.body.contains("Mailbox billing paused."));
    assert!(
        app.store
            .mailbox_by_name("billing")
            .await
            .unwrap()
            .unwrap()
            .paused
    );
    let r = admin
        .post("/console/admin/mailboxes/billing/test", &[("csrf", &csrf)])
        .await;
    assert!(
        r.body.contains("Connection failed"),
        "nothing listens on port 1"
    );
    assert!(
        r.body.contains("Nothing answers on that host and port"),
        "the error says what to do: {}",
        r.body
    );
    // Editing keeps the stored password when the field is left blank.
    let edit = admin.get("/console/admin/mailboxes/billing").await;
    assert!(edit.body.contains("value=\"billing@example.test\""));
    let mut f = form("billing", "billing@example.test");
    f[1].1 = "billing".into();
    f[8].1 = String::new();
    f[14].1 = "smtp.example.test".into();
    let f = pairs(&f);
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(admin.post("/console/admin/mailboxes", &f).await.status, 200);
    let m = app.store.mailbox_by_name("billing").await.unwrap().unwrap();
    assert!(m.settings.imap.password.is_some(), "the password stayed");
    assert_eq!(
        m.settings.smtp.map(|s| s.host),
        Some("smtp.example.test".into())
    );
    // Removal asks for confirmation: without the box ticked, nothing changes.
    let r = admin
        .post(
            "/console/admin/mailboxes/billing/remove",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Tick the box"), "{}", r.body);
    assert!(
        app.store
            .mailbox_by_name("billing")
            .await
            .unwrap()
            .is_some()
    );
    let page = admin.get("/console/admin/mailboxes").await;
    assert!(
        page.body.contains(r#"name="confirm" value="yes" required"#),
        "the remove form carries its confirmation"
    );
    let r = admin
        .post(
            "/console/admin/mailboxes/billing/remove",
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert!(r.body.contains("removed"));
    assert!(
        app.store
            .mailbox_by_name("billing")
            .await
            .unwrap()
            .is_none()
    );

    app.stop().await;
}

/// Users: added (the password is shown once and works), demoted at once,
/// a reset password ends the old sessions.
async fn administration_of_users(db: TestDb) {
    let (app, admin, agent, csrf) = admin_and_agent(db).await;
    // Users: add (the password is shown once and works), demote, reset.
    let r = admin
        .post(
            "/console/admin/users",
            &[
                ("csrf", &csrf),
                ("email", "Nia@Example.test"),
                ("name", "Nia"),
                ("role", "admin"),
            ],
        )
        .await;
    let password = r
        .body
        .split("shown once: ")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    let (nia, status) = Agent::sign_in(&app, "nia@example.test", &password).await;
    assert_eq!(status, 303);
    assert_eq!(nia.get("/console/admin/users").await.status, 200);
    let id = app
        .store
        .user_by_email(&"nia@example.test".parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let r = admin
        .post(
            &format!("/console/admin/users/{id}"),
            &[
                ("csrf", &csrf),
                ("name", "Nia N"),
                ("role", "agent"),
                ("active", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        nia.get("/console/admin/users").await.status,
        403,
        "demoted at once"
    );
    let r = admin
        .post(
            &format!("/console/admin/users/{id}"),
            &[("csrf", &csrf), ("name", "Nia N"), ("role", "agent")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        nia.get("/console").await.status,
        303,
        "a deactivated account is signed out"
    );
    let me = app
        .store
        .user_by_email(&"admin@example.test".parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let r = admin
        .post(
            &format!("/console/admin/users/{me}"),
            &[
                ("csrf", &csrf),
                ("name", "A"),
                ("role", "agent"),
                ("active", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "no admin demotes themselves");
    let agent2 = app
        .store
        .user_by_email(&"agent2@example.test".parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let r = admin
        .post(
            &format!("/console/admin/users/{agent2}/password"),
            &[("csrf", &csrf)],
        )
        .await;
    let fresh = shown_password(&r);
    assert_eq!(
        Agent::sign_in(&app, "agent2@example.test", "agent-password-2")
            .await
            .1,
        401
    );
    // The new password ended agent2's old session: sign in again.
    assert_eq!(agent.get("/console").await.status, 303);
    let (agent, status) = Agent::sign_in(&app, "agent2@example.test", &fresh).await;
    assert_eq!(status, 303);
    assert_eq!(
        agent.get("/console").await.status,
        200,
        "the new session works"
    );
    app.stop().await;
}

/// Settings: checked (the form comes back as typed, the error beside its
/// field), in force at once, stored for the other daemons.
async fn administration_of_settings(db: TestDb) {
    let (app, admin, agent, csrf) = admin_and_agent(db).await;
    // Settings: checked, in force at once, stored for the other daemons.
    assert_eq!(agent.get("/console/admin/settings").await.status, 403);
    let page = admin.get("/console/admin/settings").await;
    assert!(
        page.body.contains("General\nBilling"),
        "the categories are shown"
    );
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("notification_address", "team@example.test"),
        ("auto_close_after", "3d"),
        ("reopen_window", "soon"),
        ("default_assignee", "agent2@example.test"),
        ("sla_enabled", "1"),
        ("urgent_first_response", "1h"),
        ("urgent_resolution", "1d"),
        ("categories", "General\nHardware\ngeneral"),
        ("related_kinds", "order, study"),
        ("support_url", "https://help.example.test"),
    ];
    let r = admin.post("/console/admin/settings", &fields).await;
    assert_eq!(r.status, 400, "a reopen window of `soon` is refused");
    // The form comes back as typed, the error beside its field.
    assert!(
        r.body
            .contains(r#"name="reopen_window" required value="soon" aria-invalid="true""#),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains(r#"<p class="field-error" id="st-reopen-err">Reopen window: "#),
        "{}",
        r.body
    );
    assert!(r.body.contains("team@example.test"));
    assert!(r.body.contains("General\nHardware\ngeneral"));
    assert!(r.body.contains(r#"value="https://help.example.test""#));
    assert!(
        r.body
            .contains(r#"<option value="agent2@example.test" selected>"#),
        "{}",
        r.body
    );
    let page = admin.get("/console/admin/settings").await;
    assert!(
        page.body
            .contains(r#"name="notification_address" type="email" value="">"#),
        "nothing was saved: {}",
        page.body
    );
    fields[3].1 = "2w";
    let r = admin.post("/console/admin/settings", &fields).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Settings saved"));
    let created = app
        .http
        .post(app.url("/api/v1/tickets"))
        .bearer_auth(&app.token)
        .json(&json!({ "requester": { "email": "dan@example.org" }, "subject": "Fan noise", "body": "Loud.", "category": "hardware", "priority": "urgent" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.status().as_u16(),
        201,
        "the new category is accepted"
    );
    let t: serde_json::Value = created.json().await.unwrap();
    assert_eq!(t["category"], "Hardware");
    assert_eq!(
        t["assignee"], "agent2@example.test",
        "the default assignee applies"
    );
    assert_eq!(t["sla"], "ok", "SLA targets are tracked now");
    let stored = app
        .store
        .setting("console_settings")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.contains("Hardware") && stored.contains("help.example.test"));
    let other = postdesk::config::Live::new(postdesk::config::Settings::default());
    assert!(
        postdesk::app::apply_stored_settings(&app.store, &other).await,
        "another daemon takes them up"
    );
    let s = other.get();
    assert_eq!(s.tickets.categories, ["General", "Hardware"]);
    assert_eq!(s.tickets.reopen_window.to_string(), "2w");
    assert_eq!(
        s.http.support_url.as_deref(),
        Some("https://help.example.test")
    );
    app.stop().await;
}

/// The sign-in page under attack (SPEC §7): parallel guesses cannot clear
/// each other's count, the owner elsewhere still gets in, a cross-site form
/// signs no one in, and unknown, wrong and throttled answer alike.
async fn sign_in_under_attack(db: TestDb) {
    let app = crate::helpers::spawn_app_with(db, |s| {
        s.http.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    account(&app, "owner@example.test", Role::Admin, "owner-password-1").await;
    let attacker = [("x-forwarded-for", "203.0.113.66")];
    // Forty wrong guesses at once, then the right password from the same place.
    let guesses = (0..40).map(|i| {
        let app = &app;
        async move {
            Agent::sign_in_with(app, "owner@example.test", &format!("guess-{i}"), &attacker)
                .await
                .1
        }
    });
    let answers = futures::future::join_all(guesses).await;
    assert!(
        answers.iter().all(|s| *s == 401 || *s == 429),
        "{answers:?}"
    );
    assert_eq!(
        Agent::sign_in_with(&app, "owner@example.test", "owner-password-1", &attacker)
            .await
            .1,
        401,
        "the attacker's place is held back, right password or not"
    );
    // The failures were all counted, none lost to a race.
    let failed = app
        .store
        .count_failed_login(
            app.store
                .user_by_email(&"owner@example.test".parse().unwrap())
                .await
                .unwrap()
                .unwrap()
                .id,
        )
        .await
        .unwrap();
    assert!(failed >= 2, "{failed}");
    // The owner, from their own place, signs in meanwhile.
    let owner = [("x-forwarded-for", "198.51.100.7")];
    let (me, status) =
        Agent::sign_in_with(&app, "owner@example.test", "owner-password-1", &owner).await;
    assert_eq!(status, 303);
    assert_eq!(me.get("/console").await.status, 200);
    // Unknown, wrong and throttled: one answer.
    let page = |email: &'static str, pw: &'static str, from: &'static str| {
        let app = &app;
        async move {
            let r = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .post(app.url("/console/login"))
                .header("x-forwarded-for", from)
                .form(&[("email", email), ("password", pw), ("next", "/console")])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let unknown = page("nobody@example.test", "x", "192.0.2.10").await;
    let wrong = page("owner@example.test", "x", "192.0.2.11").await;
    let throttled = page("owner@example.test", "x", "203.0.113.66").await;
    let error = |body: &str| {
        let at = body.find("class=\"error\"").expect("an error on the page");
        body[at..at + 120].to_string()
    };
    assert_eq!(unknown.0, 401);
    assert_eq!((wrong.0, error(&wrong.1)), (unknown.0, error(&unknown.1)));
    assert_eq!(
        (throttled.0, error(&throttled.1)),
        (unknown.0, error(&unknown.1))
    );
    // A sign-in form posted from another site signs no one in.
    for headers in [
        [
            ("origin", "https://evil.example"),
            ("x-forwarded-for", "192.0.2.20"),
        ],
        [
            ("sec-fetch-site", "cross-site"),
            ("x-forwarded-for", "192.0.2.21"),
        ],
    ] {
        let (agent, status) =
            Agent::sign_in_with(&app, "owner@example.test", "owner-password-1", &headers).await;
        assert_eq!(status, 403);
        assert!(agent.cookie.is_empty(), "no session cookie");
    }
    // Our own pages' form (same origin) works.
    let host = app.url("").trim_end_matches('/').to_string();
    let (_, status) = Agent::sign_in_with(
        &app,
        "owner@example.test",
        "owner-password-1",
        &[
            ("origin", &host),
            ("sec-fetch-site", "same-origin"),
            ("x-forwarded-for", "192.0.2.22"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    app.stop().await;
}

/// The new password an admin's reset shows once.
fn shown_password(page: &Page) -> String {
    page.body
        .split("(the account is unlocked): ")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string()
}

/// The status of `GET /api/v1/tickets` with an API token.
async fn api_status(app: &TestApp, token: String) -> u16 {
    app.http
        .get(app.url("/api/v1/tickets"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A new API token of a signed-in agent, made on their profile page.
pub async fn new_token(agent: &Agent) -> String {
    let p = agent.get("/console/profile").await;
    let made = agent
        .post(
            "/console/profile/tokens",
            &[("csrf", &p.csrf()), ("label", "x")],
        )
        .await;
    regex::Regex::new(r"pd_[0-9a-f]+")
        .unwrap()
        .find(&made.body)
        .unwrap()
        .as_str()
        .to_string()
}

/// An agent's own settings (issue 34, item 5): the password changes only
/// with the current one, long enough and typed twice alike, and ends the
/// agent's other sessions but not this one (nor API tokens); the notices
/// they get by mail are theirs to switch off, and the outbox worker reads
/// the same choice.
async fn own_password_and_notifications(db: TestDb) {
    let app = spawn_app(db).await;
    account(&app, "alan@example.test", Role::Agent, "alan-password-1").await;
    let (here, status) = Agent::sign_in(&app, "alan@example.test", "alan-password-1").await;
    assert_eq!(status, 303);
    let (elsewhere, _) = Agent::sign_in(&app, "alan@example.test", "alan-password-1").await;
    let token = new_token(&here).await;
    let p = here.get("/console/profile").await;
    let change = |current: &'static str, new: &'static str, again: &'static str| {
        let csrf = p.csrf();
        let here = &here;
        async move {
            here.post(
                "/console/profile/password",
                &[
                    ("csrf", &csrf),
                    ("current", current),
                    ("new", new),
                    ("again", again),
                ],
            )
            .await
        }
    };
    for (current, new, again, why) in [
        (
            "guess",
            "alan-password-2",
            "alan-password-2",
            "The current password is not right.",
        ),
        (
            "alan-password-1",
            "short",
            "short",
            "at least 10 characters",
        ),
        (
            "alan-password-1",
            "alan-password-2",
            "alan-password-3",
            "not typed the same twice",
        ),
    ] {
        let r = change(current, new, again).await;
        assert_eq!(r.status, 400, "{why}");
        assert!(r.body.contains(why), "{why}: {}", r.body);
        assert!(r.body.contains("aria-invalid=\"true\""));
    }
    assert_eq!(
        elsewhere.get("/console").await.status,
        200,
        "nothing changed yet"
    );
    let r = change("alan-password-1", "alan-password-2", "alan-password-2").await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("your one other session was signed out"),
        "{}",
        r.body
    );
    assert_eq!(
        here.get("/console").await.status,
        200,
        "this session goes on"
    );
    let gone = elsewhere.get("/console").await;
    assert_eq!(
        (gone.status, gone.location.as_str()),
        (303, "/console/login")
    );
    assert_eq!(
        api_status(&app, token).await,
        200,
        "API tokens keep working"
    );
    assert_eq!(
        Agent::sign_in(&app, "alan@example.test", "alan-password-1")
            .await
            .1,
        401
    );
    assert_eq!(
        Agent::sign_in(&app, "alan@example.test", "alan-password-2")
            .await
            .1,
        303
    );
    // Another agent's forged form changes nothing.
    let forged = here
        .post(
            "/console/profile/password",
            &[
                ("csrf", "x"),
                ("current", "alan-password-2"),
                ("new", "mallory-pass-1"),
                ("again", "mallory-pass-1"),
            ],
        )
        .await;
    assert_ne!(forged.status, 200);

    // Notifications: every box ticked at first; unticking one switches it
    // off for the worker, ticking it again on.
    let p = here.get("/console/profile").await;
    assert_eq!(p.body.matches("name=\"on\"").count(), 4);
    assert_eq!(p.body.matches(" checked>").count(), 4);
    let r = here
        .post(
            "/console/profile/notifications",
            &[
                ("csrf", &p.csrf()),
                ("on", "assigned"),
                ("on", "requester_reply"),
                ("on", "mentioned"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Notifications saved."));
    assert!(
        r.body
            .contains("value=\"team_new_ticket\"> A new ticket arrives")
    );
    let facts = app
        .store
        .recipient_facts("alan@example.test")
        .await
        .unwrap();
    assert_eq!(facts.switched_off, vec!["team_new_ticket".to_string()]);
    here.post(
        "/console/profile/notifications",
        &[
            ("csrf", &p.csrf()),
            ("on", "assigned"),
            ("on", "requester_reply"),
            ("on", "team_new_ticket"),
            ("on", "mentioned"),
        ],
    )
    .await;
    let facts = app
        .store
        .recipient_facts("alan@example.test")
        .await
        .unwrap();
    assert!(facts.switched_off.is_empty(), "{:?}", facts.switched_off);
    app.stop().await;
}

/// The same own settings through the API (`/api/v1/me`): notices switched
/// by name, the password changed with the current one (console sessions
/// end, the token goes on).
async fn own_settings_through_the_api(db: TestDb) {
    use crate::helpers::call_api;
    use serde_json::Value;
    let app = spawn_app(db).await;
    account(&app, "alan@example.test", Role::Agent, "alan-password-1").await;
    let (console, _) = Agent::sign_in(&app, "alan@example.test", "alan-password-1").await;
    let token = new_token(&console).await;
    let (status, me) = call_api(&app, &token, "GET", "/api/v1/me", Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(me["email"], "alan@example.test");
    assert_eq!(
        me["notifications"],
        json!({ "team_new_ticket": true, "assigned": true, "requester_reply": true, "mentioned": true })
    );
    let (status, me) = call_api(
        &app,
        &token,
        "PATCH",
        "/api/v1/me",
        json!({ "notifications": { "mentioned": false } }),
    )
    .await;
    assert_eq!(
        (status, me["notifications"]["mentioned"].clone()),
        (200, json!(false))
    );
    assert_eq!(me["notifications"]["assigned"], true, "the others kept");
    let facts = app
        .store
        .recipient_facts("alan@example.test")
        .await
        .unwrap();
    assert_eq!(facts.switched_off, vec!["mentioned".to_string()]);
    for bad in [
        json!({ "notifications": { "receipt": false } }),
        json!({ "notifications": { "assigned": "no" } }),
    ] {
        assert_eq!(
            call_api(&app, &token, "PATCH", "/api/v1/me", bad).await.0,
            400
        );
    }
    for (current, new, why) in [
        ("guess", "alan-password-2", "not right"),
        ("alan-password-1", "short", "at least 10"),
    ] {
        let body = json!({ "current": current, "new": new });
        let (status, e) = call_api(&app, &token, "POST", "/api/v1/me/password", body).await;
        assert_eq!(status, 400);
        assert!(e["error"]["message"].as_str().unwrap().contains(why), "{e}");
    }
    assert_eq!(
        console.get("/console").await.status,
        200,
        "nothing changed yet"
    );
    let body = json!({ "current": "alan-password-1", "new": "alan-password-2" });
    let (status, done) = call_api(&app, &token, "POST", "/api/v1/me/password", body).await;
    assert_eq!((status, done["sessions_ended"].clone()), (200, json!(1)));
    assert_eq!(
        console.get("/console").await.status,
        303,
        "the console session ended"
    );
    assert_eq!(api_status(&app, token).await, 200, "the token goes on");
    assert_eq!(
        Agent::sign_in(&app, "alan@example.test", "alan-password-2")
            .await
            .1,
        303
    );
    app.stop().await;
}

/// A new password set by an admin ends the user's sessions and revokes
/// their API tokens; deactivation revokes tokens for good.
async fn credentials_are_revoked(db: TestDb) {
    let app = spawn_app(db).await;
    account(&app, "admin@example.test", Role::Admin, "admin-password-1").await;
    account(&app, "agent2@example.test", Role::Agent, "agent-password-2").await;
    let (admin, _) = Agent::sign_in(&app, "admin@example.test", "admin-password-1").await;
    let api = |t: String| api_status(&app, t);
    let agent2 = app
        .store
        .user_by_email(&"agent2@example.test".parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let (agent, _) = Agent::sign_in(&app, "agent2@example.test", "agent-password-2").await;
    let token = new_token(&agent).await;
    assert_eq!(api(token.clone()).await, 200);
    assert_eq!(agent.get("/console").await.status, 200);
    let csrf = admin.get("/console/admin/users").await.csrf();
    let r = admin
        .post(
            &format!("/console/admin/users/{agent2}/password"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        agent.get("/console").await.status,
        303,
        "the old session ended"
    );
    assert_eq!(api(token).await, 401, "the old token is revoked");
    let fresh = shown_password(&r);
    // Deactivated, then reactivated: a token made before stays revoked.
    let (agent, _) = Agent::sign_in(&app, "agent2@example.test", &fresh).await;
    let token = new_token(&agent).await;
    assert_eq!(api(token.clone()).await, 200);
    for active in [false, true] {
        let mut form = vec![
            ("csrf", csrf.clone()),
            ("name", "Agent Two".to_string()),
            ("role", "agent".to_string()),
        ];
        if active {
            form.push(("active", "1".into()));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = admin
            .post(&format!("/console/admin/users/{agent2}"), &form)
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
    }
    assert_eq!(api(token).await, 401, "reactivation revives no token");
    assert_eq!(agent.get("/console").await.status, 303);
    app.stop().await;
}

/// Merging asks for confirmation, then sends the thread over.
/// A reply and a note from the console carry their files: each is one
/// action (issue 30, item 1), the files written with the message.
async fn replies_and_notes_keep_their_files(db: TestDb) {
    let app = spawn_app(db).await;
    account(&app, "alan@example.test", Role::Agent, "alan-password-1").await;
    let (alan, _) = Agent::sign_in(&app, "alan@example.test", "alan-password-1").await;
    let r = app
        .http
        .post(app.url("/api/v1/tickets"))
        .bearer_auth(&app.token)
        .json(&serde_json::json!({"requester": {"email": "ann@example.org"}, "subject": "VPN", "body": "Down."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    for (kind, name) in [("reply", "steps.txt"), ("note", "trace.log")] {
        let csrf = alan.get("/console/tickets/TKT-1").await.csrf();
        let r = alan
            .post_files(
                &format!("/console/tickets/TKT-1/{kind}"),
                &[("csrf", &csrf), ("body", "Attached.")],
                &[(name, "text/plain", format!("{kind} file").into_bytes())],
            )
            .await;
        assert_eq!(r.status, 303, "{kind}: {}", r.body);
    }
    let (_, t) = crate::helpers::call_api(
        &app,
        &app.token,
        "GET",
        "/api/v1/tickets/TKT-1",
        serde_json::Value::Null,
    )
    .await;
    let with_files: Vec<(String, String)> = t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            let f = m["attachments"].as_array()?.first()?;
            Some((
                m["kind"].as_str()?.to_string(),
                f["filename"].as_str()?.to_string(),
            ))
        })
        .collect();
    assert_eq!(
        with_files,
        [
            ("reply".to_string(), "steps.txt".to_string()),
            ("note".to_string(), "trace.log".to_string())
        ]
    );
}

async fn merge_asks_for_confirmation(db: TestDb) {
    let app = spawn_app(db).await;
    account(&app, "admin@example.test", Role::Admin, "admin-password-1").await;
    let (admin, _) = Agent::sign_in(&app, "admin@example.test", "admin-password-1").await;
    for subject in ["First", "Second"] {
        let r = app
            .http
            .post(app.url("/api/v1/tickets"))
            .bearer_auth(&app.token)
            .json(&serde_json::json!({"requester": {"email": "ann@example.org"}, "subject": subject, "body": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let csrf = admin.get("/console/tickets/TKT-2").await.csrf();
    let page = admin.get("/console/tickets/TKT-2").await;
    assert!(
        page.body.contains("name=\"confirm\""),
        "the merge form asks"
    );
    let r = admin
        .post(
            "/console/tickets/TKT-2/merge",
            &[("csrf", &csrf), ("into", "TKT-1")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("confirm the merge"));
    assert!(
        !admin
            .get("/console/tickets/TKT-2")
            .await
            .body
            .contains("Merged into")
    );
    let r = admin
        .post(
            "/console/tickets/TKT-2/merge",
            &[("csrf", &csrf), ("into", "TKT-1"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(
        admin
            .get("/console/tickets/TKT-2")
            .await
            .body
            .contains("Merged into")
    );
    app.stop().await;
}

/// The PDF export in every script (#31.4): subjects and names in German
/// with typographic punctuation, Greek, Cyrillic, Chinese and Japanese come
/// back from the PDF's text as written (poppler's `pdftotext`, through the
/// embedded fonts' Unicode maps), with the fonts embedded as subsets.
#[cfg(feature = "stack")]
async fn pdf_export_in_every_script(db: TestDb) {
    crate::helpers::ensure_installed("/usr/bin/pdftotext", "poppler-utils");
    crate::helpers::ensure_installed(
        "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
        "fonts-droid-fallback",
    );
    let app = spawn_app(db).await;
    account(&app, "admin@example.test", Role::Admin, "admin-password-1").await;
    let (admin, _) = Agent::sign_in(&app, "admin@example.test", "admin-password-1").await;
    let subjects = [
        (
            "jörg@example.org",
            "Jörg Müller",
            "Ärger – „Zahlung“ — fällig",
        ),
        (
            "eleni@example.org",
            "Ελένη Παπαδοπούλου",
            "Πρόβλημα με τον λογαριασμό",
        ),
        ("ivan@example.org", "Иван Петров", "Не приходит счёт"),
        ("li@example.org", "李小龙", "发票错误"),
        ("yuki@example.org", "山田雪", "パスワードを忘れました"),
    ];
    for (email, name, subject) in subjects {
        let r = app
            .http
            .post(app.url("/api/v1/tickets"))
            .bearer_auth(&app.token)
            .json(&json!({"requester": {"email": email, "name": name}, "subject": subject, "body": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let (status, ct, pdf) = admin.bytes("/console/export.pdf").await;
    assert_eq!((status, ct.as_str()), (200, "application/pdf"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tickets.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", file.to_str().unwrap(), "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for (_, name, subject) in subjects {
        assert!(text.contains(subject), "{subject} in:\n{text}");
        assert!(text.contains(name), "{name} in:\n{text}");
    }
    assert!(!text.contains('?'), "nothing replaced:\n{text}");
    assert!(
        text.contains("tickets: "),
        "the title says what was exported:\n{text}"
    );
    let fonts = std::process::Command::new("pdffonts")
        .arg(file.to_str().unwrap())
        .output()
        .unwrap();
    let fonts = String::from_utf8(fonts.stdout).unwrap();
    for font in ["DejaVuSans ", "DejaVuSans-Bold", "DroidSansFallback"] {
        let line = fonts
            .lines()
            .find(|l| l.contains(font))
            .unwrap_or_else(|| panic!("{font} in\n{fonts}"));
        // name, type, encoding, emb, sub, uni: embedded, a subset, mapped.
        assert!(line.contains("yes yes yes"), "{line}");
    }
    app.stop().await;
}

#[cfg(feature = "stack")]
mod every_script {
    crate::on_both_backends!(pdf_export_in_every_script);
    use super::pdf_export_in_every_script;
}

crate::on_both_backends!(
    replies_and_notes_keep_their_files,
    merge_asks_for_confirmation,
    signing_in_and_out,
    the_queue_searches_and_filters,
    the_ticket_page_works_a_ticket,
    bulk_changes_deletes_and_exports,
    api_tokens_from_the_profile,
    administration_of_mailboxes,
    administration_of_users,
    administration_of_settings,
    sign_in_under_attack,
    credentials_are_revoked,
    own_password_and_notifications,
    own_settings_through_the_api
);
