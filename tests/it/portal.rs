//! The requester portal over HTTP: magic links turn into a session; every
//! route refuses a foreign ticket, an expired or tampered token, a missing
//! session and a missing CSRF token; a portal reply and close go through
//! the same rules as mail.

use crate::helpers::{TestApp, TestDb, spawn_app_with};
use postdesk::actions::{Actions, OpenTicket};
use postdesk::domain::{Channel, Status};
use postdesk::mail::token::SigningKey;
use reqwest::StatusCode;
use std::sync::Arc;

/// A 1x1 PNG.
pub(crate) const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn key(app: &TestApp) -> SigningKey {
    let settings = crate::helpers::settings(&TestDb::sqlite());
    postdesk::gateway::signing_key(&settings, &app.store)
        .await
        .unwrap()
}

/// Opens a ticket for `email`; returns (ticket number, requester id).
async fn open(app: &TestApp, email: &str, subject: &str) -> (i64, i64) {
    let settings = crate::helpers::settings(&TestDb::sqlite());
    let actions = Actions::new(app.store.clone(), Arc::new(settings));
    let o = actions
        .open_ticket(
            None,
            OpenTicket::new(
                email.parse().unwrap(),
                subject,
                "Help <script>alert(1)</script>",
                Channel::Email,
            ),
            postdesk::store::now_millis(),
        )
        .await
        .unwrap();
    let t = app.store.ticket(o.ticket_id).await.unwrap().unwrap();
    (t.reference.number(), t.requester.id)
}

/// Follows a magic link; returns the session cookie.
async fn sign_in(app: &TestApp, token: &str) -> String {
    let r = client()
        .get(app.url(&format!("/portal/t/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    set.split(';').next().unwrap().to_string()
}

async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> (StatusCode, String) {
    let mut b = client().get(app.url(path));
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    let r = b.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn post(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> StatusCode {
    // Replies and new requests are multipart (they carry files); other
    // forms are urlencoded.
    let mut b = if path.ends_with("/reply") || path.ends_with("/new") {
        let mut parts = reqwest::multipart::Form::new();
        for (k, v) in form {
            parts = parts.text(k.to_string(), v.to_string());
        }
        client().post(app.url(path)).multipart(parts)
    } else {
        client().post(app.url(path)).form(form)
    };
    if let Some(c) = cookie {
        b = b.header("cookie", c);
    }
    b.send().await.unwrap().status()
}

fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..at + 32].to_string()
}

/// Two requesters with a ticket each, on a portal with a support URL.
struct Portal {
    app: TestApp,
    key: SigningKey,
    /// An expiry an hour ahead, for links that work.
    far: i64,
    /// Ann's ticket number and requester id.
    mine: i64,
    me: i64,
    /// Bob's.
    theirs: i64,
    them: i64,
    mine_ref: String,
    theirs_ref: String,
}

async fn portal(db: TestDb) -> Portal {
    let app = spawn_app_with(db, |s| {
        s.http.support_url = Some("https://help.example.org/".into())
    })
    .await;
    let key = key(&app).await;
    let far = postdesk::store::now_millis() / 1000 + 3600;
    let (mine, me) = open(&app, "ann@example.org", "Printer on fire").await;
    let (theirs, them) = open(&app, "bob@example.org", "Bob's secret").await;
    Portal {
        app,
        key,
        far,
        mine,
        me,
        theirs,
        them,
        mine_ref: format!("TKT-{mine}"),
        theirs_ref: format!("TKT-{theirs}"),
    }
}

/// Signs requester `me` in with an address-wide link; returns the session
/// cookie and its CSRF token.
async fn signed_in_everywhere(
    app: &TestApp,
    key: &SigningKey,
    me: i64,
    far: i64,
) -> (String, String) {
    let cookie = sign_in(app, &key.portal_token(0, me, far)).await;
    let (_, list) = get(app, "/portal", Some(&cookie)).await;
    (cookie.clone(), csrf(&list))
}

/// Expired, tampered and foreign-scoped tokens never sign in.
async fn expired_tampered_and_foreign_links_never_sign_in(db: TestDb) {
    let Portal {
        app,
        key,
        far,
        mine,
        me,
        theirs,
        ..
    } = portal(db).await;
    // Expired, tampered and foreign-scoped tokens never sign in.
    let expired = key.portal_token(mine, me, 1);
    let (status, page) = get(&app, &format!("/portal/t/{expired}"), None).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("expired") && page.contains("Send me a link"));
    let tampered =
        key.portal_token(mine, me, far)
            .replacen(&format!("{mine}."), &format!("{theirs}."), 1);
    assert_eq!(
        get(&app, &format!("/portal/t/{tampered}"), None).await.0,
        StatusCode::NOT_FOUND
    );
    // A valid signature for a ticket the person is not on.
    let crossed = key.portal_token(theirs, me, far);
    assert_eq!(
        get(&app, &format!("/portal/t/{crossed}"), None).await.0,
        StatusCode::NOT_FOUND
    );

    app.stop().await;
}

/// Without a session every page asks for the link.
async fn without_a_session_every_page_asks_for_the_link(db: TestDb) {
    let Portal { app, mine_ref, .. } = portal(db).await;
    // Without a session every page asks for the link.
    for path in [
        "/portal",
        "/portal/new",
        &format!("/portal/tickets/{mine_ref}"),
    ] {
        assert_eq!(
            get(&app, path, None).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert_eq!(
        post(
            &app,
            &format!("/portal/tickets/{mine_ref}/reply"),
            None,
            &[("csrf", "x"), ("body", "hi")]
        )
        .await,
        StatusCode::UNAUTHORIZED
    );

    app.stop().await;
}

/// A ticket's link signs in to that ticket, escaped; another person's
/// ticket does not exist for her; her list, new request and profile need
/// an address-wide link.
async fn a_tickets_link_opens_that_ticket_only(db: TestDb) {
    let Portal {
        app,
        key,
        far,
        mine,
        me,
        them,
        mine_ref,
        theirs_ref,
        ..
    } = portal(db).await;
    // Ann's link signs her in to her ticket; the page escapes what she wrote.
    let cookie = sign_in(&app, &key.portal_token(mine, me, far)).await;
    let (status, page) = get(&app, &format!("/portal/tickets/{mine_ref}"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Printer on fire"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains("<script>alert(1)"));
    let token = csrf(&page);

    // Bob's ticket does not exist for her, by any route.
    assert_eq!(
        get(
            &app,
            &format!("/portal/tickets/{theirs_ref}"),
            Some(&cookie)
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    for action in ["reply", "close"] {
        let status = post(
            &app,
            &format!("/portal/tickets/{theirs_ref}/{action}"),
            Some(&cookie),
            &[("csrf", &token), ("body", "let me in")],
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{action}");
    }
    let bob = app
        .store
        .ticket_by_ref(&theirs_ref.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob.message_count, 1);
    assert_eq!(bob.requester.id, them);
    // A ticket's link opens that ticket only (mails get forwarded): not
    // the list of her requests, a new request or her profile.
    for path in ["/portal", "/portal/new", "/portal/profile"] {
        let (status, page) = get(&app, path, Some(&cookie)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.contains("This link opens one request"), "{path}");
    }
    app.stop().await;
}

/// The address-wide link (the one asked for on the portal) opens all her
/// requests, and nobody else's.
async fn an_address_wide_link_lists_her_requests_only(db: TestDb) {
    let Portal {
        app,
        key,
        far,
        me,
        mine_ref,
        theirs_ref,
        ..
    } = portal(db).await;
    // The address-wide link (the one asked for on the portal) opens them all.
    let cookie = sign_in(&app, &key.portal_token(0, me, far)).await;
    let (status, list) = get(&app, "/portal", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains(&mine_ref) && !list.contains(&theirs_ref));
    assert!(!list.contains("Bob&#x27;s secret") && !list.contains("Bob's secret"));

    app.stop().await;
}

/// Forms need the session's CSRF token; a reply and a close go through
/// the rules, closing asks for confirmation, and a reply reopens.
async fn replies_and_closing_go_through_the_rules(db: TestDb) {
    let Portal {
        app,
        key,
        far,
        me,
        mine_ref,
        ..
    } = portal(db).await;
    let (cookie, token) = signed_in_everywhere(&app, &key, me, far).await;
    // Forms need the session's CSRF token.
    assert_eq!(
        post(
            &app,
            &format!("/portal/tickets/{mine_ref}/reply"),
            Some(&cookie),
            &[("csrf", "0000"), ("body", "x")]
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    // A reply and a close go through the rules; a reply reopens.
    let status = post(
        &app,
        &format!("/portal/tickets/{mine_ref}/reply"),
        Some(&cookie),
        &[("csrf", &token), ("body", "More smoke now.")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // Closing asks for confirmation: without the box ticked, it stays open.
    let status = post(
        &app,
        &format!("/portal/tickets/{mine_ref}/close"),
        Some(&cookie),
        &[("csrf", &token)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let t = app
        .store
        .ticket_by_ref(&mine_ref.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(t.status, Status::Closed);
    let status = post(
        &app,
        &format!("/portal/tickets/{mine_ref}/close"),
        Some(&cookie),
        &[("csrf", &token), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let t = app
        .store
        .ticket_by_ref(&mine_ref.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.status, Status::Closed);
    post(
        &app,
        &format!("/portal/tickets/{mine_ref}/reply"),
        Some(&cookie),
        &[("csrf", &token), ("body", "Oh no, again.")],
    )
    .await;
    let t = app
        .store
        .ticket_by_ref(&mine_ref.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.status, Status::Open, "a reply within the window reopens");

    app.stop().await;
}

/// A reply's files: an image shown inline, anything else downloaded as an
/// octet stream; nobody else gets at them.
async fn files_are_shown_safely_and_only_to_their_people(db: TestDb) {
    let Portal {
        app,
        key,
        far,
        me,
        theirs,
        them,
        mine_ref,
        ..
    } = portal(db).await;
    let (cookie, token) = signed_in_everywhere(&app, &key, me, far).await;
    // A reply with files: an image shown inline, anything else downloaded
    // as an octet stream; nobody else gets at them; an oversized file is refused.
    let parts = reqwest::multipart::Form::new()
        .text("csrf", token.clone())
        .text("body", "Photos attached.")
        .part(
            "files",
            reqwest::multipart::Part::bytes(PNG.to_vec())
                .file_name("smoke.png")
                .mime_str("image/png")
                .unwrap(),
        )
        .part(
            "files",
            reqwest::multipart::Part::bytes(b"<svg onload=alert(1)>".to_vec())
                .file_name("evil\".svg")
                .mime_str("image/svg+xml")
                .unwrap(),
        );
    let r = client()
        .post(app.url(&format!("/portal/tickets/{mine_ref}/reply")))
        .header("cookie", &cookie)
        .multipart(parts)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = get(&app, &format!("/portal/tickets/{mine_ref}"), Some(&cookie)).await;
    let ids: Vec<String> = page
        .match_indices("/portal/attachments/")
        .map(|(at, _)| {
            page[at + 20..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect()
        })
        .collect();
    assert!(ids.len() >= 2, "{page}");
    assert!(page.contains("<img src=\"/portal/attachments/"));
    let fetch = |id: String, cookie: Option<String>| {
        let url = app.url(&format!("/portal/attachments/{id}"));
        async move {
            let mut b = client().get(url);
            if let Some(c) = cookie {
                b = b.header("cookie", c);
            }
            b.send().await.unwrap()
        }
    };
    let png = fetch(ids[0].clone(), Some(cookie.clone())).await;
    assert_eq!(png.status(), StatusCode::OK);
    assert_eq!(png.headers()["content-type"], "image/png");
    assert!(
        png.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    assert_eq!(png.bytes().await.unwrap().as_ref(), PNG);
    let svg_id = ids.iter().rev().find(|i| **i != ids[0]).unwrap().clone();
    let svg = fetch(svg_id.clone(), Some(cookie.clone())).await;
    assert_eq!(svg.headers()["content-type"], "application/octet-stream");
    assert!(
        svg.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(svg.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        fetch(svg_id.clone(), None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let bob_link = key.portal_token(theirs, them, far);
    let bob_cookie = sign_in(&app, &bob_link).await;
    assert_eq!(
        fetch(svg_id, Some(bob_cookie)).await.status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

/// An oversized file, after the text or before it: refused, the page shown
/// again with the text as typed, nothing added.
async fn an_oversized_file_is_refused_and_the_text_kept(db: TestDb) {
    let Portal {
        app,
        key,
        far,
        me,
        mine_ref,
        ..
    } = portal(db).await;
    let (cookie, token) = signed_in_everywhere(&app, &key, me, far).await;
    // An oversized file, after the text or before it: refused, the page
    // shown again with the text as typed (fields after the file still read).
    let refused = |text_first: bool, body: &'static str| {
        let big = reqwest::multipart::Part::bytes(vec![0u8; 11 * 1024 * 1024]).file_name("big.bin");
        let form = reqwest::multipart::Form::new().text("csrf", token.clone());
        let form = if text_first {
            form.text("body", body).part("files", big)
        } else {
            form.part("files", big).text("body", body)
        };
        let request = client()
            .post(app.url(&format!("/portal/tickets/{mine_ref}/reply")))
            .header("cookie", &cookie)
            .multipart(form);
        async move {
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
            r.text().await.unwrap()
        }
    };
    let page = refused(true, "Too big.").await;
    assert!(
        page.contains(">Too big.</textarea>"),
        "the text is kept: {page}"
    );
    assert!(page.contains("big.bin is over the limit"), "{page}");
    let page = refused(false, "Typed after the file.").await;
    assert!(page.contains(">Typed after the file.</textarea>"), "{page}");
    let t = app
        .store
        .ticket_by_ref(&mine_ref.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let thread = app.store.messages(t.id, false).await.unwrap();
    assert!(
        thread
            .iter()
            .all(|m| !m.body_text.contains("Too big") && !m.body_text.contains("Typed after")),
        "a refused reply adds nothing"
    );

    app.stop().await;
}

/// A new request from the form, on the web channel.
async fn a_new_request_from_the_form(db: TestDb) {
    let Portal {
        app, key, far, me, ..
    } = portal(db).await;
    let (cookie, token) = signed_in_everywhere(&app, &key, me, far).await;
    // A new request from the form, on the web channel.
    let (_, page) = get(&app, "/portal/new", Some(&cookie)).await;
    assert!(page.contains("<label for=\"subject\">"));
    let status = post(
        &app,
        "/portal/new",
        Some(&cookie),
        &[
            ("csrf", &token),
            ("subject", "Second thing"),
            ("body", "Also this."),
            ("priority", "high"),
            ("category", "Billing"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, list) = get(&app, "/portal", Some(&cookie)).await;
    assert!(list.contains("Second thing"));

    app.stop().await;
}

/// A link request answers the same for known and unknown addresses,
/// queues a mail only for the known one, and only a few per quarter hour.
async fn link_requests_tell_nothing_and_are_rate_limited(db: TestDb) {
    let Portal { app, .. } = portal(db).await;
    // A link request answers the same for known and unknown addresses, and
    // queues a mail only for the known one.
    let before = app
        .store
        .outbox_list(Some("queued"), 100)
        .await
        .unwrap()
        .len();
    for email in ["ann@example.org", "nobody@example.org"] {
        let r = client()
            .post(app.url("/portal/link"))
            .form(&[("email", email)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.text().await.unwrap().contains("Check your mail"));
    }
    // The answer goes first; the mail is queued right after it.
    crate::helpers::eventually(10, "the link mail is queued", || async {
        app.store.outbox_list(None, 100).await.unwrap().len() > before
    })
    .await;
    let queued = app.store.outbox_list(None, 100).await.unwrap();
    assert_eq!(queued.len(), before + 1);
    assert_eq!(queued[0].notice, "portal_link");
    assert_eq!(queued[0].recipient, "ann@example.org");
    // Rate limit: a few per quarter hour, then silently nothing more.
    for _ in 0..5 {
        client()
            .post(app.url("/portal/link"))
            .form(&[("email", "ann@example.org")])
            .send()
            .await
            .unwrap();
    }
    // Every request was answered, and what each spawned is done once the
    // daemon has drained: the count is final.
    let (_db, store) = app.drained().await;
    let links = store
        .outbox_list(None, 100)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.notice == "portal_link")
        .count();
    assert_eq!(links, 3, "a few per quarter hour, then nothing more");
}

/// The help page in words; the profile: the address read-only, names
/// saved, switching "the team replies" off suppresses the next agent reply.
async fn the_profile_keeps_names_and_notification_choices(db: TestDb) {
    let Portal {
        app,
        key,
        far,
        me,
        mine_ref,
        ..
    } = portal(db).await;
    let (cookie, token) = signed_in_everywhere(&app, &key, me, far).await;
    // The profile: the address shown read-only; names saved; switching
    // "the team replies" off suppresses the next agent reply to Ann.
    let (_, help) = get(&app, "/portal/help", Some(&cookie)).await;
    // Durations in words, not the configuration's codes.
    assert!(help.contains("A reply within 1 week of closing"), "{help}");
    assert!(
        help.contains("href=\"https://help.example.org/\""),
        "{help}"
    );
    let (status, page) = get(&app, "/portal/profile", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("value=\"ann@example.org\" readonly"));
    let status = post(
        &app,
        "/portal/profile",
        Some(&cookie),
        &[
            ("csrf", &token),
            ("first_name", "Ann"),
            ("last_name", "Example"),
            ("phone", "+41 00 000"),
            ("organisation", "ACME"),
            ("notify_receipt", "on"),
            ("notify_status_changed", "on"),
            ("email", "mallory@example.org"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let p = app.store.requester_profile(me).await.unwrap().unwrap();
    assert_eq!(
        (p.first_name.as_str(), p.organisation.as_str()),
        ("Ann", "ACME")
    );
    assert_eq!(
        p.email, "ann@example.org",
        "the address is not the requester's to change"
    );
    assert_eq!(p.switched_off, vec!["agent_reply".to_string()]);
    let settings = crate::helpers::settings(&TestDb::sqlite());
    let actions = Actions::new(app.store.clone(), Arc::new(settings));
    let agent = app
        .store
        .user_by_email(&"agent@example.test".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let t = app
        .store
        .ticket_by_ref(&mine_ref.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    actions
        .reply(
            postdesk::domain::Actor::Staff {
                user_id: agent.id,
                role: agent.role,
            },
            t.id,
            postdesk::actions::ReplyInput::text("We are on it."),
            postdesk::store::now_millis(),
        )
        .await
        .unwrap();
    let store = app.store.clone();
    crate::helpers::eventually(20, "the agent reply to Ann is suppressed", || async {
        store
            .outbox_for_ticket(t.id)
            .await
            .unwrap()
            .iter()
            .any(|r| r.notice == "agent_reply" && r.state == "suppressed")
    })
    .await;

    app.stop().await;
}

/// Signing out ends the session at once, memory included.
async fn signing_out_ends_the_session(db: TestDb) {
    let Portal {
        app, key, far, me, ..
    } = portal(db).await;
    let (cookie, token) = signed_in_everywhere(&app, &key, me, far).await;
    // Signing out ends the session at once, memory included.
    let (_, list) = get(&app, "/portal", Some(&cookie)).await;
    assert!(list.contains("Sign out"));
    let r = client()
        .post(app.url("/portal/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        get(&app, "/portal", Some(&cookie)).await.0,
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

/// One ticket's link opens that ticket only; a CC participant reads and
/// replies but does not close the requester's ticket (SPEC §7).
async fn a_link_opens_its_ticket_only_and_a_cc_does_not_close(db: TestDb) {
    let app = spawn_app_with(db, |_| {}).await;
    let key = key(&app).await;
    let far = postdesk::store::now_millis() / 1000 + 3600;
    let settings = crate::helpers::settings(&TestDb::sqlite());
    let actions = Actions::new(app.store.clone(), Arc::new(settings));
    let mut with_cc = OpenTicket::new(
        "ann@example.org".parse().unwrap(),
        "Shared printer",
        "It jams.",
        Channel::Email,
    );
    with_cc.cc = vec!["carl@example.org".parse().unwrap()];
    let o = actions
        .open_ticket(None, with_cc, postdesk::store::now_millis())
        .await
        .unwrap();
    let shared = app.store.ticket(o.ticket_id).await.unwrap().unwrap();
    let (other, ann) = open(&app, "ann@example.org", "Private matter").await;
    assert_eq!(ann, shared.requester.id);
    // Ann's link to the shared ticket does not open her other one.
    let cookie = sign_in(&app, &key.portal_token(shared.reference.number(), ann, far)).await;
    let other_ref = format!("TKT-{other}");
    assert_eq!(
        get(&app, &format!("/portal/tickets/{other_ref}"), Some(&cookie))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, page) = get(
        &app,
        &format!("/portal/tickets/{}", shared.reference),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Close this request"),
        "the requester may close"
    );
    // Carl, on it in CC: reads and replies, no close button, and a forged close is refused.
    let carl = app
        .store
        .requester_id_by_email("carl@example.org")
        .await
        .unwrap()
        .unwrap();
    let carl_cookie = sign_in(
        &app,
        &key.portal_token(shared.reference.number(), carl, far),
    )
    .await;
    let path = format!("/portal/tickets/{}", shared.reference);
    let (status, page) = get(&app, &path, Some(&carl_cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("Close this request"));
    let token = csrf(&page);
    assert_eq!(
        post(
            &app,
            &format!("{path}/reply"),
            Some(&carl_cookie),
            &[("csrf", &token), ("body", "Me too.")]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    let status = post(
        &app,
        &format!("{path}/close"),
        Some(&carl_cookie),
        &[("csrf", &token), ("confirm", "yes")],
    )
    .await;
    assert_ne!(status, StatusCode::SEE_OTHER);
    let t = app.store.ticket(shared.id).await.unwrap().unwrap();
    assert_ne!(t.status, Status::Closed, "a CC does not close");
    app.stop().await;
}

/// A merged ticket's link leads to the ticket it went into; replying
/// there lands on that ticket, never reopening the merged one.
async fn a_merged_tickets_link_leads_where_it_went(db: TestDb) {
    let app = spawn_app_with(db, |_| {}).await;
    let key = key(&app).await;
    let far = postdesk::store::now_millis() / 1000 + 3600;
    let (kept, ann) = open(&app, "ann@example.org", "Printer on fire").await;
    let (merged, _) = open(&app, "ann@example.org", "Printer smokes").await;
    let settings = crate::helpers::settings(&TestDb::sqlite());
    let actions = Actions::new(app.store.clone(), Arc::new(settings));
    let (_, admin) = crate::helpers::staff(
        &app.store,
        "boss@example.test",
        postdesk::domain::Role::Admin,
    )
    .await;
    let id = |n: i64| {
        let store = app.store.clone();
        async move {
            store
                .ticket_by_ref(&format!("TKT-{n}").parse().unwrap())
                .await
                .unwrap()
                .unwrap()
                .id
        }
    };
    let (kept_id, merged_id) = (id(kept).await, id(merged).await);
    actions
        .merge(admin, merged_id, kept_id, postdesk::store::now_millis())
        .await
        .unwrap();
    let cookie = sign_in(&app, &key.portal_token(merged, ann, far)).await;
    let r = client()
        .get(app.url(&format!("/portal/tickets/TKT-{merged}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to.starts_with(&format!("/portal/tickets/TKT-{kept}")),
        "{to}"
    );
    let (status, page) = get(&app, &to, Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Printer smokes") || page.contains("Printer on fire"));
    let token = csrf(&page);
    let status = post(
        &app,
        &format!("/portal/tickets/TKT-{merged}/reply"),
        Some(&cookie),
        &[("csrf", &token), ("body", "Any news on both?")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let kept_thread = app.store.messages(kept_id, false).await.unwrap();
    assert!(
        kept_thread
            .iter()
            .any(|m| m.body_text == "Any news on both?")
    );
    let gone = app.store.ticket(merged_id).await.unwrap().unwrap();
    assert_eq!(
        gone.status,
        Status::Closed,
        "the merged ticket stays closed"
    );
    app.stop().await;
}

crate::on_both_backends!(
    a_merged_tickets_link_leads_where_it_went,
    expired_tampered_and_foreign_links_never_sign_in,
    without_a_session_every_page_asks_for_the_link,
    a_tickets_link_opens_that_ticket_only,
    an_address_wide_link_lists_her_requests_only,
    replies_and_closing_go_through_the_rules,
    files_are_shown_safely_and_only_to_their_people,
    an_oversized_file_is_refused_and_the_text_kept,
    a_new_request_from_the_form,
    link_requests_tell_nothing_and_are_rate_limited,
    the_profile_keeps_names_and_notification_choices,
    signing_out_ends_the_session,
    a_link_opens_its_ticket_only_and_a_cc_does_not_close
);
